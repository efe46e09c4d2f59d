"""The issue's test: 1M accounts, a snapshot read in 1,000-key pages sums
to the exact total while a writer thread keeps about 10,000 writes/s of
transfers going (each transfer: two SETs under one write-lock hold, as a
MULTI would be). Built in-process (no sockets: the store, its lock and its
snapshots are what is tested) to keep it cheap. Prints the writer's
achieved rate and its lock-wait p50/p99 (no timed assertion); the README's
"Snapshots" section has the figures."""

from __future__ import annotations

import random
import threading
import time

import pytest

from trio_kv.config import Config
from trio_kv.store.store import Store

ACCOUNTS = 1_000_000
BALANCE = 100
PAGE_KEYS = 1000
WRITES_PER_SECOND = 10_000


def _writer(store: Store, stop: threading.Event, waits_s: list[float], counts: list[int]) -> None:
    keyspace, lock = store.keyspace, store.lock
    rng = random.Random(7)
    interval_s = 2 / WRITES_PER_SECOND  # two SETs per transfer
    next_s = time.perf_counter()
    while not stop.is_set():
        a, b = b"acct:%07d" % rng.randrange(ACCOUNTS), b"acct:%07d" % rng.randrange(ACCOUNTS)
        amount = rng.randrange(1, 10)
        asked = time.perf_counter()
        with lock.write_locked():
            waits_s.append(time.perf_counter() - asked)
            if a != b:
                keyspace.set(a, b"%d" % (int(keyspace.get(a) or 0) - amount))
                keyspace.set(b, b"%d" % (int(keyspace.get(b) or 0) + amount))
                counts[0] += 2
        next_s += interval_s
        pause = next_s - time.perf_counter()
        if pause > 0:
            time.sleep(pause)  # pacing the writer to its rate, not waiting for a result


@pytest.mark.slow
def test_a_snapshot_sums_a_million_accounts_exactly_while_transfers_run():
    store = Store(Config(appendonly=False))
    keyspace = store.keyspace
    keys = [b"acct:%07d" % i for i in range(ACCOUNTS)]
    value = b"%d" % BALANCE
    for key in keys:
        keyspace.set(key, value)
    del keys
    assert store.sorted_index is not None and len(store.sorted_index) == ACCOUNTS

    stop = threading.Event()
    waits_s: list[float] = []
    counts = [0]
    writer = threading.Thread(target=_writer, args=(store, stop, waits_s, counts), daemon=True)
    writer.start()
    try:
        time.sleep(0.2)  # the writer is running before the snapshot opens
        writes_before = counts[0]
        started = time.perf_counter()
        total = seen = pages = 0
        with store.open_snapshot() as snapshot:
            view, low, inclusive = snapshot.view, None, True
            while True:
                with store.lock.read_locked():  # one page: one read-lock hold
                    page = view.items(low, None, min_inclusive=inclusive, limit=PAGE_KEYS)
                total += sum(int(value) for _key, value in page)  # type: ignore[call-overload]
                pages += 1
                seen += len(page)
                if len(page) < PAGE_KEYS:
                    break
                low, inclusive = page[-1][0], False
            undo_bytes = keyspace.snapshots.undo_bytes
        elapsed_s = time.perf_counter() - started
        writes = counts[0] - writes_before
    finally:
        stop.set()
        writer.join(10)
    assert seen == ACCOUNTS and pages == ACCOUNTS // PAGE_KEYS + 1
    assert total == ACCOUNTS * BALANCE
    assert writes > 0 and undo_bytes > 0  # the read really ran beside the writer
    # The live balances moved meanwhile and still add up.
    waits_s.sort()
    print(
        f"\nsnapshot read of {ACCOUNTS} keys in {pages} pages: {elapsed_s:.2f} s; writer {writes / elapsed_s:,.0f}"
        f" writes/s (target {WRITES_PER_SECOND:,}); lock wait p50 {waits_s[len(waits_s) // 2] * 1e3:.3f} ms,"
        f" p99 {waits_s[int(len(waits_s) * 0.99)] * 1e3:.3f} ms; undo bytes at the end {undo_bytes:,}"
    )
