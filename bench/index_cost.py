#!/usr/bin/env python3
"""What the sorted key index costs SET/GET throughput, next to redis-server,
in one run (issue 12: the index costs at most 5% of SET/GET throughput).
Prints numbers (Markdown on stdout, progress on stderr); asserts nothing.

Three servers run side by side for the whole run: trio_kv with
``--sorted-index yes``, trio_kv with ``--sorted-index no`` (both
``--appendonly no``, as redis-server runs without persistence) and
redis-server. Each round runs ``redis-benchmark -c C -n N -t TEST -P P -r
KEYSPACE --csv`` for every pipeline and test on each server, the servers in
an order that rotates from round to round (so drift on a busy machine hits
each alike); random keys out of ``KEYSPACE`` keep SETs creating keys, so the
index keeps inserting. Printed per pipeline and test: the medians over the
rounds of requests per second and of the server's CPU time per request
(user + system of all its threads, from /proc: the figure least moved by
other work), each trio_kv's ratio to redis-server, and the index's cost:
on/off paired round by round (same round, back to back), median and range.

``bench/sorted_index_bench.py --parts throughput`` measures one pipeline
the same way; this script is the issue's table (-P 1 and -P 16).

Examples:
    .venv/bin/python bench/index_cost.py                      # -P 1,16, 5 rounds
    .venv/bin/python bench/index_cost.py --repeat 7 -n 200000 --pipelines 1,16,64
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import shlex
import statistics
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from redis_compare import ensure_redis_tools, machine_line, start_redis_in_memory, start_trio_kv_in_memory  # noqa: E402

BENCHMARK_TIMEOUT_SECONDS = 900.0
ON, OFF, REDIS = "trio_kv index on", "trio_kv index off", "redis-server"
log = logging.getLogger("bench")


def cpu_seconds(pid: int) -> float:
    """utime + stime of process ``pid`` (all its threads) so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_benchmark(pid: int, port: int, test: str, pipeline: int, args: argparse.Namespace) -> tuple[float, float]:
    """(requests per second, server CPU microseconds per request) of one redis-benchmark run."""
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", str(args.c), "-n", str(args.n),
            "-t", test, "-P", str(pipeline), "-r", str(args.keyspace), "--csv"]
    before = cpu_seconds(pid)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=BENCHMARK_TIMEOUT_SECONDS)
    used = cpu_seconds(pid) - before
    rows = list(csv.DictReader(line for line in done.stdout.splitlines() if line.startswith('"')))
    if done.returncode != 0 or not rows:
        raise RuntimeError(f"{shlex.join(argv)} failed:\n{done.stdout}{done.stderr}")
    return float(rows[0]["rps"]), used / args.n * 1e6


def measure(args: argparse.Namespace) -> None:
    tests = [test.strip() for test in args.tests.split(",") if test.strip()]
    pipelines = [int(pipeline) for pipeline in args.pipelines.split(",")]
    # (server, test, pipeline) -> one (rps, cpu us per request) per round.
    runs: dict[tuple[str, str, int], list[tuple[float, float]]] = {}
    with ExitStack() as stack:
        servers = {
            ON: start_trio_kv_in_memory(stack, ["--sorted-index", "yes"]),
            OFF: start_trio_kv_in_memory(stack, ["--sorted-index", "no"]),
            REDIS: start_redis_in_memory(stack),
        }
        print(f"{machine_line()}; load average at the start {_load()}\n")
        names = list(servers)
        for round_number in range(args.repeat):
            order = names[round_number % 3:] + names[:round_number % 3]
            for pipeline in pipelines:
                for test in tests:
                    for name in order:
                        pid, port = servers[name]
                        rps, cpu_us = run_benchmark(pid, port, test, pipeline, args)
                        runs.setdefault((name, test, pipeline), []).append((rps, cpu_us))
                        log.info("round %d/%d -P %d %s on %s: %.0f rps, %.1f us CPU a request",
                                 round_number + 1, args.repeat, pipeline, test, name, rps, cpu_us)
    print(f"redis-benchmark -c {args.c} -n {args.n} -r {args.keyspace}; median of {args.repeat} rounds; "
          f"load average at the end {_load()}\n")
    print("| -P | test | server | rps | vs redis | CPU us/req | vs redis |")
    print("|---:|---|---|---:|---:|---:|---:|")
    for pipeline in pipelines:
        for test in tests:
            redis_rps = statistics.median(rps for rps, _ in runs[REDIS, test, pipeline])
            redis_cpu = statistics.median(cpu for _, cpu in runs[REDIS, test, pipeline])
            for name in servers:
                rps = statistics.median(value for value, _ in runs[name, test, pipeline])
                cpu = statistics.median(value for _, value in runs[name, test, pipeline])
                print(f"| {pipeline} | {test.upper()} | {name} | {rps:,.0f} | {rps / redis_rps:.3f} "
                      f"| {cpu:.1f} | {cpu / redis_cpu:.2f} |")
    print("\nThe index's cost, on / off paired by round (median [min-max]; rps under 1 and CPU over 1 "
          "mean the index costs):\n")
    print("| -P | test | rps on/off | CPU on/off |")
    print("|---:|---|---|---|")
    for pipeline in pipelines:
        for test in tests:
            pairs = list(zip(runs[ON, test, pipeline], runs[OFF, test, pipeline]))
            rps_ratios = [on[0] / off[0] for on, off in pairs]
            cpu_ratios = [on[1] / off[1] for on, off in pairs if off[1] > 0]
            print(f"| {pipeline} | {test.upper()} | {_spread(rps_ratios)} | {_spread(cpu_ratios)} |")


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.3f} [{min(values):.3f}-{max(values):.3f}]"


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=100_000, help="requests per redis-benchmark run")
    parser.add_argument("-c", type=int, default=50, help="redis-benchmark clients")
    parser.add_argument("--tests", default="set,get", help="redis-benchmark -t tests")
    parser.add_argument("--pipelines", default="1,16", help="redis-benchmark -P values")
    parser.add_argument("--repeat", type=int, default=5, help="rounds; medians are shown")
    parser.add_argument("--keyspace", type=int, default=1_000_000, help="redis-benchmark -r: random keys out of this many")
    args = parser.parse_args(argv)
    if min(args.n, args.c, args.repeat, args.keyspace) < 1:
        parser.error("-n, -c, --repeat and --keyspace must be at least 1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    ensure_redis_tools()
    measure(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
