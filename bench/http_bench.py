#!/usr/bin/env python3
"""trio_kv's HTTP API under `wrk`, beside its RESP rows from `redis-benchmark`.

A script that prints numbers (Markdown on stdout, progress on stderr); it
asserts nothing about speed. Stdlib only. One trio_kv process
(``<repo>/.venv/bin/python -m trio_kv --port 0 --http-port 0 --appendonly
no``, addresses from its log lines) serves every row, so the rows compare
protocols, not runs; each row is the median of ``--repeat`` runs. Memory
only by default, as bench/redis_compare.py runs redis: the rows measure
the protocols; ``--extra-args="--appendonly yes --data-dir DIR"`` adds the log.

Rows:

* HTTP ``GET /key/{k}`` and ``PUT /key/{k}`` (a small Lua script sets the
  method and a 5-byte JSON body): ``wrk -t T -c C -d D --latency``, keep-alive
  (wrk's default), requests per second and p99 from its latency distribution.
  The key exists, so every GET is a 200; a run with non-2xx responses fails.
* RESP ``GET`` and ``SET``, unpipelined: ``redis-benchmark -c C -n N -t get|set
  -P 1 --csv`` on the main port, requests per second and p99.

The last column is each row's throughput over RESP unpipelined GET's (the
issue's target: HTTP GET at least 0.5).

Examples:
    .venv/bin/python bench/http_bench.py
    .venv/bin/python bench/http_bench.py --duration 20 --repeat 3 --extra-args="--workers 2"

Exit status 2: wrk or redis-benchmark missing (apt-get install wrk redis-tools).
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

from servers import start_trio_kv

RUN_TIMEOUT_SECONDS = 900.0
BENCH_KEY = "bench:key"
# Same size as redis-benchmark's default 3-byte value, as JSON text: "xxx".
BENCH_VALUE = b'"xxx"'
_HTTP_LINE = re.compile(r"HTTP API on (\S+):(\d+)")
_WRK_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_WRK_P99 = re.compile(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_WRK_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_WRK_ERRORS = re.compile(r"Socket errors:.*")
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
log = logging.getLogger("http_bench")

PUT_SCRIPT = f"""
wrk.method = "PUT"
wrk.body = '{BENCH_VALUE.decode()}'
wrk.headers["Content-Type"] = "application/json"
"""


def start_trio_kv_with_http(stack: ExitStack, flags: list[str]) -> tuple[int, int]:
    """trio_kv with its HTTP listener, memory only; (main port, HTTP port) from its log."""
    server = start_trio_kv(stack, "--http-port", "0", "--appendonly", "no", *flags)
    http = server.wait_for_log(_HTTP_LINE)
    if http is None:
        raise RuntimeError("trio_kv did not report its HTTP listener:\n" + server.log())
    return server.address[1], int(http.group(2))


def put_bench_key(http_port: int) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{http_port}/key/{BENCH_KEY}", data=BENCH_VALUE, method="PUT"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        if response.status != 200:
            raise RuntimeError(f"PUT {BENCH_KEY} answered {response.status}")


def run_wrk(http_port: int, method: str, script: Path | None, args: argparse.Namespace) -> dict[str, float]:
    argv = ["wrk", "-t", str(args.threads), "-c", str(args.c), "-d", f"{args.duration}s", "--latency"]
    if script is not None:
        argv += ["-s", str(script)]
    argv.append(f"http://127.0.0.1:{http_port}/key/{BENCH_KEY}")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS)
    output = done.stdout
    rps, p99 = _WRK_RPS.search(output), _WRK_P99.search(output)
    if done.returncode != 0 or rps is None or p99 is None:
        raise RuntimeError(f"{shlex.join(argv)} failed:\n{output}{done.stderr}")
    non_2xx = _WRK_NON_2XX.search(output)
    if non_2xx:
        raise RuntimeError(f"{method}: {non_2xx.group(1)} non-2xx responses:\n{output}")
    errors = _WRK_ERRORS.search(output)
    if errors:
        log.warning("%s: %s", method, errors.group(0))
    return {"rps": float(rps.group(1)), "p99": float(p99.group(1)) * _UNIT_MS[p99.group(2)]}


def run_redis_benchmark(port: int, test: str, args: argparse.Namespace) -> dict[str, float]:
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", str(args.c), "-n", str(args.n),
            "-t", test, "-P", "1", "--csv"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS)
    rows = list(csv.DictReader(line for line in done.stdout.splitlines() if line.startswith('"')))
    if done.returncode != 0 or not rows:
        raise RuntimeError(f"{shlex.join(argv)} failed:\n{done.stdout}{done.stderr}")
    return {"rps": float(rows[0]["rps"]), "p99": float(rows[0]["p99_latency_ms"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", type=int, default=50, help="connections, for wrk and redis-benchmark alike")
    # One thread, as redis-benchmark: both clients then take the same share of the machine.
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("-n", type=int, default=100_000, help="requests per redis-benchmark run")
    parser.add_argument("--repeat", type=int, default=1, help="runs per row; the median is shown")
    parser.add_argument("--extra-args", default="", help="more trio_kv flags, one string: --extra-args=\"--workers 2\"")
    args = parser.parse_args(argv)
    if min(args.c, args.threads, args.duration, args.n, args.repeat) < 1:
        parser.error("-c, --threads, --duration, -n and --repeat must be at least 1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    missing = [tool for tool in ("wrk", "redis-benchmark") if not shutil.which(tool)]
    if missing:
        print(f"missing {', '.join(missing)}: apt-get install wrk redis-tools", file=sys.stderr)
        return 2

    flags = shlex.split(args.extra_args)
    runs: dict[str, list[dict[str, float]]] = {}
    with ExitStack() as stack:
        main_port, http_port = start_trio_kv_with_http(stack, flags)
        put_bench_key(http_port)
        script = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="http-bench-"))) / "put.lua"
        script.write_text(PUT_SCRIPT)
        rows = [
            ("RESP GET", lambda: run_redis_benchmark(main_port, "get", args)),
            ("RESP SET", lambda: run_redis_benchmark(main_port, "set", args)),
            ("HTTP GET /key/{k}", lambda: run_wrk(http_port, "GET", None, args)),
            ("HTTP PUT /key/{k}", lambda: run_wrk(http_port, "PUT", script, args)),
        ]
        for repeat in range(args.repeat):
            for name, run in rows:
                log.info("run %d/%d: %s", repeat + 1, args.repeat, name)
                runs.setdefault(name, []).append(run())
                time.sleep(0.5)  # let closed connections drain between tools
    median = {name: {m: statistics.median(run[m] for run in results) for m in ("rps", "p99")}
              for name, results in runs.items()}
    baseline = median["RESP GET"]["rps"]
    print(f"nproc {len(os.sched_getaffinity(0))}; {args.c} connections; wrk -t {args.threads} -d {args.duration}s "
          f"(keep-alive); redis-benchmark -n {args.n} -P 1; median of {args.repeat} run(s); "
          f"trio_kv flags: {shlex.join(flags) or '(defaults)'}\n")
    print("| protocol / request | rps | p99 ms | rps / RESP GET |")
    print("|---|---:|---:|---:|")
    for name, result in median.items():
        print(f"| {name} | {result['rps']:,.0f} | {result['p99']:.2f} | {result['rps'] / baseline:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
