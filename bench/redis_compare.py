#!/usr/bin/env python3
"""trio_kv next to a real redis-server: throughput, latency and memory per key.

A script that prints numbers (Markdown on stdout, progress on stderr); it
asserts nothing about speed. Stdlib only. trio_kv runs as
``<repo>/.venv/bin/python -m trio_kv --port 0`` (address from its ``listening
on HOST:PORT`` log line), the Trio ceiling (``bench/trio_ceiling.py``: a
minimal Trio RESP server, SET/GET inline on the event loop, no features)
under the same interpreter, redis-server without persistence on a free
loopback port; all are stopped on exit, whatever happens.

Throughput (default): ``redis-benchmark -c C -n N -t TEST -P P --csv`` once
per (test, pipeline) row on each server, trio_kv, the ceiling, then redis,
so drift on a busy machine hits all; with ``--repeat R`` each number is the
median of R. Printed: requests per second and the ratios trio_kv/ceiling and
trio_kv/redis; p50/p99 latency; and each server's CPU time (all threads,
from /proc) per 10,000 requests, the figure least moved by other work on a
busy machine. ``--baseline DIR`` adds a column ``base``: trio_kv from
another source tree (``git archive <commit> | tar -x -C DIR``), run the same
way, for an A/B of a change in one run.

Memory (``--memory``): fresh servers, one at a time; N keys ``key:%012d``
(16 bytes) with 3-byte values are SET, pipelined 1000 at a time over a raw
socket; bytes per key = (after - before) / N from INFO ``used_memory`` and
from VmRSS in /proc/<pid>/status. trio_kv runs three ways: default features,
``--sorted-index no``, and a one-node cluster (``--cluster-enabled yes``,
with its version vectors); then the ceiling (a plain ``dict``) and redis.
trio_kv's ``used_memory`` is its resident size at start plus the data's
accounted bytes (store/memory_accounting.py), or tracemalloc's count when it
runs with ``PYTHONTRACEMALLOC=1``.

Examples:
    .venv/bin/python bench/redis_compare.py                 # or: make bench
    .venv/bin/python bench/redis_compare.py --repeat 3 --pipelines 1,16,64
    .venv/bin/python bench/redis_compare.py --tests set,get,incr -n 200000 --workers 2
    .venv/bin/python bench/redis_compare.py --extra-args="--max-batch-commands 256"
    .venv/bin/python bench/redis_compare.py --memory --keys 1000000
    .venv/bin/python bench/redis_compare.py --repeat 5 --baseline /tmp/trio-kv-before

Exit status 2: redis-server / redis-benchmark missing and not installable
(apt-get install redis-server, tried as root on Debian).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import logging
import os
import platform
import re
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from servers import start_redis, start_trio_ceiling, start_trio_kv, trio_kv_python

BENCHMARK_TIMEOUT_SECONDS = 900.0
LOAD_CHUNK_COMMANDS = 1000
RECV_BYTES = 1 << 16
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
log = logging.getLogger("bench")


def ensure_redis_tools() -> None:
    if shutil.which("redis-server") and shutil.which("redis-benchmark"):
        return
    if os.geteuid() == 0 and Path("/etc/debian_version").exists() and shutil.which("apt-get"):
        log.info("installing redis-server (apt-get)")
        install = ["apt-get", "install", "-y", "-qq", "redis-server"]
        if subprocess.run(install, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
            subprocess.run(install, capture_output=True)
    if not (shutil.which("redis-server") and shutil.which("redis-benchmark")):
        print("redis-server and redis-benchmark are needed: apt-get install redis-server "
              "(Debian/Ubuntu), brew install redis (macOS)", file=sys.stderr)
        sys.exit(2)


def start_redis_in_memory(stack: ExitStack) -> tuple[int, int]:
    """A redis-server without persistence; (pid, port)."""
    workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-redis-"))
    return start_redis(stack, workdir, "--appendonly", "no")


def start_trio_ceiling_pid_port(stack: ExitStack) -> tuple[int, int]:
    server = start_trio_ceiling(stack)
    return server.pid, server.address[1]


def start_trio_kv_in_memory(stack: ExitStack, flags: list[str]) -> tuple[int, int]:
    """trio_kv without its append-only log, as Redis runs with persistence off; (pid, port)."""
    server = start_trio_kv(stack, "--appendonly", "no", *flags)
    return server.pid, server.address[1]


def encode(*args: str | bytes) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else arg
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def command(conn: socket.socket, *args: str) -> bytes | int:
    """Sends one command and reads one reply (simple string, error, integer or bulk)."""
    conn.sendall(encode(*args))
    buffer = b""
    while b"\r\n" not in buffer:
        buffer += recv(conn)
    head, _, rest = buffer.partition(b"\r\n")
    kind, body = head[:1], head[1:]
    if kind == b"-":
        raise RuntimeError(f"{args[0]} failed: {body.decode()}")
    if kind == b":":
        return int(body)
    if kind == b"$":
        while len(rest) < int(body) + 2:
            rest += recv(conn)
        return rest[: int(body)]
    return body


def recv(conn: socket.socket) -> bytes:
    data = conn.recv(RECV_BYTES)
    if not data:
        raise RuntimeError("server closed the connection")
    return data


def load_keys(conn: socket.socket, count: int) -> None:
    """SET key:%012d to a 3-byte value, pipelined; every reply must be +OK."""
    for start in range(0, count, LOAD_CHUNK_COMMANDS):
        stop_at = min(start + LOAD_CHUNK_COMMANDS, count)
        conn.sendall(b"".join(encode("SET", b"key:%012d" % i, b"v%02d" % (i % 100))
                              for i in range(start, stop_at)))
        expected = b"+OK\r\n" * (stop_at - start)
        replies = b""
        while len(replies) < len(expected):
            replies += recv(conn)
            if not expected.startswith(replies[: len(expected)]):
                raise RuntimeError(f"SET replied {replies[:200]!r}")


def info_field(conn: socket.socket, section: str, field: str) -> int:
    text = command(conn, "INFO", section).decode()
    match = re.search(rf"^{field}:(\d+)", text, re.MULTILINE)
    if not match:
        raise RuntimeError(f"INFO {section} has no {field}")
    return int(match.group(1))


def vm_rss_bytes(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE).group(1)) * 1024


def memory_per_key(pid: int, port: int, keys: int) -> dict[str, float]:
    with socket.create_connection(("127.0.0.1", port)) as conn:
        used_before, rss_before = info_field(conn, "memory", "used_memory"), vm_rss_bytes(pid)
        started = time.monotonic()
        load_keys(conn, keys)
        seconds = time.monotonic() - started
        used_after, rss_after = info_field(conn, "memory", "used_memory"), vm_rss_bytes(pid)
        if command(conn, "DBSIZE") != keys:
            raise RuntimeError(f"DBSIZE is not {keys} after the load")
    return {"INFO used_memory delta B/key": (used_after - used_before) / keys,
            "VmRSS delta B/key": (rss_after - rss_before) / keys,
            "load rate keys/s": keys / seconds}


def cpu_seconds(pid: int) -> float:
    """utime + stime of process ``pid`` (all its threads) so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def run_benchmark(pid: int, port: int, test: str, pipeline: int, args: argparse.Namespace) -> dict[str, float]:
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", str(args.c), "-n", str(args.n),
            "-t", test, "-P", str(pipeline), "--csv"]
    cpu_before = cpu_seconds(pid)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=BENCHMARK_TIMEOUT_SECONDS)
    cpu = cpu_seconds(pid) - cpu_before
    rows = list(csv.DictReader(line for line in done.stdout.splitlines() if line.startswith('"')))
    if done.returncode != 0 or not rows:
        raise RuntimeError(f"{shlex.join(argv)} failed:\n{done.stdout}{done.stderr}")
    row = rows[0]  # one test per run
    return {"rps": float(row["rps"]), "p50": float(row["p50_latency_ms"]), "p99": float(row["p99_latency_ms"]),
            "cpu": cpu * 1000 * 10_000 / args.n}


