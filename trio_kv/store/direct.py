"""The store's typed API: get, put, delete, exists and atomic batches of
bytes, without the command table (the embedded library's shells use it).

The server's requests are argv lists that ``store.engine.run_batch`` looks
up, admits and executes; a program that links the store has typed calls
instead, and pays for none of that. Each function here is the whole of one
operation as the engine would do it: take the store's lock, call the
keyspace, end the effects unit (``store/effects.py``: one log record per
write, one for a whole batch, as MSET and EXEC), release the lock.

Rules kept here:

* Keys and values are ``bytes`` (not a subclass, bytearray or memoryview:
  ``TypeError``), checked before any lock is taken, so a bad argument never
  leaves a batch half-applied. Nothing is pickled or encoded.
* A TTL is a positive int of milliseconds (``ValueError`` otherwise), stored
  as the absolute expiry ``now + ttl_ms`` (the keyspace's clock), as SET PX.
* Writes return ``(result, lsn)``: the log sequence number the caller must
  see flushed before it reports the write done (0 when nothing was logged:
  no log, or a write that changed nothing). Making it durable is the
  caller's (the sync shell flushes on its own thread, the Trio shell waits
  for the commit thread through the dispatcher).
* A write the log refuses (a disk error, lost files) raises ``LogRefused``
  before anything is applied, as the engine's admission refuses it. A unit
  the log cannot keep (a record over the format's 2 GiB) is applied in
  memory but raises ``ValueError`` (the engine answers such a command with
  an error the same way).
* Runs on the caller's thread; never called with the store lock held (the
  lock is not reentrant).
* Ordered reads (``scan_page``) walk the sorted key index
  (store/sorted_index.py) one page per read-lock hold: the index's
  iterators must not outlive the hold, so a page returns where the next
  one resumes (the last key it looked at, exclusive), and a long scan
  never holds up writers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .store import Store

if TYPE_CHECKING:
    from .snapshots import SnapshotView


class Conflict(Exception):
    """A transaction's commit found that a key it read or wrote, or a key
    in a range it scanned, changed after its snapshot: nothing was applied
    (run the transaction again)."""


class LogRefused(OSError):
    """The append-only log refuses writes (a disk error, or its files were
    deleted): the write was not applied, or (raised by a flush) was applied
    in memory but is not durable."""


@dataclass(frozen=True, slots=True)
class Put:
    """One write of a batch: ``key`` holds ``value`` (with a TTL, in ms)."""

    key: bytes
    value: bytes
    ttl_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Delete:
    """One deletion of a batch (no error when the key is absent)."""

    key: bytes


def check_key(key: object) -> None:
    if type(key) is not bytes:
        raise TypeError(f"keys are bytes, not {type(key).__name__}")


def check_put(key: object, value: object, ttl_ms: object) -> None:
    if type(key) is not bytes:
        raise TypeError(f"keys are bytes, not {type(key).__name__}")
    if type(value) is not bytes:
        raise TypeError(f"values are bytes, not {type(value).__name__}")
    if ttl_ms is not None:
        if type(ttl_ms) is not int:
            raise TypeError(f"ttl_ms is an int of milliseconds or None, not {type(ttl_ms).__name__}")
        if ttl_ms <= 0:
            raise ValueError(f"ttl_ms must be positive, got {ttl_ms}")


def checked_batch(ops: Iterable[Put | Delete]) -> list[Put | Delete]:
    """The batch as a list, every operation checked (before any lock)."""
    checked = list(ops)
    for op in checked:
        if type(op) is Put:
            if type(op.key) is not bytes or type(op.value) is not bytes or op.ttl_ms is not None:
                check_put(op.key, op.value, op.ttl_ms)  # raises unless only the TTL needed a look
        elif type(op) is Delete:
            check_key(op.key)
        else:
            raise TypeError(f"a batch holds Put and Delete operations, not {type(op).__name__}")
    return checked


def get(store: Store, key: bytes) -> bytes | None:
    """The value of ``key``, None if absent or expired (``WrongType`` if it
    holds a server-side hash or other typed value)."""
    lock = store.lock
    lock.acquire_read()
    try:
        return store.keyspace.get(key)
    finally:
        lock.release_read()


def exists(store: Store, key: bytes) -> bool:
    lock = store.lock
    lock.acquire_read()
    try:
        return store.keyspace.exists(key)
    finally:
        lock.release_read()


def put(store: Store, key: bytes, value: bytes, ttl_ms: int | None = None) -> tuple[None, int]:
    """SET ``key`` ``value`` [PX ``ttl_ms``]: one unit, one log record."""
    persistence = store.persistence
    if persistence is not None:
        _admit(persistence.refusal())
    lock, keyspace = store.lock, store.keyspace
    lock.acquire_write()
    try:
        keyspace.set(key, value, None if ttl_ms is None else keyspace.now_ms() + ttl_ms)
        keyspace.effects.end_command()
        return None, 0 if persistence is None else persistence.appended_lsn
    finally:
        lock.release_write()


def delete(store: Store, key: bytes) -> tuple[bool, int]:
    """DEL ``key``: whether it existed (a live key; nothing is logged when not)."""
    persistence = store.persistence
    if persistence is not None:
        _admit(persistence.refusal())
    lock, keyspace = store.lock, store.keyspace
    lock.acquire_write()
    try:
        deleted = keyspace.delete(key)
        keyspace.effects.end_command()
        return deleted, 0 if persistence is None or not deleted else persistence.appended_lsn
    finally:
        lock.release_write()


def apply_batch(store: Store, ops: list[Put | Delete]) -> tuple[None, int]:
    """Apply checked operations (``checked_batch``) in order under one
    write-lock hold, as one unit: a reader sees all or none of them, and
    the log holds them as one record (a replay applies all or none)."""
    persistence = store.persistence
    if persistence is not None:
        _admit(persistence.refusal())
    lock = store.lock
    lock.acquire_write()
    try:
        return None, _apply_unit(store, ops)
    finally:
        lock.release_write()


def commit_transaction(
    store: Store, view: SnapshotView, keys: Iterable[bytes],
    ranges: Iterable[tuple[bytes | None, bytes | None]], ops: list[Put | Delete],
) -> tuple[None, int]:
    """A transaction's commit: under one write-lock hold, ``Conflict`` if
    any of ``keys`` (read or written) or any key in one of ``ranges``
    (``start <= key < end``, None: open) changed after ``view`` (or the
    snapshot expired: its history is gone, so a change cannot be ruled
    out); else ``ops`` (checked) apply as one unit, one log record, as
    ``apply_batch``. The caller releases the snapshot."""
    persistence = store.persistence
    if persistence is not None:
        _admit(persistence.refusal())
    lock = store.lock
    lock.acquire_write()
    try:
        if view.expired:
            raise Conflict("the transaction's snapshot expired")
        if view.changed_since(keys):
            raise Conflict("a key the transaction read or wrote changed after its snapshot")
        for start, end in ranges:
            if view.changed_in_range(start, end, max_inclusive=False):
                raise Conflict("a key in a range the transaction scanned changed after its snapshot")
        if not ops:
            return None, 0
        return None, _apply_unit(store, ops)
    finally:
        lock.release_write()


def _apply_unit(store: Store, ops: list[Put | Delete]) -> int:
    """With the write lock held: ``ops`` applied as one effects unit (one
    log record); the log's LSN for it, or 0 when nothing was logged."""
    keyspace, persistence = store.keyspace, store.persistence
    set_key, delete_key = keyspace.set, keyspace.delete
    now_ms = keyspace.now_ms()
    for op in ops:
        if type(op) is Put:
            set_key(op.key, op.value, None if op.ttl_ms is None else now_ms + op.ttl_ms)
        else:
            delete_key(op.key)
    logged = bool(keyspace.effects.pending)
    keyspace.effects.end_command()
    return persistence.appended_lsn if persistence is not None and logged else 0


