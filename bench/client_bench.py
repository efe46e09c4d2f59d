#!/usr/bin/env python3
"""trio_kv.client's GET rate against redis-py's, on one trio_kv process.

A script that prints numbers (a Markdown table on stdout); it asserts
nothing about speed. One ``python -m trio_kv --port 0 --appendonly no``
process serves every row, so rows compare clients, not runs. Rows, each one
connection, ``--keys`` 10-byte values:

* unpipelined: ``--requests`` GETs one at a time (one round trip each):
  ``trio_kv.client.Client`` (Trio), ``trio_kv.client.BlockingClient``,
  ``redis.Redis`` (redis-py, sync; it uses hiredis' parser when installed,
  as here);
* pipelined: the same GETs in pipelines of ``--batch``: ``Client.pipeline()``,
  ``BlockingClient.pipeline()``, redis-py's ``pipeline(transaction=False)``.

The rows run in alternating order ``--repeat`` times; each cell is the
median GETs per second (client and server share this machine's cores, so
the figures include the server's time; ``uptime`` shows the load).

    .venv/bin/python bench/client_bench.py --repeat 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redis
import trio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.server_process import ServerProcess  # noqa: E402

from trio_kv.client import BlockingClient, Client  # noqa: E402


def keys(count: int) -> list[str]:
    return [f"bench:{index}" for index in range(count)]


def trio_unpipelined(address: tuple[str, int], names: list[str], requests: int) -> float:
    async def run() -> float:
        async with Client(*address) as client:
            await client.execute("PING")
            started = time.perf_counter()
            for index in range(requests):
                await client.execute("GET", names[index % len(names)])
            return time.perf_counter() - started

    return trio.run(run)


def trio_pipelined(address: tuple[str, int], names: list[str], requests: int, batch: int) -> float:
    async def run() -> float:
        async with Client(*address) as client:
            await client.execute("PING")
            started = time.perf_counter()
            for start in range(0, requests, batch):
                pipeline = client.pipeline()
                for index in range(start, min(start + batch, requests)):
                    pipeline.add("GET", names[index % len(names)])
                await pipeline.execute()
            return time.perf_counter() - started

    return trio.run(run)


def blocking_unpipelined(address: tuple[str, int], names: list[str], requests: int) -> float:
    with BlockingClient(*address) as client:
        started = time.perf_counter()
        for index in range(requests):
            client.execute("GET", names[index % len(names)])
        return time.perf_counter() - started


def blocking_pipelined(address: tuple[str, int], names: list[str], requests: int, batch: int) -> float:
    with BlockingClient(*address) as client:
        started = time.perf_counter()
        for start in range(0, requests, batch):
            pipeline = client.pipeline()
            for index in range(start, min(start + batch, requests)):
                pipeline.add("GET", names[index % len(names)])
            pipeline.execute()
        return time.perf_counter() - started


def redis_py_unpipelined(address: tuple[str, int], names: list[str], requests: int) -> float:
    with redis.Redis(*address) as client:
        client.ping()
        started = time.perf_counter()
        for index in range(requests):
            client.get(names[index % len(names)])
        return time.perf_counter() - started


def redis_py_pipelined(address: tuple[str, int], names: list[str], requests: int, batch: int) -> float:
    with redis.Redis(*address) as client:
        client.ping()
        started = time.perf_counter()
        for start in range(0, requests, batch):
            pipeline = client.pipeline(transaction=False)
            for index in range(start, min(start + batch, requests)):
                pipeline.get(names[index % len(names)])
            pipeline.execute()
        return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    names = keys(options.keys)
    with ServerProcess.start(REPO, "--appendonly", "no") as server:
        address = server.address
        with BlockingClient(*address) as client:
            for start in range(0, len(names), 500):
                client.execute("MSET", *[part for name in names[start : start + 500] for part in (name, "0123456789")])
        rows: dict[str, Callable[[], float]] = {
            "trio_kv.client.Client, unpipelined": lambda: trio_unpipelined(address, names, options.requests),
            "trio_kv.client.BlockingClient, unpipelined": lambda: blocking_unpipelined(address, names, options.requests),
            "redis-py (hiredis), unpipelined": lambda: redis_py_unpipelined(address, names, options.requests),
            f"trio_kv.client.Client, pipelines of {options.batch}": lambda: trio_pipelined(
                address, names, options.requests, options.batch),
            f"trio_kv.client.BlockingClient, pipelines of {options.batch}": lambda: blocking_pipelined(
                address, names, options.requests, options.batch),
            f"redis-py (hiredis), pipelines of {options.batch}": lambda: redis_py_pipelined(
                address, names, options.requests, options.batch),
        }
        rates: dict[str, list[float]] = {name: [] for name in rows}
        for _ in range(options.repeat):
            for name, run in rows.items():
                rates[name].append(options.requests / run())
    print(f"load: {os.getloadavg()[0]:.2f} (1 min), {options.requests} GETs per run, median of {options.repeat}\n")
    print("| client | GET/s | vs redis-py |")
    print("|---|---:|---:|")
    for name, values in rates.items():
        reference = "redis-py (hiredis), " + name.split(", ", 1)[1]
        ratio = statistics.median(values) / statistics.median(rates[reference])
        print(f"| {name} | {statistics.median(values):,.0f} | {ratio:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