def machine_line() -> str:
    cpu = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
    python = subprocess.run([trio_kv_python(), "-c", "import platform; print(platform.python_version())"],
                            capture_output=True, text=True).stdout.strip()
    redis = re.search(r"v=(\S+)", subprocess.run(["redis-server", "--version"], capture_output=True,
                                                 text=True).stdout)
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return (f"{datetime.datetime.now().isoformat(timespec='seconds')}, nproc {len(os.sched_getaffinity(0))}, "
            f"CPU {cpu.group(1) if cpu else platform.machine()}, trio_kv Python {python}, "
            f"redis-server {redis.group(1) if redis else '?'}, load average {load}")


def trio_kv_flags(args: argparse.Namespace) -> list[str]:
    workers = ["--workers", str(args.workers)] if args.workers else []
    return [*workers, *shlex.split(args.extra_args)]


def start_servers(stack: ExitStack, args: argparse.Namespace) -> dict[str, tuple[int, int]]:
    """The servers of a throughput run, by column name: (pid, port)."""
    servers = {"trio_kv": start_trio_kv_in_memory(stack, trio_kv_flags(args))}
    if args.baseline:
        server = start_trio_kv(stack, "--appendonly", "no", *trio_kv_flags(args), repo=Path(args.baseline))
        servers["base"] = (server.pid, server.address[1])
    if not args.no_ceiling:
        servers["ceiling"] = start_trio_ceiling_pid_port(stack)
    servers["redis"] = start_redis_in_memory(stack)
    return servers


