#!/usr/bin/env python3
"""trio_kv's fsync policies next to redis-server's: what durability costs.

A script that prints numbers (Markdown on stdout, progress on stderr); it
asserts nothing about speed. Stdlib only; the servers start through
bench/servers.py, and it reuses bench/redis_compare.py's redis-benchmark
runs and machine line.

Rows, one pair of servers each (started fresh, stopped on exit whatever
happens):

* ``in-memory``: ``trio_kv --appendonly no`` against ``redis-server
  --appendonly no --save ""``, the baseline;
* ``everysec`` and ``always``: ``trio_kv --appendfsync P`` against
  ``redis-server --appendonly yes --appendfsync P --save ""``.

All six servers run at once (idle ones cost nothing), their data
directories fresh temporary directories side by side under ``--data-root``
(default: the system temp directory), so they share one disk and file
system; the output says which. Each repeat runs ``redis-benchmark -c C -n N
-t set -P 1`` once on every server, in an order rotated at each repeat, so
drift on a busy machine hits every row alike; each number is the median of
``--repeat`` runs.

Printed after the table, the issue's two targets: trio_kv everysec /
trio_kv in-memory (target >= 0.90), and trio_kv/redis under ``always``
against trio_kv/redis in memory (target: not lower; group commit shares one
fsync among all the clients waiting).

Examples:
    .venv/bin/python bench/durability_bench.py
    .venv/bin/python bench/durability_bench.py --repeat 5 -n 100000 --data-root /work/bench-data
"""

from __future__ import annotations

import argparse
import logging
import shlex
import statistics
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from redis_compare import ensure_redis_tools, machine_line, run_benchmark  # noqa: E402
from servers import start_redis, start_trio_kv  # noqa: E402

MODES = ("in-memory", "everysec", "always")
log = logging.getLogger("durability-bench")


def start_redis_for(stack: ExitStack, mode: str, data_dir: Path) -> int:
    """redis-server for one mode; its port."""
    persistence = ["--appendonly", "no"] if mode == "in-memory" else ["--appendonly", "yes", "--appendfsync", mode]
    return start_redis(stack, data_dir, *persistence)[1]


def start_trio_kv_for(stack: ExitStack, mode: str, data_dir: Path, extra: list[str]) -> int:
    """trio_kv for one mode; its port."""
    persistence = ["--appendonly", "no"] if mode == "in-memory" else ["--appendfsync", mode]
    return start_trio_kv(stack, *persistence, *extra, data_dir=data_dir).address[1]


def file_system_of(path: Path) -> str:
    try:
        done = subprocess.run(["df", "--output=source,fstype,target", str(path)], capture_output=True, text=True)
    except FileNotFoundError:
        return "unknown file system"
    rows = done.stdout.split("\n")[1:2]
    return " ".join(rows[0].split()) if done.returncode == 0 and rows else "unknown file system"


def measure(args: argparse.Namespace, data_root: Path) -> dict[tuple[str, str], dict[str, float]]:
    runs: dict[tuple[str, str], list[dict[str, float]]] = {}
    extra = shlex.split(args.extra_args)
    with ExitStack() as stack:
        ports: dict[tuple[str, str], int] = {}
        for mode in MODES:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"{mode}-", dir=data_root)))
            ports[(mode, "trio_kv")] = start_trio_kv_for(stack, mode, directory / "trio_kv", extra)
            ports[(mode, "redis")] = start_redis_for(stack, mode, _made(directory / "redis"))
        servers = list(ports.items())
        for repeat in range(args.repeat):
            shift = repeat % len(servers)
            for (mode, name), port in servers[shift:] + servers[:shift]:
                log.info("run %d/%d: %s %s", repeat + 1, args.repeat, name, mode)
                runs.setdefault((mode, name), []).append(run_benchmark(port, "set", 1, args))
    return {key: {m: statistics.median(run[m] for run in rows) for m in ("rps", "p50", "p99")}
            for key, rows in runs.items()}


def _made(path: Path) -> Path:
    path.mkdir()
    return path


def report(args: argparse.Namespace, data_root: Path, median: dict[tuple[str, str], dict[str, float]]) -> None:
    print(f"{machine_line()}\n")
    print(f"redis-benchmark -c {args.c} -n {args.n} -t set -P 1; median of {args.repeat} run(s), all six "
          f"servers up at once, run order rotated per repeat; data directories side by side under "
          f"{data_root} ({file_system_of(data_root)})\n")
    print("| mode | trio_kv rps | p50 ms | p99 ms | redis rps | p50 ms | p99 ms | trio_kv/redis "
          "| trio_kv / own in-memory |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    base = median[("in-memory", "trio_kv")]["rps"]
    for mode in MODES:
        ours, theirs = median[(mode, "trio_kv")], median[(mode, "redis")]
        print(f"| {mode} | {ours['rps']:,.0f} | {ours['p50']:.3f} | {ours['p99']:.3f} | {theirs['rps']:,.0f} "
              f"| {theirs['p50']:.3f} | {theirs['p99']:.3f} | {ours['rps'] / theirs['rps']:.2f} "
              f"| {ours['rps'] / base:.2f} |")

    def ratio(mode: str) -> float:
        return median[(mode, "trio_kv")]["rps"] / median[(mode, "redis")]["rps"]

    everysec = median[("everysec", "trio_kv")]["rps"] / base
    print(f"\n* everysec: trio_kv keeps {everysec:.2f} of its in-memory throughput (target >= 0.90: "
          f"{'met' if everysec >= 0.9 else 'NOT met'}).")
    print(f"* always: trio_kv/redis = {ratio('always'):.2f}, in memory {ratio('in-memory'):.2f} (target: not lower: "
          f"{'met' if ratio('always') >= ratio('in-memory') else 'NOT met'}).")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=50_000, help="requests per redis-benchmark run")
    parser.add_argument("-c", type=int, default=50, help="redis-benchmark clients")
    parser.add_argument("--repeat", type=int, default=3, help="runs per server and mode; the median is shown")
    parser.add_argument("--data-root", type=Path, default=Path(tempfile.gettempdir()),
                        help="where both servers' data directories go (same disk for both)")
    parser.add_argument("--extra-args", default="",
                        help="more trio_kv flags, one string: --extra-args=\"--flag value\"")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.n < 1 or args.c < 1:
        parser.error("--repeat, -n and -c must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    ensure_redis_tools()
    data_root = args.data_root.resolve()
    data_root.mkdir(parents=True, exist_ok=True)
    report(args, data_root, measure(args, data_root))
    return 0


if __name__ == "__main__":
    sys.exit(main())
