"""``TrioDB``: the store as a library for Trio programs (``trio_kv.open_trio``).

The server's async shell without its listeners: the group dispatcher
(server/dispatch.py) runs every call on a worker thread, sharing one hop
with whatever the program's other tasks asked for meanwhile, so many
concurrent calls cost one ``trio.to_thread`` hop, not one each; with the
log on, the commit thread (server/log_commit.py: group commit,
``everysec`` fsyncs, compaction) makes a write durable before its call
returns, and the server's expiry sweep runs beside them. The calls are the
sync ``DB``'s, awaitable, on the same typed store API (store/direct.py).

Rules kept here:

* Arguments are checked on the event loop, before the hop; a batch whole.
* A call that was cancelled before its hop started never runs; once on a
  worker it runs to its end (the dispatcher's rule), so a write is never
  half-applied (it may be applied and not yet durable when the cancel
  arrives while it waits for the log).
* Leaving ``open_trio``'s block flushes, fsyncs and closes the log, stops
  the dispatcher (a hop on a worker finishes first) and unlocks the data
  directory; afterwards every call raises ``Closed``.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import trio

from ..store import direct
from ..store.direct import SCAN_PAGE_KEYS, Delete, Put, check_key, check_put, check_scan, checked_batch
from ..store.durability.append_log import Persistence
from ..store.store import Store
from ..server.dispatch import Dispatcher
from ..server.expiry import run_active_expiry
from ..server.log_commit import DISK_THREADS, LogFlusher, load_and_open_log
from .sync_db import Closed
from .trio_tx import TrioSnapshot, TrioTransaction


class TrioDB:
    """An open store for Trio (``trio_kv.open_trio``); see the module docstring."""

    def __init__(self, store: Store, dispatcher: Dispatcher, disk: trio.CapacityLimiter) -> None:
        self._store = store
        self._dispatcher = dispatcher
        # Limits the threads flush() uses (the server's disk limiter).
        self._disk = disk
        self._closed = False

    @property
    def store(self) -> Store:
        return self._store

    @property
    def closed(self) -> bool:
        return self._closed

    async def get(self, key: bytes) -> bytes | None:
        if type(key) is not bytes:
            check_key(key)
        self._check_open()
        return await self._dispatcher.run_sync(functools.partial(direct.get, self._store, key))

    async def exists(self, key: bytes) -> bool:
        if type(key) is not bytes:
            check_key(key)
        self._check_open()
        return await self._dispatcher.run_sync(functools.partial(direct.exists, self._store, key))

    async def put(self, key: bytes, value: bytes, ttl_ms: int | None = None) -> None:
        check_put(key, value, ttl_ms)
        self._check_open()
        await self._dispatcher.run_logged(functools.partial(direct.put, self._store, key, value, ttl_ms))

    async def delete(self, key: bytes) -> bool:
        if type(key) is not bytes:
            check_key(key)
        self._check_open()
        return await self._dispatcher.run_logged(functools.partial(direct.delete, self._store, key))

    async def batch(self, ops: Iterable[Put | Delete]) -> None:
        checked = checked_batch(ops)
        self._check_open()
        if checked:
            await self._dispatcher.run_logged(functools.partial(direct.apply_batch, self._store, checked))

    def scan(
        self, start: bytes | None = None, end: bytes | None = None, limit: int | None = None, reverse: bool = False
    ) -> TrioScan:
        """``async for key, value in db.scan(start, end)``: as ``DB.scan``,
        each page (up to ``SCAN_PAGE_KEYS`` keys) one call through the
        dispatcher."""
        check_scan(start, end, limit)
        self._check_open()
        return TrioScan(self, start, end, limit, reverse)

    async def _scan_page(
        self, start: bytes | None, end: bytes | None, reverse: bool, resume: bytes | None, count: int
    ) -> tuple[list[tuple[bytes, bytes]], bytes | None]:
        self._check_open()
        return await self._dispatcher.run_sync(
            functools.partial(direct.scan_page, self._store, start, end, reverse, resume, count)
        )

    def snapshot(self) -> TrioSnapshot:
        """``async with db.snapshot() as snap:`` (``await snap.get(key)``,
        ``async for key, value in snap.scan(...)``): ``DB.snapshot``, each
        read one call through the dispatcher (embedded/trio_tx.py)."""
        self._check_open()
        return TrioSnapshot(self)

    def transaction(self) -> TrioTransaction:
        """``async with db.transaction() as tx:`` (``await tx.get``,
        ``tx.put``, ``tx.delete``, ``await tx.scan``): ``DB.transaction``,
        committed through the dispatcher at the block's clean end."""
        self._check_open()
        return TrioTransaction(self)

    async def flush(self) -> None:
        """Every write so far written and fsynced, whatever ``appendfsync`` says."""
        self._check_open()
        persistence = self._store.persistence
        if persistence is not None:
            await trio.to_thread.run_sync(_flush_and_sync, persistence, limiter=self._disk)

    def _check_open(self) -> None:
        if self._closed:
            raise Closed("the store is closed")

    def _close(self) -> None:
        self._closed = True


