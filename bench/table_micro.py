"""The two hash tables side by side: CPU per operation, bytes per key, and
the worst single write while loading.

Each measurement runs in a fresh child process per table, so the memory
figure is that table's own (RSS delta, VmRSS from /proc, after loading N
keys ``key:%012d`` with 3-byte values, the same shape as
``bench/redis_compare.py --memory``). Per-op CPU: the median over
``--repeat`` runs of a loop of get (hit), get (miss), overwrite (same
size), set of a new key, delete, over a table of ``--ops-keys`` keys.
Worst write: the largest single ``set`` while inserting ``--worst-keys``
keys, in CPU time of the thread (``time.thread_time``: wall time on a busy
machine mostly measures preemption).

    .venv/bin/python bench/table_micro.py [--keys 1000000] [--worst-keys 2000000]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import time
from typing import Any

TABLES = ("objects", "compact")


def make_table(name: str) -> Any:
    if name == "compact":
        from trio_kv.store.compact_table import CompactTable

        return CompactTable()
    from trio_kv.store.hashtable import HashTable

    return HashTable()


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def child_memory(name: str, keys: int) -> dict[str, float]:
    table = make_table(name)
    gc.collect()
    before = rss_bytes()
    for i in range(keys):
        # New objects per key, as a server parsing requests makes them.
        table.set(b"key:%012d" % i, b"v%02d" % (i % 100))
    while table.rehash_step(1024):
        pass
    gc.collect()
    after = rss_bytes()
    return {"bytes_per_key": (after - before) / keys}


def child_ops(name: str, keys: int) -> dict[str, float]:
    table = make_table(name)
    names = [b"key:%012d" % i for i in range(keys)]
    for k in names:
        table.set(k, b"abc")
    while table.rehash_step(1024):
        pass
    # Lookups with new key objects, as a server's parsed requests are (the
    # object table would otherwise find the very same object, hash cached).
    names = [b"key:%012d" % i for i in range(keys)]
    misses = [b"miss:%012d" % i for i in range(keys)]
    extra = [b"new:%012d" % i for i in range(keys)]
    clock = time.perf_counter
    out: dict[str, float] = {}
    get, swap, pop = table.get, table.swap, table.pop
    t0 = clock()
    for k in names:
        get(k)
    out["get_hit_ns"] = (clock() - t0) / keys * 1e9
    t0 = clock()
    for k in misses:
        get(k)
    out["get_miss_ns"] = (clock() - t0) / keys * 1e9
    t0 = clock()
    for k in names:
        swap(k, b"xyz")
    out["overwrite_ns"] = (clock() - t0) / keys * 1e9
    t0 = clock()
    for k in extra:
        swap(k, b"abc")
    out["insert_ns"] = (clock() - t0) / keys * 1e9
    t0 = clock()
    for k in extra:
        pop(k, None)
    out["delete_ns"] = (clock() - t0) / keys * 1e9
    return out


def child_worst(name: str, keys: int) -> dict[str, float]:
    table = make_table(name)
    # CPU time of this thread: on a busy machine wall time mostly measures
    # the scheduler (a preempted write looks like a stall).
    clock = time.thread_time
    worst = 0.0
    slow = 0
    names = [b"key:%012d" % i for i in range(keys)]
    values = [b"v%02d" % (i % 100) for i in range(keys)]
    gc.disable()  # the server's GC pauses are another story
    for k, v in zip(names, values):
        t0 = clock()
        table.set(k, v)
        spent = clock() - t0
        if spent > worst:
            worst = spent
        if spent > 0.001:
            slow += 1
    return {"worst_write_cpu_ms": worst * 1000, "writes_over_1ms_cpu": slow}


def run_child(kind: str, name: str, keys: int) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, __file__, "--child", kind, name, str(keys)], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000, help="keys for the memory figure")
    parser.add_argument("--ops-keys", type=int, default=200_000, help="keys per op loop")
    parser.add_argument("--worst-keys", type=int, default=2_000_000, help="keys inserted for the worst write")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--only", default="ops,memory,worst", help="which figures, comma-separated")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, name, keys = args.child
        fn = {"memory": child_memory, "ops": child_ops, "worst": child_worst}[kind]
        print(json.dumps(fn(name, int(keys))))
        return
    with open("/proc/loadavg") as loadavg:
        print(f"load average at start: {loadavg.read().split()[:3]}")
    rows: dict[str, dict[str, float]] = {name: {} for name in TABLES}
    kinds = {"ops": args.ops_keys, "memory": args.keys, "worst": args.worst_keys}
    for kind, keys in kinds.items():
        if kind not in args.only.split(","):
            continue
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in TABLES}
        for _ in range(args.repeat):
            for name in TABLES:  # interleaved: A/B in the same stretch of load
                runs[name].append(run_child(kind, name, keys))
        for name in TABLES:
            for field in runs[name][0]:
                rows[name][field] = statistics.median(run[field] for run in runs[name])
    fields = list(rows["objects"])
    print("| table | " + " | ".join(fields) + " |")
    print("|---" * (len(fields) + 1) + "|")
    for name in TABLES:
        print(f"| {name} | " + " | ".join(f"{rows[name][f]:.1f}" for f in fields) + " |")
    with open("/proc/loadavg") as loadavg:
        print(f"load average at end: {loadavg.read().split()[:3]}")


if __name__ == "__main__":
    main()
