"""``TrioSnapshot`` and ``TrioTransaction``: ``TrioDB.snapshot()`` and
``TrioDB.transaction()``, the sync ones' (embedded/snapshot.py,
embedded/transaction.py) with every store access one call through the
group dispatcher.

Rules kept here:

* Both are ``async with`` blocks: entering opens the snapshot (one hop),
  leaving releases it (no hop: a release takes no lock).
* A transaction's clean block end commits through ``run_logged`` (the
  conflict check and the writes in one hop; it returns once the record is
  as durable as ``appendfsync`` promises); an exception in the block,
  ``trio.Cancelled`` included, aborts: nothing applies, and the exception
  propagates.
* Buffered writes and reads of buffered keys make no hop.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from types import TracebackType
from typing import TYPE_CHECKING

from ..store import direct
from ..store.direct import SCAN_PAGE_KEYS, check_key, check_scan
from ..store.snapshot_api import Snapshot
from .snapshot import snapshot_page
from .tx_buffer import TxBuffer

if TYPE_CHECKING:
    from .trio_db import TrioDB


class _Opened:
    """The snapshot a block opened; None before ``__aenter__``."""

    __slots__ = ("_db", "_snapshot")

    def __init__(self, db: TrioDB) -> None:
        self._db = db
        self._snapshot: Snapshot | None = None

    async def _open(self) -> None:
        self._db._check_open()
        self._snapshot = await self._db._dispatcher.run_sync(self._db.store.open_snapshot)

    @property
    def _snap(self) -> Snapshot:
        if self._snapshot is None:
            raise RuntimeError("use it in an async with block")
        return self._snapshot

    async def _get(self, key: bytes) -> bytes | None:
        self._db._check_open()
        return await self._db._dispatcher.run_sync(functools.partial(self._snap.get, key))


class TrioSnapshot(_Opened):
    """``async with db.snapshot() as snap:``; see the module docstring."""

    __slots__ = ()

    async def get(self, key: bytes) -> bytes | None:
        if type(key) is not bytes:
            check_key(key)
        return await self._get(key)

    async def exists(self, key: bytes) -> bool:
        return await self.get(key) is not None

    async def scan(
        self, start: bytes | None = None, end: bytes | None = None, limit: int | None = None, reverse: bool = False
    ) -> AsyncIterator[tuple[bytes, bytes]]:
        """``async for key, value in snap.scan(...)``: as ``DB.snapshot().scan``,
        one hop a page."""
        check_scan(start, end, limit)
        snapshot, run = self._snap, self._db._dispatcher.run_sync
        remaining = limit
        resume: bytes | None = None
        while remaining is None or remaining > 0:
            count = SCAN_PAGE_KEYS if remaining is None else min(remaining, SCAN_PAGE_KEYS)
            self._db._check_open()
            pairs, resume = await run(functools.partial(snapshot_page, snapshot, start, end, reverse, resume, count))
            for pair in pairs:
                yield pair
            if remaining is not None:
                remaining -= len(pairs)
            if resume is None:
                return

    def release(self) -> None:
        if self._snapshot is not None:
            self._snapshot.release()

    async def __aenter__(self) -> TrioSnapshot:
        await self._open()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.release()


class TrioTransaction(_Opened):
    """``async with db.transaction() as tx:``; see the module docstring."""

    __slots__ = ("_buffer", "_done")

    def __init__(self, db: TrioDB) -> None:
        super().__init__(db)
        self._buffer = TxBuffer()
        self._done = False

    async def get(self, key: bytes) -> bytes | None:
        """Its own last write of ``key``, else the value at the snapshot."""
        self._check()
        found, value = self._buffer.buffered(key)
        return value if found else await self._get(key)

    async def exists(self, key: bytes) -> bool:
        return await self.get(key) is not None

    def put(self, key: bytes, value: bytes, ttl_ms: int | None = None) -> None:
        self._check()
        self._buffer.put(key, value, ttl_ms)

    def delete(self, key: bytes) -> None:
        self._check()
        self._buffer.delete(key)

    async def scan(
        self, start: bytes | None = None, end: bytes | None = None, limit: int | None = None, reverse: bool = False
    ) -> list[tuple[bytes, bytes]]:
        """As the sync ``Transaction.scan``, one hop."""
        self._check()
        asked = self._buffer.start_scan(start, end, limit)
        self._db._check_open()
        pairs = await self._db._dispatcher.run_sync(
            functools.partial(self._snap.items, start, end, max_inclusive=False, reverse=reverse, limit=asked)
        )
        return self._buffer.merge(pairs, start, end, limit, reverse, asked)

    async def commit(self) -> None:
        """Check and apply (the block's clean end calls it)."""
        self._check()
        self._done = True
        snapshot, buffer = self._snap, self._buffer
        try:
            self._db._check_open()
            await self._db._dispatcher.run_logged(functools.partial(
                direct.commit_transaction, self._db.store, snapshot.view, buffer.keys(), buffer.ranges, buffer.ops()
            ))
        finally:
            snapshot.release()

    def abort(self) -> None:
        self._done = True
        if self._snapshot is not None:
            self._snapshot.release()

    def _check(self) -> None:
        if self._done:
            raise RuntimeError("the transaction is finished")

    async def __aenter__(self) -> TrioTransaction:
        await self._open()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if kind is None and not self._done:
            await self.commit()
        else:
            self.abort()
