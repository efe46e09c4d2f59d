"""The active expiry sweep: frees keys whose time ran out even if nobody
reads them again (reads only hide expired keys; see ``store.keyspace``).

Every ``--active-expire-interval-seconds`` (default 0.1 s) the dispatcher
runs ``active_expire_cycle`` on a worker (sharing a hop with client
requests) under the write lock. The cycle
is bounded as Redis' is: batches of ``SWEEP_BATCH_KEYS`` keys with a TTL,
repeated while more than a quarter of a batch was expired, and never longer
than ``SWEEP_BUDGET_SECONDS``, so the sweep cannot stall clients. The same
hop advances any hash-table resize a little, as Redis' cron does.
"""

from __future__ import annotations

import functools
import time

import trio

from ..store.engine import Store
from .dispatch import Dispatcher

SWEEP_BATCH_KEYS = 64
SWEEP_BUDGET_SECONDS = 0.005
IDLE_REHASH_BUCKETS = 256


def active_expire_cycle(store: Store) -> int:
    keyspace = store.keyspace
    removed_total = 0
    started = time.perf_counter()
    deadline = started + SWEEP_BUDGET_SECONDS
    with store.lock.write_locked():
        keyspace.rehash_step(IDLE_REHASH_BUCKETS)
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


async def run_active_expiry(store: Store, dispatcher: Dispatcher) -> None:
    interval = store.config.active_expire_interval_seconds
    cycle = functools.partial(active_expire_cycle, store)
    while True:
        await trio.sleep(interval)
        await dispatcher.run_sync(cycle)
