"""``python -m harness.history``: run a workload against nodes, or check a saved history.

    python -m harness.history check run.jsonl [--checks survival,linearizable]
    python -m harness.history run --nodes 127.0.0.1:7001,127.0.0.1:7002 \\
        --seconds 10 --clients 4 --keys 10 --out run.jsonl [--consistency QUORUM] [--siblings]

``run`` drives the clients (workload.py), reads the final state from every
node, saves the history as JSON lines and checks it. Exit status: 0 when
every checker found the history valid, 1 when one did not, 2 on bad usage or
an unreadable file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .checks import CHECKERS, run_checks
from .jsonl import HistoryFormatError, dump_history, load_history
from .model import History


def _report(history: History, checks: str | None) -> int:
    names = [name.strip() for name in checks.split(",")] if checks else None
    verdicts = run_checks(history, names)
    print(f"{len(history.ops)} operations, {len(history.finals)} final reads, {len(history.faults)} faults")
    for verdict in verdicts:
        print(verdict.report())
    return 0 if all(verdict.valid for verdict in verdicts) else 1


def _run(arguments: argparse.Namespace) -> History:
    # Imported here: ``check`` needs neither redis-py nor the server helpers.
    from .final_state import read_final_state
    from .workload import WorkloadConfig, parse_nodes, run_workload

    config = WorkloadConfig(
        nodes=parse_nodes(arguments.nodes), clients=arguments.clients, key_count=arguments.keys,
        duration_s=arguments.seconds, seed=arguments.seed, key_prefix=arguments.prefix,
        read_siblings=arguments.siblings, consistency=arguments.consistency,
    )
    history = run_workload(config)
    history.finals = read_final_state(config.nodes, config.keys(), consistency=arguments.final_consistency)
    return history


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.history", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="check a saved history (JSON lines)")
    check.add_argument("file")
    check.add_argument("--checks", help=f"comma-separated, from {','.join(CHECKERS)} (default: by node count)")
    run = commands.add_parser("run", help="run a workload against nodes, save and check its history")
    run.add_argument("--nodes", required=True, help="host:port,host:port,...")
    run.add_argument("--seconds", type=float, default=5.0)
    run.add_argument("--clients", type=int, default=4)
    run.add_argument("--keys", type=int, default=10)
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--prefix", default="hist:", help="key prefix (use a fresh one per run)")
    run.add_argument("--siblings", action="store_true", help="read with TKV.SIBLINGS instead of GET")
    run.add_argument("--consistency", help="TKV.CONSISTENCY level of the clients' connections")
    run.add_argument("--final-consistency", help="TKV.CONSISTENCY level of the final reads")
    run.add_argument("--out", required=True, help="where to save the history (JSON lines)")
    run.add_argument("--checks", help="as for check")
    arguments = parser.parse_args(argv)
    if arguments.command == "check":
        try:
            history = load_history(arguments.file)
        except (OSError, HistoryFormatError) as error:
            print(f"cannot read {arguments.file}: {error}", file=sys.stderr)
            return 2
    else:
        import redis

        try:
            history = _run(arguments)
        except (redis.exceptions.RedisError, RuntimeError) as error:
            # A node refusing the run's own setup (TKV.CONSISTENCY on a single node), a crashed driver.
            print(f"run failed: {error}", file=sys.stderr)
            return 2
        dump_history(history, arguments.out)
        print(f"history saved to {arguments.out}")
    try:
        return _report(history, arguments.checks)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