def _admit(refusal: str | None) -> None:
    if refusal is not None:
        raise LogRefused(f"write refused: {refusal}")


# --- ordered reads (the sorted key index) ---------------------------------------

# Keys one scan page looks at under one read-lock hold (live or expired):
# a page holds the lock for about a millisecond at most.
SCAN_PAGE_KEYS = 1000


def check_scan(start: object, end: object, limit: object) -> None:
    """A scan's bounds are bytes or None; its limit None or an int >= 0."""
    for name, bound in (("start", start), ("end", end)):
        if bound is not None and type(bound) is not bytes:
            raise TypeError(f"{name} is bytes or None, not {type(bound).__name__}")
    if limit is not None:
        if type(limit) is not int:
            raise TypeError(f"limit is an int or None, not {type(limit).__name__}")
        if limit < 0:
            raise ValueError(f"limit must not be negative, got {limit}")


def scan_page(
    store: Store, start: bytes | None, end: bytes | None, reverse: bool, resume: bytes | None, count: int,
) -> tuple[list[tuple[bytes, bytes]], bytes | None]:
    """One page of a scan of the keys ``start <= key < end`` (None: open on
    that side) in byte order (``reverse``: descending): up to ``count``
    live keys with their values, past ``resume`` (the previous page's last
    key looked at, exclusive; None: from the first), under one read-lock
    hold, looking at most at ``SCAN_PAGE_KEYS`` keys. Returns the pairs and
    where the next page resumes (None: the range is done). ``WrongType``
    for a key holding a typed value. Needs the sorted key index."""
    index = store.sorted_index
    if index is None:
        raise RuntimeError("scan needs the sorted key index (the sorted_index option is off)")
    lock, keyspace = store.lock, store.keyspace
    pairs: list[tuple[bytes, bytes]] = []
    lock.acquire_read()
    try:
        if reverse:
            keys = index.irange(start, end if resume is None else resume, max_inclusive=False, reverse=True)
        elif resume is None:
            keys = index.irange(start, end, max_inclusive=False)
        else:
            keys = index.irange(resume, end, min_inclusive=False, max_inclusive=False)
        get, looked = keyspace.get, 0
        key = None
        for key in keys:
            value = get(key)  # None: its time ran out (not swept yet)
            if value is not None:
                pairs.append((key, value))
            looked += 1
            if len(pairs) >= count or looked >= SCAN_PAGE_KEYS:
                return pairs, key
        return pairs, None
    finally:
        lock.release_read()
