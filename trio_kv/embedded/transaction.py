"""``Transaction``: ``with db.transaction() as tx:`` on the sync ``DB``, a
snapshot plus a write buffer (embedded/tx_buffer.py), committed with
conflict detection (store/direct.py ``commit_transaction``).

Rules kept here:

* Reads see the transaction's own writes, then its snapshot; nothing is
  written to the store before the commit.
* The ``with`` block's clean end commits: under the write lock,
  ``trio_kv.Conflict`` if a key read or written, or a key in a scanned
  range, changed after the snapshot (nothing applies); else every write
  applies as one unit, one log record. An exception in the block aborts
  (nothing applies) and propagates. Either way the snapshot is released.
* A transaction is used once, by one thread at a time.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

from ..store.snapshot_api import Snapshot

from .tx_buffer import TxBuffer

if TYPE_CHECKING:
    from .sync_db import DB


class Transaction:
    __slots__ = ("_db", "_snapshot", "_buffer", "_done")

    def __init__(self, db: DB, snapshot: Snapshot) -> None:
        self._db = db
        self._snapshot = snapshot
        self._buffer = TxBuffer()
        self._done = False

    def get(self, key: bytes) -> bytes | None:
        """Its own last write of ``key``, else the value at the snapshot."""
        self._check()
        found, value = self._buffer.buffered(key)
        return value if found else self._snapshot.get(key)

    def exists(self, key: bytes) -> bool:
        return self.get(key) is not None

    def put(self, key: bytes, value: bytes, ttl_ms: int | None = None) -> None:
        self._check()
        self._buffer.put(key, value, ttl_ms)

    def delete(self, key: bytes) -> None:
        self._check()
        self._buffer.delete(key)

    def scan(
        self, start: bytes | None = None, end: bytes | None = None, limit: int | None = None, reverse: bool = False
    ) -> list[tuple[bytes, bytes]]:
        """``(key, value)`` for ``start <= key < end`` as the transaction sees
        them (own writes over the snapshot), in order, at most ``limit``;
        one read-lock hold (use ``limit`` on big ranges). The whole range
        counts for conflicts."""
        self._check()
        asked = self._buffer.start_scan(start, end, limit)
        pairs = self._snapshot.items(start, end, max_inclusive=False, reverse=reverse, limit=asked)
        return self._buffer.merge(pairs, start, end, limit, reverse, asked)

    def commit(self) -> None:
        """Check and apply (the ``with`` block's clean end calls it)."""
        self._check()
        self._done = True
        try:
            self._db._commit(self._snapshot.view, self._buffer)
        finally:
            self._snapshot.release()

    def abort(self) -> None:
        """Drop the writes and release the snapshot (again: nothing)."""
        self._done = True
        self._snapshot.release()

    def _check(self) -> None:
        if self._done:
            raise RuntimeError("the transaction is finished")

    def __enter__(self) -> Transaction:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if kind is None and not self._done:
            self.commit()
        else:
            self.abort()



