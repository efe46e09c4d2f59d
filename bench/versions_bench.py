#!/usr/bin/env python3
"""What the versions cost per write on the replicated data path, in process.

Prints Markdown, asserts nothing. No sockets: ``run_batch`` (store/engine.py)
runs jobs on stores in cluster mode (memory only, as ``--appendonly no``),
each figure the median over ``--repeat`` runs of microseconds per operation
of this thread's CPU time (``time.thread_time``: the work itself, steadier
than wall time on a machine other processes share).

* **Coordinator's store job**: jobs of ``--pipeline`` SETs (1: one client
  request per job, what a coordinator mostly sees under many clients) on
  fresh keys, with cluster mode off, on, and on with ``Job.version_deltas``
  collected (the coordinator's job: every SET's wire clock is taken).
* **Replica's TKV.REPL.PUT**: node A writes, node B applies A's wire clock
  through the peer table, one PUT per job, for four histories:
  ``new key`` (B has no versions of it), ``descending`` (B holds A's
  previous clock; A wrote again: the usual replicated write), ``equal`` (B
  already holds this clock: a duplicate), ``concurrent`` (B wrote the key
  itself, A's write did not see it: siblings). Also ``apply_remote`` alone
  (no engine, no effects unit) for the same histories.

    .venv/bin/python bench/versions_bench.py [--keys 5000] [--repeat 5] [--pipeline 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trio_kv.commands.peer import repl  # noqa: E402
from trio_kv.commands.redis import REDIS_COMMANDS  # noqa: E402
from trio_kv.commands.session import Session  # noqa: E402
from trio_kv.commands.table import CommandTable  # noqa: E402
from trio_kv.commands.wire import RESP  # noqa: E402
from trio_kv.config import Config  # noqa: E402
from trio_kv.protocol.replies import Error  # noqa: E402
from trio_kv.store.engine import Job, Store, run_batch  # noqa: E402
from trio_kv.store.local_control import LocalControl  # noqa: E402
from trio_kv.store.versions import Versions  # noqa: E402

NODE_A = bytes.fromhex("0123456789abcdef0123456789abcdef01234567")
NODE_B = bytes.fromhex("89abcdef0123456789abcdef0123456789abcdef")
PEER_TABLE = CommandTable(repl.SPECS, unknown_command=lambda args: Error("ERR unknown"), wrong_arity=lambda s: Error("ERR arity"))
VALUE = b"x" * 16


def session(actor: bytes | None) -> Session:
    store = Store(Config(), actor_id=actor)
    return Session(1, store, LocalControl(store), wire=RESP)


def versions(node: Session) -> Versions:
    assert node.store.versions is not None
    return node.store.versions


def run(node: Session, table: CommandTable, requests: list[list[bytes]], pipeline: int, deltas: bool) -> float:
    """Seconds per request of ``requests`` in jobs of ``pipeline``."""
    jobs = []
    for start in range(0, len(requests), pipeline):
        job = Job(node, table, requests[start : start + pipeline], 0.0)
        if deltas:
            job.version_deltas = []
        jobs.append(job)
    started = time.thread_time()
    for job in jobs:
        run_batch(node.store, [job])
    return (time.thread_time() - started) / len(requests)


def set_us(mode: str, keys: int, pipeline: int) -> float:
    node = session(None if mode == "off" else NODE_A)
    requests = [[b"SET", b"key:%012d" % i, VALUE] for i in range(keys)]
    return run(node, REDIS_COMMANDS, requests, pipeline, deltas=mode == "deltas") * 1e6


def history(name: str, keys: int) -> tuple[Session, list[tuple[bytes, bytes]]]:
    """Node B prepared for the history ``name`` and the (key, wire clock) PUTs to apply to it."""
    a, b = session(NODE_A), session(NODE_B)
    names = [b"key:%012d" % i for i in range(keys)]
    if name == "concurrent":
        run(b, REDIS_COMMANDS, [[b"SET", key, b"from-b"] for key in names], 100, False)
    run(a, REDIS_COMMANDS, [[b"SET", key, VALUE] for key in names], 100, False)
    if name in ("descending", "equal"):
        for key in names:
            clock = versions(a).clock_of(key)
            assert clock is not None
            versions(b).apply_remote(key, clock)
            b.keyspace.effects.end_command()
    if name == "descending":
        run(a, REDIS_COMMANDS, [[b"SET", key, VALUE + b"2"] for key in names], 100, False)
    puts = []
    for key in names:
        clock = versions(a).clock_of(key)
        assert clock is not None
        puts.append((key, clock))
    return b, puts


def put_us(name: str, keys: int, pipeline: int) -> float:
    b, puts = history(name, keys)
    return run(b, PEER_TABLE, [[b"TKV.REPL.PUT", key, clock] for key, clock in puts], pipeline, False) * 1e6


def apply_us(name: str, keys: int) -> float:
    b, puts = history(name, keys)
    apply, end = versions(b).apply_remote, b.keyspace.effects.end_command
    started = time.thread_time()
    for key, clock in puts:
        apply(key, clock)
        end()
    return (time.thread_time() - started) / len(puts) * 1e6


def median(repeat: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pipeline", type=int, default=1)
    args = parser.parse_args()
    print(f"SET jobs of {args.pipeline} request(s), {args.keys} fresh keys, median of {args.repeat}:\n")
    print("| SET job | us per SET |")
    print("|---|---|")
    for mode, label in (("off", "cluster mode off"), ("on", "cluster mode on"), ("deltas", "on, with version deltas")):
        print(f"| {label} | {median(args.repeat, lambda: set_us(mode, args.keys, args.pipeline)):.2f} |")
    print(f"\nReplica: TKV.REPL.PUT jobs of {args.pipeline} request(s); apply_remote alone:\n")
    print("| history | us per REPL.PUT job | us per apply_remote |")
    print("|---|---|---|")
    for name in ("new key", "descending", "equal", "concurrent"):
        put = median(args.repeat, lambda: put_us(name, args.keys, args.pipeline))
        alone = median(args.repeat, lambda: apply_us(name, args.keys))
        print(f"| {name} | {put:.2f} | {alone:.2f} |")


if __name__ == "__main__":
    main()