def throughput(args: argparse.Namespace) -> None:
    tests = [test.strip() for test in args.tests.split(",") if test.strip()]
    pipelines = [int(p) for p in args.pipelines.split(",")]
    runs: dict[tuple[str, int, str], list[dict[str, float]]] = {}
    with ExitStack() as stack:
        servers = start_servers(stack, args)
        started_line = machine_line()
        for repeat in range(args.repeat):
            for pipeline in pipelines:
                for test in tests:
                    for name, (pid, port) in servers.items():
                        log.info("run %d/%d: %s -P %d on %s", repeat + 1, args.repeat, test, pipeline, name)
                        runs.setdefault((test, pipeline, name), []).append(
                            run_benchmark(pid, port, test, pipeline, args))
    median = {key: {m: statistics.median(run[m] for run in rows) for m in ("rps", "p50", "p99", "cpu")}
              for key, rows in runs.items()}
    names = list(servers)
    ratios = [other for other in ("base", "ceiling", "redis") if other in servers]
    print(f"{started_line}; at the end: load average "
          f"{' '.join(Path('/proc/loadavg').read_text().split()[:3])}\n")
    print(f"redis-benchmark -c {args.c} -n {args.n}; median of {args.repeat} run(s), servers alternating; "
          f"trio_kv flags: {shlex.join(trio_kv_flags(args)) or '(defaults)'}"
          + (f"; base: trio_kv from {args.baseline}" if args.baseline else "") + "\n")
    print("| test | pipeline | " + " | ".join(f"{name} rps" for name in names) + " | "
          + " | ".join(f"trio_kv/{other}" for other in ratios) + " |")
    print("|---|---:|" + "---:|" * (len(names) + len(ratios)))
    for pipeline in pipelines:
        for test in tests:
            row = {name: median[(test, pipeline, name)] for name in names}
            print(f"| {test.upper()} | {pipeline} | "
                  + " | ".join(f"{row[name]['rps']:,.0f}" for name in names) + " | "
                  + " | ".join(f"{row['trio_kv']['rps'] / row[other]['rps']:.2f}" for other in ratios) + " |")
    print("\nLatency (p50 / p99 ms) and server CPU (ms per 10,000 requests, all threads):\n")
    print("| test | pipeline | " + " | ".join(f"{name} p50 / p99" for name in names) + " | "
          + " | ".join(f"{name} CPU" for name in names) + " |")
    print("|---|---:|" + "---:|" * (2 * len(names)))
    for pipeline in pipelines:
        for test in tests:
            row = {name: median[(test, pipeline, name)] for name in names}
            print(f"| {test.upper()} | {pipeline} | "
                  + " | ".join(f"{row[name]['p50']:.3f} / {row[name]['p99']:.3f}" for name in names) + " | "
                  + " | ".join(f"{row[name]['cpu']:.0f}" for name in names) + " |")


