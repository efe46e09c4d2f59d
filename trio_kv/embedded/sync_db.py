"""``DB``: the store as a library, called on the caller's thread.

The same ``Store``, keyspace, lock, effects and append-only log as the
server, without its shell: no event loop, no dispatcher, no worker hop, no
threads (but a compaction's: embedded/sync_log.py). Each call takes the
store lock itself through the store's typed API (store/direct.py), so a
``DB`` may be shared by threads; with the log on, a write returns once its
record is as durable as ``appendfsync`` promises.

Rules kept here:

* Arguments are checked before anything is locked (``TypeError`` for keys
  and values that are not bytes, ``ValueError`` for a TTL that is not
  positive); a batch is checked whole before any of it applies.
* A closed ``DB`` raises ``Closed`` from every call but ``close`` (which may
  be called again).
* Expired keys are swept (the server's bounded cycle,
  store/expiry_cycle.py) at a write once ``active_expire_interval_seconds``
  has passed since the last sweep; reads never sweep.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from types import TracebackType

from ..store import direct
from ..store.direct import SCAN_PAGE_KEYS, Delete, Put, check_key, check_put, check_scan, checked_batch
from ..store.expiry_cycle import active_expire_cycle
from ..store.store import Store
from ..store.snapshots import SnapshotView
from .snapshot import DBSnapshot
from .sync_log import SyncLog
from .transaction import Transaction
from .tx_buffer import TxBuffer

_monotonic = time.monotonic


class Closed(RuntimeError):
    """The store was closed."""


class DB:
    """An open store (``trio_kv.open``); see the module docstring."""

    def __init__(self, store: Store, log: SyncLog | None) -> None:
        self._store = store
        # The append-only log when opened with a path; None: memory only.
        self._log = log
        self._closed = False
        # time.monotonic() after which the next write sweeps expired keys.
        self._sweep_interval_s = store.config.active_expire_interval_seconds
        self._next_sweep_s = time.monotonic() + self._sweep_interval_s

    @property
    def store(self) -> Store:
        """The underlying store (for tools and tests)."""
        return self._store

    @property
    def closed(self) -> bool:
        return self._closed

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key``; None if it is absent or expired."""
        if type(key) is not bytes:
            check_key(key)
        if self._closed:
            raise Closed("the store is closed")
        return direct.get(self._store, key)

    def exists(self, key: bytes) -> bool:
        if type(key) is not bytes:
            check_key(key)
        if self._closed:
            raise Closed("the store is closed")
        return direct.exists(self._store, key)

    def put(self, key: bytes, value: bytes, ttl_ms: int | None = None) -> None:
        """``key`` holds ``value`` from now on, for ``ttl_ms`` milliseconds
        (None: no expiry; a previous TTL is dropped)."""
        if type(key) is not bytes or type(value) is not bytes or ttl_ms is not None:
            check_put(key, value, ttl_ms)  # raises unless only the TTL needed a look
        if self._closed:
            raise Closed("the store is closed")
        _, lsn = direct.put(self._store, key, value, ttl_ms)
        if self._log is not None:
            self._log.wait_durable(lsn)
        if _monotonic() >= self._next_sweep_s:
            self._sweep()

    def delete(self, key: bytes) -> bool:
        """Delete ``key``; whether it existed."""
        if type(key) is not bytes:
            check_key(key)
        if self._closed:
            raise Closed("the store is closed")
        deleted, lsn = direct.delete(self._store, key)
        self._written(lsn)
        return deleted

    def batch(self, ops: Iterable[Put | Delete]) -> None:
        """Apply ``Put`` and ``Delete`` operations in order, atomically: one
        lock hold (no reader sees part of it) and one log record (a crash
        keeps all or none of it)."""
        checked = checked_batch(ops)
        if self._closed:
            raise Closed("the store is closed")
        if not checked:
            return
        _, lsn = direct.apply_batch(self._store, checked)
        self._written(lsn)

    def scan(
        self, start: bytes | None = None, end: bytes | None = None, limit: int | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """``(key, value)`` for the keys ``start <= key < end`` (None: open
        on that side) in byte order, descending if ``reverse``, at most
        ``limit``. Read in pages of one read-lock hold each
        (store/direct.py ``scan_page``), so a long scan never holds up
        writers: each key comes at most once, in order, but writes between
        pages may or may not be seen (``snapshot().scan`` is one point in time)."""
        check_scan(start, end, limit)
        if self._closed:
            raise Closed("the store is closed")
        return self._scan(start, end, limit, reverse)

    def _scan(
        self, start: bytes | None, end: bytes | None, limit: int | None, reverse: bool
    ) -> Iterator[tuple[bytes, bytes]]:
        remaining = limit
        resume: bytes | None = None
        while remaining is None or remaining > 0:
            if self._closed:
                raise Closed("the store is closed")
            count = SCAN_PAGE_KEYS if remaining is None else min(remaining, SCAN_PAGE_KEYS)
            pairs, resume = direct.scan_page(self._store, start, end, reverse, resume, count)
            yield from pairs
            if remaining is not None:
                remaining -= len(pairs)
            if resume is None:
                return

    def snapshot(self) -> DBSnapshot:
        """A point-in-time read view (``get``, ``exists``, ``scan``;
        embedded/snapshot.py): ``with db.snapshot() as snap:``, released
        at the block's end (or by ``release()``)."""
        if self._closed:
            raise Closed("the store is closed")
        return DBSnapshot(self._store.open_snapshot())

    def transaction(self) -> Transaction:
        """``with db.transaction() as tx:``: reads at a snapshot (and its
        own writes), writes buffered, committed at the block's clean end
        with conflict detection (``trio_kv.Conflict``; embedded/transaction.py)."""
        if self._closed:
            raise Closed("the store is closed")
        return Transaction(self, self._store.open_snapshot())

    def _commit(self, view: SnapshotView, buffer: TxBuffer) -> None:
        """A transaction's commit (``Conflict``, or applied and durable)."""
        if self._closed:
            raise Closed("the store is closed")
        _, lsn = direct.commit_transaction(self._store, view, buffer.keys(), buffer.ranges, buffer.ops())
        self._written(lsn)

    def _written(self, lsn: int) -> None:
        """After a write: its record durable, and the expiry sweep if due
        (``put`` has these lines inline)."""
        if self._log is not None:
            self._log.wait_durable(lsn)
        if _monotonic() >= self._next_sweep_s:
            self._sweep()

    def _sweep(self) -> None:
        self._next_sweep_s = _monotonic() + self._sweep_interval_s
        active_expire_cycle(self._store)

    def flush(self) -> None:
        """Make every write so far durable (written and fsynced), whatever
        ``appendfsync`` says. Memory only: nothing to do."""
        if self._closed:
            raise Closed("the store is closed")
        if self._log is not None:
            self._log.flush()

    def compact(self) -> bool:
        """Rewrite the log as a snapshot now (the server's BGREWRITEAOF), on
        this thread; whether it worked. Memory only: nothing to do (True)."""
        if self._closed:
            raise Closed("the store is closed")
        return True if self._log is None else self._log.compact()

    def close(self) -> None:
        """Flush and fsync the log, close it and unlock the data directory.
        Calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> DB:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __len__(self) -> int:
        """Keys stored (expired ones not yet swept included, as DBSIZE)."""
        if self._closed:
            raise Closed("the store is closed")
        with self._store.lock.read_locked():
            return len(self._store.keyspace)

    def __repr__(self) -> str:
        config = self._store.config
        where = config.data_dir if config.appendonly else "memory"
        return f"<trio_kv.DB {where}{' closed' if self._closed else ''}>"
