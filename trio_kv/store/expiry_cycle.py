"""One bounded cycle of the active expiry sweep: frees keys whose time ran
out even if nobody reads them again (reads only hide expired keys; see
``store.keyspace``).

The cycle is bounded as Redis' is: batches of ``SWEEP_BATCH_KEYS`` keys
with a TTL, repeated while more than a quarter of a batch was expired, and
never longer than ``SWEEP_BUDGET_SECONDS``, so it cannot stall anyone. It
also advances any hash-table resize, as Redis' ``activerehashing`` does:
steps of ``IDLE_REHASH_BUCKETS`` for up to ``IDLE_REHASH_SECONDS`` a cycle,
so a table whose writes stopped mid-resize still finishes it instead of
keeping both lists for good. Who runs
it, and how often, is the shell's: the server every
``--active-expire-interval-seconds`` on a worker (server/expiry.py), the
embedded library on the thread of a write once that interval has passed.
Takes the write lock itself.
"""

from __future__ import annotations

import time

from .store import Store

SWEEP_BATCH_KEYS = 64
SWEEP_BUDGET_SECONDS = 0.005
IDLE_REHASH_BUCKETS = 256
# Redis' activerehashing spends 1 ms of each 100 ms cron.
IDLE_REHASH_SECONDS = 0.001


def active_expire_cycle(store: Store) -> int:
    keyspace = store.keyspace
    removed_total = 0
    started = time.perf_counter()
    deadline = started + SWEEP_BUDGET_SECONDS
    with store.lock.write_locked():
        rehash_deadline = started + IDLE_REHASH_SECONDS
        while keyspace.rehash_step(IDLE_REHASH_BUCKETS) and time.perf_counter() < rehash_deadline:
            pass
        # Idle snapshots expire, released ones' undo logs go (store/snapshots.py).
        keyspace.snapshots.maintain()
        while True:
            removed = keyspace.active_expire_step(SWEEP_BATCH_KEYS)
            removed_total += removed
            if removed * 4 <= SWEEP_BATCH_KEYS or time.perf_counter() > deadline:
                break
    # LATENCY's "expire-cycle" event (lock wait included, as it delays clients too).
    store.latency_monitor.add_sample_if_needed("expire-cycle", int((time.perf_counter() - started) * 1000))
    return removed_total