# The --memory columns: trio_kv's flag sets (its default features, the
# ordered index off, a one-node cluster with its version vectors), then the
# ceiling (a plain dict on Trio) and Redis.
MEMORY_VARIANTS = {
    "trio_kv": [],
    "trio_kv --sorted-index no": ["--sorted-index", "no"],
    "trio_kv --cluster-enabled yes": ["--cluster-enabled", "yes"],
}


def memory(args: argparse.Namespace) -> None:
    results = {}
    starts = {name: (lambda stack, flags=flags: start_trio_kv_in_memory(stack, [*trio_kv_flags(args), *flags]))
              for name, flags in MEMORY_VARIANTS.items()}
    if not args.no_ceiling:
        starts["ceiling"] = start_trio_ceiling_pid_port
    starts["redis"] = start_redis_in_memory
    started_line = machine_line()
    for name, start in starts.items():
        # One at a time, each stopped before the next starts: a fresh
        # server, and no other big process paging against it.
        with ExitStack() as stack:
            pid, port = start(stack)
            log.info("loading %d keys into %s", args.keys, name)
            results[name] = memory_per_key(pid, port, args.keys)
    print(f"{started_line}\n")
    print(f"{args.keys:,} keys of 16 bytes, 3-byte values, SET pipelined {LOAD_CHUNK_COMMANDS} at a time; "
          "trio_kv's and the ceiling's used_memory is their RSS\n")
    print("| server | " + " | ".join(results["redis"]) + " | RSS B/key / redis' used_memory B/key |")
    print("|---|" + "---:|" * (len(results["redis"]) + 1))
    redis_used = results["redis"]["INFO used_memory delta B/key"]
    for name, measures in results.items():
        print(f"| {name} | " + " | ".join(f"{value:,.1f}" for value in measures.values())
              + f" | {measures['VmRSS delta B/key'] / redis_used:.2f} |")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=100_000, help="requests per redis-benchmark run")
    parser.add_argument("-c", type=int, default=50, help="redis-benchmark clients")
    parser.add_argument("--tests", default="set,get", help="redis-benchmark -t tests, one row each")
    parser.add_argument("--pipelines", default="1,16", help="redis-benchmark -P values")
    parser.add_argument("--repeat", type=int, default=1, help="runs per row; the median is shown")
    parser.add_argument("--workers", type=int, help="trio_kv --workers")
    parser.add_argument("--extra-args", default="", help="more trio_kv flags, one string: --extra-args=\"--flag value\"")
    parser.add_argument("--baseline", help="also run trio_kv from this source tree (column 'base'), for A/B")
    parser.add_argument("--no-ceiling", action="store_true", help="leave bench/trio_ceiling.py out")
    parser.add_argument("--memory", action="store_true", help="measure bytes per key instead")
    parser.add_argument("--keys", type=int, default=1_000_000, help="keys loaded in --memory mode")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.keys < 1 or args.n < 1 or args.c < 1:
        parser.error("--repeat, --keys, -n and -c must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    ensure_redis_tools()
    if args.memory:
        memory(args)
    else:
        throughput(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
