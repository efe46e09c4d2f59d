#!/usr/bin/env python3
"""What versions cost (store/versions.py): a SET through the engine with
cluster mode off and on, and the memory of the version data per key.

Prints Markdown. No sockets: the engine's ``run_batch`` runs jobs of
pipelined SETs on one store (memory only, as ``--appendonly no``; with
cluster mode on, every SET also gets its dot, clock and VERSION effect),
median of ``--repeat`` runs. Memory: ``--keys`` distinct 16-byte keys with
3-byte values, each SET once, measured with tracemalloc (the version table
and its clocks are the only difference between the two stores).

    .venv/bin/python bench/versions_micro.py [--keys 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trio_kv.commands.redis import REDIS_COMMANDS  # noqa: E402
from trio_kv.commands.session import Session  # noqa: E402
from trio_kv.commands.wire import RESP  # noqa: E402
from trio_kv.config import Config  # noqa: E402
from trio_kv.store.engine import Job, Store, run_batch  # noqa: E402
from trio_kv.store.local_control import LocalControl  # noqa: E402

NODE_ID = bytes.fromhex("0123456789abcdef0123456789abcdef01234567")


def make_store(cluster: bool) -> Store:
    return Store(Config(), actor_id=NODE_ID if cluster else None)


def set_seconds(cluster: bool, keys: int, pipeline: int, hot: bool = False) -> float:
    """Seconds per SET of ``keys`` distinct keys, written twice (new, then
    overwritten); ``hot``: all to one key (its counter grows past one byte)."""
    store = make_store(cluster)
    session = Session(1, store, LocalControl(store), wire=RESP)
    requests = [[b"SET", b"hot" if hot else b"key:%012d" % i, b"abc"] for i in range(keys)]
    started = time.perf_counter()
    for _ in range(2):
        for start in range(0, keys, pipeline):
            job = Job(session, REDIS_COMMANDS, requests[start : start + pipeline], time.perf_counter())
            run_batch(store, [job])
    return (time.perf_counter() - started) / (2 * keys)


def bytes_per_key(cluster: bool, keys: int) -> float:
    tracemalloc.start()
    store = make_store(cluster)
    session = Session(1, store, LocalControl(store), wire=RESP)
    before = tracemalloc.get_traced_memory()[0]
    for start in range(0, keys, 1000):
        requests = [[b"SET", b"key:%012d" % i, b"abc"] for i in range(start, min(keys, start + 1000))]
        run_batch(store, [Job(session, REDIS_COMMANDS, requests, 0.0)])
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return used / keys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pipeline", type=int, default=100)
    args = parser.parse_args()
    print("| cluster mode | SET us (median) | SET us, one hot key | bytes per key (tracemalloc) |")
    print("|---|---|---|---|")
    results = {}
    for cluster in (False, True):
        runs = [set_seconds(cluster, args.keys // 4, args.pipeline) for _ in range(args.repeat)]
        hot = [set_seconds(cluster, args.keys // 4, args.pipeline, hot=True) for _ in range(args.repeat)]
        results[cluster] = (statistics.median(runs) * 1e6, bytes_per_key(cluster, args.keys), statistics.median(hot) * 1e6)
    for cluster, (us, per_key, hot_us) in results.items():
        print(f"| {'on' if cluster else 'off'} | {us:.2f} | {hot_us:.2f} | {per_key:.0f} |")
    print()
    print(f"versions: +{results[True][0] - results[False][0]:.2f} us per SET "
          f"({results[True][0] / results[False][0]:.2f}x), +{results[True][1] - results[False][1]:.0f} bytes per key")


if __name__ == "__main__":
    main()
