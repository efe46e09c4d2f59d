#!/usr/bin/env python3
"""trio_kv's fsync policies next to redis-server's: what durability costs.

A script that prints numbers (Markdown on stdout, progress on stderr); it
asserts nothing about speed. Stdlib only; it reuses bench/redis_compare.py's
helpers (free ports, redis-benchmark runs, the machine line).

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
import os
import re
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from redis_compare import (  # noqa: E402
    REPO,
    START_SECONDS,
    command,
    ensure_redis_tools,
    free_port,
    machine_line,
    run_benchmark,
    server_python,
    stop,
)

MODES = ("in-memory", "everysec", "always")
_LISTENING = re.compile(r"listening on (\S+):(\d+)")
log = logging.getLogger("durability-bench")


def start_redis(stack: ExitStack, mode: str, data_dir: Path) -> int:
    """redis-server for one mode; returns its port once it answers PING."""
    port = free_port()
    persistence = ["--appendonly", "no"] if mode == "in-memory" else ["--appendonly", "yes", "--appendfsync", mode]
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", *persistence,
            "--dir", str(data_dir)]
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    stack.callback(stop, process)
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                if command(conn, "PING") == b"PONG":
                    return port
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {port}") from None
            time.sleep(0.05)


def start_trio_kv(stack: ExitStack, mode: str, data_dir: Path, extra: list[str]) -> int:
    """trio_kv for one mode; returns its port from the ``listening on`` line."""
    persistence = ["--appendonly", "no"] if mode == "in-memory" else ["--appendfsync", mode]
    env = {name: value for name, value in os.environ.items() if not name.startswith(("TRIO_KV_", "KV_TEST_"))}
    argv = [server_python(), "-m", "trio_kv", "--port", "0", "--data-dir", str(data_dir), *persistence, *extra]
    process = subprocess.Popen(argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stack.callback(stop, process)
    found = threading.Event()
    ports: list[int] = []
    tail: list[str] = []

    def drain() -> None:  # keeps reading so a chatty server never blocks on a full pipe
        for raw in process.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            tail[:] = [*tail[-9:], line]
            match = _LISTENING.search(line)
            if match and not found.is_set():
                ports.append(int(match.group(2)))
                found.set()
        found.set()

    threading.Thread(target=drain, daemon=True).start()
    if not found.wait(START_SECONDS) or not ports:
        raise RuntimeError("trio_kv did not report 'listening on':\n" + "\n".join(tail))
    return ports[0]


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
            ports[(mode, "trio_kv")] = start_trio_kv(stack, mode, directory / "trio_kv", extra)
            ports[(mode, "redis")] = start_redis(stack, mode, _made(directory / "redis"))
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
