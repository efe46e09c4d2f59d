"""The active expiry sweep's timer: every ``--active-expire-interval-seconds``
(default 0.1 s) the dispatcher runs one bounded ``active_expire_cycle``
(store/expiry_cycle.py, which says what a cycle does) on a worker, sharing a
hop with client requests, under the write lock.
"""

from __future__ import annotations

import functools

import trio

from ..store.engine import Store
from ..store.expiry_cycle import active_expire_cycle as active_expire_cycle  # its old home
from .dispatch import Dispatcher


async def run_active_expiry(store: Store, dispatcher: Dispatcher) -> None:
    interval = store.config.active_expire_interval_seconds
    cycle = functools.partial(active_expire_cycle, store)
    while True:
        await trio.sleep(interval)
        await dispatcher.run_sync(cycle)
