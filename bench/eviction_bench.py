#!/usr/bin/env python3
"""Memory accounting and eviction, trio_kv next to redis-server: numbers only.

A script that prints numbers (Markdown on stdout, progress on stderr); it
asserts nothing. Uses redis-py (a test dependency). Both servers run without
persistence and are stopped on exit by PID (bench/servers.py).

1. Accounting (``--accounting``): a fresh trio_kv; ``--keys`` keys
   ``key:%012d`` with 3-byte values; INFO ``used_memory`` against
   ``used_memory_rss`` (the target: within 10%), then after deleting half
   the keys and after FLUSHALL (used_memory must fall; RSS does not).
2. Eviction (default): each server under ``--maxmemory`` (100mb) with
   ``allkeys-lru``; a working set of ``--working-set-bytes`` (1 GiB: keys
   of ``--value-bytes`` values) is written through it; then RSS against the
   limit (target: within 15%); then a read-through cache load: ``--reads``
   GETs of keys drawn from a Zipf distribution (exponent ``--zipf``) over
   the working set, a miss SETting the key; the hit rate after a warm-up of
   the same length (target: within 10% of redis-server's).

Examples:
    .venv/bin/python bench/eviction_bench.py
    .venv/bin/python bench/eviction_bench.py --accounting --keys 1000000
    .venv/bin/python bench/eviction_bench.py --working-set-bytes 268435456 --reads 100000
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import logging
import os
import random
import re
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import redis
from servers import start_redis, start_trio_kv

PIPELINE_COMMANDS = 1000
log = logging.getLogger("eviction_bench")


def rss_bytes(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else 0


def mib(size: int) -> str:
    return f"{size / 1024**2:.1f} MiB"


def load(client: redis.Redis, keys: range, value: bytes) -> None:
    for start in range(keys.start, keys.stop, PIPELINE_COMMANDS):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(start + PIPELINE_COMMANDS, keys.stop)):
            pipe.set(b"key:%012d" % i, value)
        pipe.execute()


def accounting(args: argparse.Namespace) -> None:
    with ExitStack() as stack:
        server = start_trio_kv(stack, "--appendonly", "no", data_dir=Path(tempfile.mkdtemp(prefix="evict-bench-")))
        client = redis.Redis(*server.address)
        print(f"## used_memory against RSS ({args.keys:,} keys, 3-byte values; load {os.getloadavg()[0]:.2f})\n")
        print("| state | used_memory | used_memory_rss | used/RSS |")
        print("|---|---|---|---|")

        def row(state: str) -> None:
            info = client.info("memory")
            used, rss = int(info["used_memory"]), int(info["used_memory_rss"])
            print(f"| {state} | {mib(used)} | {mib(rss)} | {used / rss:.3f} |")

        row("empty")
        load(client, range(args.keys), b"abc")
        row(f"{args.keys:,} keys")
        for start in range(0, args.keys, 2 * PIPELINE_COMMANDS):
            client.delete(*[b"key:%012d" % i for i in range(start, min(start + 2 * PIPELINE_COMMANDS, args.keys), 2)])
        row("half deleted")
        client.flushall()
        time.sleep(1)  # FLUSHALL frees the old tables in slices
        row("after FLUSHALL")
        print()


def zipf_cdf(n: int, exponent: float) -> list[float]:
    return list(itertools.accumulate(1.0 / (rank ** exponent) for rank in range(1, n + 1)))


def cache_load(client: redis.Redis, keys: int, value: bytes, args: argparse.Namespace) -> float:
    """Warm up, then measure: the fraction of GETs that hit."""
    cdf = zipf_cdf(keys, args.zipf)
    total = cdf[-1]
    draw = random.Random(args.seed).random
    # The rank -> key mapping is a fixed shuffle, so hot keys are spread
    # over the key space (not just the first keys written).
    order = list(range(keys))
    random.Random(args.seed + 1).shuffle(order)

    def run(reads: int) -> int:
        hits = 0
        for _ in range(reads // PIPELINE_COMMANDS):
            names = [b"key:%012d" % order[bisect.bisect_left(cdf, draw() * total)] for _ in range(PIPELINE_COMMANDS)]
            pipe = client.pipeline(transaction=False)
            for name in names:
                pipe.get(name)
            replies = pipe.execute()
            pipe = client.pipeline(transaction=False)
            missed = 0
            for name, reply in zip(names, replies):
                if reply is None:
                    pipe.set(name, value)
                    missed += 1
                else:
                    hits += 1
            if missed:
                pipe.execute(raise_on_error=False)
        return hits

    run(args.reads)
    return run(args.reads) / (args.reads // PIPELINE_COMMANDS * PIPELINE_COMMANDS)


def eviction(args: argparse.Namespace) -> None:
    value = b"v" * args.value_bytes
    keys = args.working_set_bytes // args.value_bytes
    limit = args.maxmemory_bytes
    rows = []
    with ExitStack() as stack:
        for name in ("trio_kv", "redis-server"):
            log.info("%s: writing %s through %s", name, mib(args.working_set_bytes), mib(limit))
            if name == "trio_kv":
                server = start_trio_kv(
                    stack, "--appendonly", "no", "--maxmemory", str(limit), "--maxmemory-policy", "allkeys-lru",
                    data_dir=Path(tempfile.mkdtemp(prefix="evict-bench-")),
                )
                address, pid = server.address, server.pid
            else:
                pid, port = start_redis(
                    stack, tempfile.mkdtemp(prefix="evict-bench-redis-"), "--appendonly", "no",
                    "--maxmemory", str(limit), "--maxmemory-policy", "allkeys-lru",
                )
                address = ("127.0.0.1", port)
            client = redis.Redis(*address)
            started = time.perf_counter()
            load(client, range(keys), value)
            seconds = time.perf_counter() - started
            info = client.info()
            rss = rss_bytes(pid)
            log.info("%s: hit rate of the Zipf load", name)
            hit_rate = cache_load(client, keys, value, args)
            rows.append((name, seconds, int(info["used_memory"]), rss, int(info["evicted_keys"]),
                         client.dbsize(), hit_rate, rss_bytes(pid)))
            client.close()
    print(f"## allkeys-lru under --maxmemory {mib(limit)}: {mib(args.working_set_bytes)} written "
          f"({keys:,} keys of {args.value_bytes} B), then {args.reads:,} Zipf({args.zipf}) reads "
          f"(read-through: a miss SETs), after as many to warm up; load {os.getloadavg()[0]:.2f}\n")
    print("| server | write s | used_memory | RSS after writes | RSS / limit | evicted | keys kept | hit rate | RSS after reads |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, seconds, used, rss, evicted, kept, hit_rate, rss_end in rows:
        print(f"| {name} | {seconds:.1f} | {mib(used)} | {mib(rss)} | {rss / limit:.3f} | {evicted:,} | {kept:,} "
              f"| {hit_rate:.3f} | {mib(rss_end)} |")
    print(f"\nhit rate trio_kv / redis-server: {rows[0][6] / rows[1][6]:.3f}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounting", action="store_true", help="only the used_memory/RSS check")
    parser.add_argument("--keys", type=int, default=1_000_000, help="keys for --accounting")
    parser.add_argument("--maxmemory-bytes", type=int, default=100 * 1024 * 1024)
    parser.add_argument("--working-set-bytes", type=int, default=1024**3)
    parser.add_argument("--value-bytes", type=int, default=1024)
    parser.add_argument("--reads", type=int, default=200_000)
    parser.add_argument("--zipf", type=float, default=0.99)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.accounting:
        accounting(args)
    else:
        eviction(args)


if __name__ == "__main__":
    main()