class TrioScan:
    """The async iterator ``TrioDB.scan`` returns: one page per hop, no
    async generator (nothing to finalize when a loop stops early)."""

    def __init__(
        self, db: TrioDB, start: bytes | None, end: bytes | None, limit: int | None, reverse: bool
    ) -> None:
        self._db = db
        self._start, self._end, self._reverse = start, end, reverse
        self._remaining = limit
        self._page: list[tuple[bytes, bytes]] = []
        self._position = 0
        self._resume: bytes | None = None
        self._done = limit == 0

    def __aiter__(self) -> TrioScan:
        return self

    async def __anext__(self) -> tuple[bytes, bytes]:
        while self._position == len(self._page):
            if self._done:
                raise StopAsyncIteration
            remaining = self._remaining
            count = SCAN_PAGE_KEYS if remaining is None else min(remaining, SCAN_PAGE_KEYS)
            self._page, self._resume = await self._db._scan_page(
                self._start, self._end, self._reverse, self._resume, count
            )
            self._position = 0
            if remaining is not None:
                self._remaining = remaining = remaining - len(self._page)
            self._done = self._resume is None or remaining == 0
        pair = self._page[self._position]
        self._position += 1
        return pair


def _flush_and_sync(persistence: Persistence) -> None:
    try:
        persistence.flush()
        persistence.sync()
    except OSError as error:
        raise direct.LogRefused(f"flush failed: {error.strerror or error}") from error


@asynccontextmanager
async def open_store(store: Store) -> AsyncIterator[TrioDB]:
    """``open_trio``'s body, for a store built by the caller: recovery,
    then the dispatcher, the log's commit thread and the expiry sweep in a
    nursery for the life of the block."""
    config = store.config
    disk = trio.CapacityLimiter(DISK_THREADS)
    persistence = await load_and_open_log(store, disk) if config.appendonly else None
    try:
        async with trio.open_nursery() as nursery:
            flusher = None
            if persistence is not None:
                flusher = LogFlusher(store, persistence, disk, on_flushed=lambda error: dispatcher.log_flushed(error))
            dispatcher = Dispatcher(store, config.workers, commit=flusher)
            await nursery.start(dispatcher.run)
            if flusher is not None:
                await nursery.start(flusher.run)
                store.persistence = persistence  # the typed API logs from now on
            nursery.start_soon(run_active_expiry, store, dispatcher)
            db = TrioDB(store, dispatcher, disk)
            try:
                yield db
            finally:
                db._close()
                with trio.CancelScope(shield=True):
                    if flusher is not None:
                        await flusher.close()
                nursery.cancel_scope.cancel()
    finally:
        if persistence is not None:
            persistence.data_dir.unlock()
