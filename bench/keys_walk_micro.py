#!/usr/bin/env python3
"""In-process cost of a whole sliced KEYS / SCAN 0 COUNT 1e9 walk, no sockets.

Loads N keys (``key:%d``, 10-byte values) into a Keyspace, then runs the
sliced command's ``step`` with the server's slice deadline until it is done
(no lock, no other work between slices) and prints the total walk time,
the number of slices, and the slowest slice, for: KEYS *, KEYS key:1*,
KEYS *9 (general matcher), SCAN 0 COUNT 1e9, KEYS * forced onto the
SCAN cursor walk (the pre-fast-path way, for comparison), and KEYS * on a
snapshot (what the KEYS command runs), and KEYS key:* on the sorted index
(commands/ordered_range.py), as a live walk and exact (on a snapshot after
its first slice). ``--writes-per-slice N`` overwrites N keys between two
slices (0: none), so the snapshot has something to correct. A script that
prints numbers; it asserts nothing.

    .venv/bin/python bench/keys_walk_micro.py --keys 1000000
"""

from __future__ import annotations

import argparse
import time

from trio_kv.commands.keys import SCAN_SLOTS_PER_COUNT, key_predicate
from trio_kv.commands.ordered_range import RangeSlices, prefix_end
from trio_kv.commands.slicing import SLICE_SECONDS, KeysSlices, ScanSlices
from trio_kv.commands.snapshot_keys import SnapshotKeys
from trio_kv.store.keyspace import Keyspace
from trio_kv.store.sorted_index import SortedKeyIndex


def run(work: object, between: object = None) -> tuple[float, int, float, int, float]:
    clock = time.perf_counter
    slices = 0
    worst = 0.0
    started = clock()
    cpu_started = time.process_time()  # this process's CPU: less noisy than the wall on a shared machine
    while True:
        t0 = clock()
        done = work.step(t0 + SLICE_SECONDS)  # type: ignore[attr-defined]
        worst = max(worst, clock() - t0)
        slices += 1
        if done:
            break
        if between is not None:
            between()  # type: ignore[operator]
    total = clock() - started
    cpu = time.process_time() - cpu_started
    reply = work.reply()  # type: ignore[attr-defined]
    found = len(reply[1]) if isinstance(reply, list) and len(reply) == 2 and isinstance(reply[1], list) else len(reply)
    return total, slices, worst, found, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ttl-keys", type=int, default=0, help="give this many keys a far TTL")
    parser.add_argument("--writes-per-slice", type=int, default=0, help="keys overwritten between two slices")
    options = parser.parse_args()
    keyspace = Keyspace()
    for i in range(options.keys):
        keyspace.set(b"key:%d" % i, b"0123456789")
    far_ms = keyspace.now_ms() + 3_600_000
    for i in range(options.ttl_keys):
        keyspace.set_expire_at(b"key:%d" % i, far_ms)
    while keyspace.slot_counts()[1]:
        keyspace.rehash_step(1 << 20)
    cases = {
        "KEYS *": lambda: KeysSlices(keyspace, key_predicate(b"*")),
        "KEYS key:1*": lambda: KeysSlices(keyspace, key_predicate(b"key:1*")),
        "KEYS *9": lambda: KeysSlices(keyspace, key_predicate(b"*9")),
        "SCAN 0 COUNT 1e9": lambda: ScanSlices(
            keyspace, 0, 1_000_000_000, SCAN_SLOTS_PER_COUNT, lambda cursor, keys: [cursor, keys]
        ),
        "KEYS * (cursor walk)": lambda: KeysSlices(keyspace, None, index_walk=False),
        # What KEYS runs now (commands/snapshot_keys.py): the walk on a snapshot.
        "KEYS * (on a snapshot)": lambda: SnapshotKeys(keyspace, key_predicate(b"*")),
        # RESP KEYS key:* and line KEYS key: with the sorted index (on by default).
        "KEYS key:* (index, live walk)": lambda: RangeSlices(keyspace, b"key:", prefix_end(b"key:"), high_inclusive=False),
        "KEYS key:* (index, exact)": lambda: RangeSlices(
            keyspace, b"key:", prefix_end(b"key:"), high_inclusive=False, exact=True
        ),
    }
    written = [0]

    def write() -> None:
        for _ in range(options.writes_per_slice):
            keyspace.set(b"key:%d" % (written[0] * 7919 % options.keys), b"9876543210")
            written[0] += 1

    keyspace.attach_sorted_index(SortedKeyIndex())
    print(
        f"{options.keys} keys, {options.ttl_keys} with a TTL, {options.writes_per_slice} writes between slices;"
        f" slice {SLICE_SECONDS * 1000:.0f} ms"
    )
    print("| command | walk s (best of %d) | CPU s | slices | slowest slice ms | keys |" % options.repeat)
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, make in cases.items():
        results = [run(make(), write if options.writes_per_slice else None) for _ in range(options.repeat)]
        total, slices, worst, found, cpu = min(results)
        print(f"| {name} | {total:.3f} | {cpu:.3f} | {slices} | {worst * 1000:.1f} | {found} |")


if __name__ == "__main__":
    main()
