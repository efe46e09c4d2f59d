"""Snapshots that never block writers (MVCC-lite): undo logs of pre-images.

A snapshot is a point in the keyspace's write order (the moment it was
opened) and a time (``at_ms``, the keyspace clock then): reads through it see
every key as it was at that point, TTLs judged at that time. Writers never
wait for it: a write saves what it is about to overwrite, once per key.

Rules kept here:

* **Undo logs, oldest first.** Every open snapshot owns one ``UndoLog`` of
  the chain (snapshots opened with no write between them share one). While
  any log exists the keyspace calls ``capture`` BEFORE it changes a key
  (set, delete, patch, update, expiry removal, rename, TTL change; the
  keyspace's ``undo_log`` is the newest log, None when there is none: with
  no snapshot open a write pays one ``is not None`` test). The first
  capture of a key in the newest log saves its stored value and expiry, or
  ``None`` ("absent"); later writes to the key leave the log alone. A
  grown string is copied to ``bytes`` and a typed value (a hash) is copied
  (its family's ``as_update`` applied to an empty one), because both
  change in place.
* **A read at snapshot S** of key k: the first log from S's own to the
  newest that holds k gives its pre-image; else the live table, which has
  not changed k since S (every change would have been captured). Then the
  key is visible if its expiry is None or later than S's ``at_ms``.
* **FLUSHALL / FLUSHDB** (``cleared``): the newest log keeps the whole
  tables as its *base* instead of copying each key (the keyspace puts new
  empty tables in their place in O(1)); such a log is *complete*: it
  answers for every key (its entries first, then the base), reads stop
  there, and its later captures take the pre-image from the base. The
  tables are freed when the log goes.
* **Changed keys.** Every key written after S, even back to its old value,
  is in a log from S's own on: ``changed_since`` and ``changed_in_range``
  are exact (no key missed; a rewrite with the same value counts as a
  change, as WATCH counts it). A transaction's commit (next session) calls
  them under the write lock.
* **Locks.** ``capture``, ``cleared``, ``maintain`` and compaction run
  under the store's write lock; reads under the read lock (or the write
  lock); ``open`` under either, plus this chain's small mutex (readers run
  at once). ``release`` takes no lock at all (a connection closing on the
  event loop may not take the store lock): it sets a flag, and the next
  write-locked call drops the log of a released oldest snapshot, or merges
  a released snapshot's log into the older one (older pre-images win).
* **Limits.** ``max_undo_bytes``: a capture that takes the logs' total over
  it expires the oldest snapshots until it is under again (or none is
  open). ``idle_timeout_seconds``: a snapshot unused that long expires at
  its next read or at the periodic ``maintain`` (the active expiry cycle).
  An expired snapshot's reads raise ``SnapshotExpired``.
* **Ranges** need the ordered key index (``sorted_index``, the store's
  ``SortedKeyIndex``): the keys in range visible at S are the index's keys
  (live now) and the keys with a present pre-image in the logs from S's on
  (deleted since), each checked at S. Each log keeps those keys sorted
  (``present``) for that; a complete log's base is sorted once, when a
  range first needs it.

Not thread-safe beyond the rules above; no trio, no IO.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from sortedcontainers import SortedList

from ..commands.values import TypedValue, WrongType
from .growable import Growable

if TYPE_CHECKING:
    from .keyspace import Keyspace, Table

# A key's pre-image: (stored value, expire_at_ms or None), or None: absent.
Entry = tuple[Any, int | None] | None
# What one saved entry costs besides its key and value (dict slot, tuple,
# sorted-list slot): the undo bytes count it so the limit tracks memory.
ENTRY_OVERHEAD_BYTES = 120
DEFAULT_MAX_UNDO_BYTES = 256 * 1024 * 1024
DEFAULT_IDLE_TIMEOUT_SECONDS = 300.0


class SnapshotExpired(Exception):
    """The snapshot was released, or expired (undo-bytes limit, idle timeout)."""


class SortedKeys(Protocol):
    """What a range reads of the store's ordered key index."""

    def irange(
        self, min_key: bytes | None, max_key: bytes | None, *,
        min_inclusive: bool = True, max_inclusive: bool = True, reverse: bool = False,
    ) -> Iterable[bytes]: ...


def _copy(value: object) -> object:
    """A stored value as it is now, safe from later in-place changes."""
    if type(value) is Growable:
        return value.tobytes()
    if isinstance(value, TypedValue):
        copy = value.empty()
        value.as_update().apply(copy)
        return copy
    return value


def _size(key: bytes, entry: Entry) -> int:
    if entry is None:
        return len(key) + ENTRY_OVERHEAD_BYTES
    value = entry[0]
    return len(key) + ENTRY_OVERHEAD_BYTES + (value.size_bytes() if isinstance(value, TypedValue) else len(value))


class UndoLog:
    """The pre-images saved while this log was the newest (see the module)."""

    __slots__ = (
        # key -> its pre-image at the log's start (see Entry).
        "entries",
        # Keys of entries whose pre-image is present (they existed), sorted:
        # a range finds there the keys deleted since.
        "present",
        # A FLUSH's old tables (the log is complete), else None.
        "base_values",
        "base_expires",
        # What the base counts in undo_bytes.
        "base_bytes",
        # The base's keys, sorted when a range first needs them.
        "_base_sorted",
        "undo_bytes",
        # Open (not released) snapshots owning it; recounted by compaction.
        "owners",
        "older",
        "newer",
    )

    def __init__(self) -> None:
        self.entries: dict[bytes, Entry] = {}
        self.present: SortedList = SortedList()
        self.base_values: Table | None = None
        self.base_expires: Table | None = None
        self.base_bytes = 0
        self._base_sorted: list[bytes] | None = None
        self.undo_bytes = 0
        self.owners = 0
        self.older: UndoLog | None = None
        self.newer: UndoLog | None = None

    def base_entry(self, key: bytes) -> Entry:
        """A complete log's pre-image of a key it has no entry for."""
        assert self.base_values is not None and self.base_expires is not None
        value = self.base_values.get(key)
        if value is None:
            return None
        return value, self.base_expires.get(key)

    def add(self, key: bytes, entry: Entry) -> int:
        """Save ``entry`` for a key not in the log yet; its undo bytes."""
        self.entries[key] = entry
        if entry is not None:
            self.present.add(key)
        size = _size(key, entry)
        self.undo_bytes += size
        return size

    def base_keys(
        self, min_key: bytes | None, max_key: bytes | None, min_inclusive: bool, max_inclusive: bool, reverse: bool
    ) -> Iterator[bytes]:
        """The base's keys in range, in order (sorted once, on first use)."""
        keys = self._base_sorted
        if keys is None:
            assert self.base_values is not None
            keys = self._base_sorted = sorted(self.base_values.keys())
        return _slice_sorted(keys, min_key, max_key, min_inclusive, max_inclusive, reverse)


def _slice_sorted(
    keys: list[bytes], min_key: bytes | None, max_key: bytes | None,
    min_inclusive: bool, max_inclusive: bool, reverse: bool,
) -> Iterator[bytes]:
    start = 0 if min_key is None else (
        bisect.bisect_left(keys, min_key) if min_inclusive else bisect.bisect_right(keys, min_key)
    )
    stop = len(keys) if max_key is None else (
        bisect.bisect_right(keys, max_key) if max_inclusive else bisect.bisect_left(keys, max_key)
    )
    if reverse:
        return (keys[i] for i in range(stop - 1, start - 1, -1))
    return (keys[i] for i in range(start, stop))


class SnapshotChain:
    """The keyspace's undo logs and open snapshots (``Keyspace.snapshots``)."""

    def __init__(self, keyspace: Keyspace) -> None:
        self._keyspace = keyspace
        self.oldest: UndoLog | None = None
        self.newest: UndoLog | None = None
        # Open snapshots, oldest first (released ones until compaction).
        self._open: list[SnapshotView] = []
        # Undo bytes of every log (INFO snapshot_undo_bytes; the limit).
        self.undo_bytes = 0
        self.max_undo_bytes = DEFAULT_MAX_UNDO_BYTES
        self.idle_timeout_seconds = DEFAULT_IDLE_TIMEOUT_SECONDS
        # An ordered key index given here instead of the keyspace's own
        # (tests); None: the keyspace's (``sorted_index``).
        self.index_override: SortedKeys | None = None
        # Snapshots expired by a limit so far (INFO snapshots_expired).
        self.expired_total = 0
        # Some snapshot was released or expired since the last compaction.
        self.release_pending = False
        # Opens run under the read lock, several at once.
        self._mutex = threading.Lock()
        self._ids = itertools.count(1)
        # Seconds for ages and the idle timeout (tests put a fake one here).
        self.clock_s = time.monotonic

    @property
    def sorted_index(self) -> SortedKeys | None:
        """The ordered key index ranges read (None: ranges are refused)."""
        if self.index_override is not None:
            return self.index_override
        index: SortedKeys | None = getattr(self._keyspace, "sorted_index", None)
        return index

    # --- opening (read or write lock) ---------------------------------------

    def open(self) -> SnapshotView:
        """A snapshot of the keyspace as it is now."""
        keyspace = self._keyspace
        with self._mutex:
            log = self.newest
            if log is None or log.entries or log.base_values is not None:
                log = UndoLog()
                log.older = self.newest
                if self.newest is not None:
                    self.newest.newer = log
                else:
                    self.oldest = log
                self.newest = log
            log.owners += 1
            view = SnapshotView(self, log, keyspace.now_ms(), next(self._ids))
            self._open.append(view)
            keyspace.undo_log = log
        return view

    # --- the keyspace's hooks (write lock) ----------------------------------

    def capture(self, key: bytes, value: object, expire_at_ms: int | None) -> None:
        """Before the first change to ``key`` since the newest log began:
        save its stored ``value`` (None: absent) and expiry."""
        log = self.newest
        assert log is not None
        if key in log.entries:
            return
        if log.base_values is not None:
            entry = log.base_entry(key)
        else:
            entry = None if value is None else (_copy(value), expire_at_ms)
        self.undo_bytes += log.add(key, entry)
        if self.undo_bytes > self.max_undo_bytes or self.release_pending:
            self._enforce()

    def compact(self) -> None:
        """Drop or merge the logs of released snapshots (write lock)."""
        self._enforce()

    def cleared(self, values: Table, expires: Table) -> bool:
        """A FLUSH is about to drop every key: True if the newest log keeps
        ``values`` and ``expires`` as its base (the keyspace must then put
        new tables in their place instead of clearing these); False if the
        log is complete already (the tables hold only keys it has entries
        for: they may be dropped)."""
        log = self.newest
        assert log is not None
        if log.base_values is not None:
            return False
        log.base_values, log.base_expires = values, expires
        size = self._keyspace.value_bytes + len(values) * ENTRY_OVERHEAD_BYTES
        log.base_bytes = size
        log.undo_bytes += size
        self.undo_bytes += size
        self._enforce()
        return True

    def maintain(self, now_s: float | None = None) -> None:
        """Expire idle snapshots, drop or merge released ones (write lock;
        the active expiry cycle calls it)."""
        if not self._open and self.oldest is None:
            return
        now_s = self.clock_s() if now_s is None else now_s
        for view in self._open:
            if not view.released and now_s - view.last_used_s > self.idle_timeout_seconds:
                view.expire()
        self._enforce()

    # --- compaction (write lock) --------------------------------------------

    def _enforce(self) -> None:
        """Compact; while over the undo-bytes limit, expire the owners of
        the oldest log and compact again."""
        self._compact()
        while self.undo_bytes > self.max_undo_bytes and self.oldest is not None:
            oldest = self.oldest
            for view in self._open:
                if view.log is oldest and not view.released:
                    view.expire()
            self._compact()

    def _compact(self) -> None:
        self.release_pending = False
        self._open = [view for view in self._open if not view.released]
        log = self.oldest
        while log is not None:
            log.owners = 0
            log = log.newer
        for view in self._open:
            view.log.owners += 1
        log = self.oldest
        while log is not None:
            newer = log.newer
            if not log.owners:
                if log.older is None:
                    self._unlink(log)
                    self.undo_bytes -= log.undo_bytes
                else:
                    self._merge(log.older, log)
            log = newer
        self._keyspace.undo_log = self.newest

    def _unlink(self, log: UndoLog) -> None:
        if log.older is None:
            self.oldest = log.newer
        else:
            log.older.newer = log.newer
        if log.newer is None:
            self.newest = log.older
        else:
            log.newer.older = log.older

    def _merge(self, older: UndoLog, newer: UndoLog) -> None:
        """Fold ``newer`` (no owner left) into ``older``: the older log's
        pre-images win; a key only ``newer`` has was unchanged from the
        older log's start to the newer's, so its pre-image serves both
        (from the older log's base if that one is complete)."""
        self._unlink(newer)
        self.undo_bytes -= newer.undo_bytes + older.undo_bytes
        entries = older.entries
        if older.base_values is not None:
            for key in newer.entries:
                if key not in entries:
                    older.add(key, older.base_entry(key))
        else:
            for key, entry in newer.entries.items():
                if key not in entries:
                    older.add(key, entry)
            if newer.base_values is not None:
                older.base_values, older.base_expires = newer.base_values, newer.base_expires
                older.base_bytes = newer.base_bytes
                older.undo_bytes += newer.base_bytes
        self.undo_bytes += older.undo_bytes

    # --- statistics (any lock) ----------------------------------------------

    def statistics(self, now_s: float | None = None) -> dict[str, int | float]:
        """Open snapshots, the oldest one's age, undo bytes, expirations."""
        now_s = self.clock_s() if now_s is None else now_s
        open_views = [view for view in list(self._open) if not view.released]
        oldest_age = max((now_s - view.opened_s for view in open_views), default=0.0)
        return {
            "snapshots_open": len(open_views),
            "snapshot_oldest_age_seconds": round(oldest_age, 3),
            "snapshot_undo_bytes": self.undo_bytes,
            "snapshots_expired": self.expired_total,
        }


class SnapshotView:
    """One snapshot, read with the store lock held by the caller (the
    engine holds it for a handler; ``store.snapshot_api.Snapshot`` takes it
    for the embedded library). Every read raises ``SnapshotExpired`` once
    the snapshot was released or expired."""

    __slots__ = ("_chain", "log", "at_ms", "id", "opened_s", "last_used_s", "released", "expired")

    def __init__(self, chain: SnapshotChain, log: UndoLog, at_ms: int, snapshot_id: int) -> None:
        self._chain = chain
        # The first log it reads (it may become an older one's by a merge).
        self.log = log
        # The keyspace clock when it was opened: TTLs are judged at it.
        self.at_ms = at_ms
        self.id = snapshot_id
        self.opened_s = self.last_used_s = chain.clock_s()
        self.released = False
        self.expired = False

    def release(self) -> None:
        """Free it (no lock needed: compaction happens at the next write)."""
        self.released = True
        self._chain.release_pending = True

    def expire(self) -> None:
        """Expired by a limit (write lock): its reads fail from now on."""
        if not self.released:
            self.expired = True
            self._chain.expired_total += 1
            self.release()

    def touch(self) -> bool:
        """Whether it can be read (not released, not expired); notes the
        use (the idle timeout counts from the last one)."""
        if self.released:
            return False
        now_s = self._chain.clock_s()
        if now_s - self.last_used_s > self._chain.idle_timeout_seconds:
            self.expired = True
            self._chain.expired_total += 1
            self.release()
            return False
        self.last_used_s = now_s
        return True

    def check(self) -> None:
        """``touch``, raising ``SnapshotExpired`` if it cannot be read."""
        if not self.touch():
            raise SnapshotExpired

    # --- point reads ----------------------------------------------------------

    def entry(self, key: bytes) -> Entry:
        """The key's stored value and expiry at the snapshot, expired or not."""
        log: UndoLog | None = self.log
        while log is not None:
            entry = log.entries.get(key, log)
            if entry is not log:
                return entry  # type: ignore[return-value]
            if log.base_values is not None:
                return log.base_entry(key)
            log = log.newer
        return self._chain._keyspace.raw_entry(key)

    def value(self, key: bytes) -> object:
        """The key's value at the snapshot (bytes, a grown value, a typed
        value: read it under the same lock hold), None if absent or expired."""
        entry = self.entry(key)
        if entry is None:
            return None
        value, at_ms = entry
        if at_ms is not None and at_ms <= self.at_ms:
            return None
        return value

    def get(self, key: bytes) -> bytes | None:
        """The string value at the snapshot; ``WrongType`` for a typed one."""
        self.check()
        value = self.value(key)
        if value is None or type(value) is bytes:
            return value
        if type(value) is Growable:
            return value.tobytes()
        raise WrongType

    # --- ranges -----------------------------------------------------------------

    def range(
        self, min_key: bytes | None, max_key: bytes | None, *,
        min_inclusive: bool = True, max_inclusive: bool = True, reverse: bool = False, limit: int | None = None,
    ) -> list[bytes]:
        """The keys in range visible at the snapshot, in order (``reverse``:
        descending), at most ``limit``; None bounds are open. Needs the
        sorted index (``ValueError`` without it)."""
        self.check()
        return list(itertools.islice(self.iter_range(min_key, max_key, min_inclusive, max_inclusive, reverse), limit))

    def iter_range(
        self, min_key: bytes | None, max_key: bytes | None,
        min_inclusive: bool = True, max_inclusive: bool = True, reverse: bool = False,
    ) -> Iterator[bytes]:
        """``range`` lazily (consume it within one lock hold)."""
        for key, _value in self.iter_items(min_key, max_key, min_inclusive, max_inclusive, reverse):
            yield key

    def items(
        self, min_key: bytes | None, max_key: bytes | None, *,
        min_inclusive: bool = True, max_inclusive: bool = True, reverse: bool = False, limit: int | None = None,
    ) -> list[tuple[bytes, object]]:
        """``range`` with each key's value at the snapshot (as ``value``
        gives it: read it under the same lock hold)."""
        self.check()
        return list(itertools.islice(self.iter_items(min_key, max_key, min_inclusive, max_inclusive, reverse), limit))

    def iter_items(
        self, min_key: bytes | None, max_key: bytes | None,
        min_inclusive: bool = True, max_inclusive: bool = True, reverse: bool = False,
    ) -> Iterator[tuple[bytes, object]]:
        """``items`` lazily (consume it within one lock hold)."""
        inclusive = (min_inclusive, max_inclusive)
        sources: list[Iterable[bytes]] = []
        log: UndoLog | None = self.log
        while log is not None:
            if log.present:
                sources.append(log.present.irange(min_key, max_key, inclusive, reverse=reverse))
            if log.base_values is not None:
                sources.append(log.base_keys(min_key, max_key, min_inclusive, max_inclusive, reverse))
                break
            log = log.newer
        else:
            index = self._chain.sorted_index
            if index is None:
                raise ValueError("snapshot ranges need the sorted key index (--sorted-index yes)")
            sources.append(index.irange(
                min_key, max_key, min_inclusive=min_inclusive, max_inclusive=max_inclusive, reverse=reverse
            ))
        last = None
        value_at = self.value
        for key in heapq.merge(*sources, reverse=reverse) if len(sources) > 1 else sources[0]:
            if key == last:
                continue
            last = key
            value = value_at(key)
            if value is not None:
                yield key, value

    # --- what changed since (for a transaction's commit) --------------------------

    def changed_since(self, keys: Iterable[bytes]) -> bool:
        """Whether any of ``keys`` was written (or deleted, flushed, or its
        time ran out) after the snapshot. Lock held; works on a released
        one too."""
        keys = list(keys)
        log: UndoLog | None = self.log
        while log is not None:
            entries = log.entries
            for key in keys:
                if key in entries:
                    return True
            if log.base_values is not None:
                # A FLUSH: every key that existed then changed.
                if any(log.base_values.get(key) is not None for key in keys):
                    return True
            log = log.newer
        return any(self._expired_since(key) for key in keys)

    def _expired_since(self, key: bytes) -> bool:
        """A key no log holds was live at the snapshot and its time ran out
        since (not removed yet): a change too, as WATCH counts it."""
        keyspace = self._chain._keyspace
        entry = keyspace.raw_entry(key)
        if entry is None or entry[1] is None:
            return False
        return self.at_ms < entry[1] <= keyspace.now_ms()

    def changed_in_range(
        self, min_key: bytes | None, max_key: bytes | None, *, min_inclusive: bool = True, max_inclusive: bool = True,
    ) -> bool:
        """Whether any key in the range was written, deleted or flushed
        after the snapshot (a key added to a range counts)."""
        log: UndoLog | None = self.log
        while log is not None:
            for key in log.entries:
                if _in_range(key, min_key, max_key, min_inclusive, max_inclusive):
                    return True
            if log.base_values is not None:
                if next(log.base_keys(min_key, max_key, min_inclusive, max_inclusive, False), None) is not None:
                    return True
            log = log.newer
        if not self._chain._keyspace.keys_with_ttl:
            return False
        index = self._chain.sorted_index
        if index is None:
            raise ValueError("snapshot ranges need the sorted key index (--sorted-index yes)")
        return any(
            self._expired_since(key)
            for key in index.irange(min_key, max_key, min_inclusive=min_inclusive, max_inclusive=max_inclusive)
        )

    def changed_keys(self) -> set[bytes]:
        """Every key written after the snapshot (for a sliced KEYS)."""
        keys: set[bytes] = set()
        log: UndoLog | None = self.log
        while log is not None:
            keys.update(log.entries)
            log = log.newer
        return keys

    def flushed_keys(self) -> Iterator[bytes] | None:
        """After a FLUSH since the snapshot: the keys stored just before it
        (the first complete log's base; check each with ``value``); None
        when there was none."""
        log: UndoLog | None = self.log
        while log is not None:
            if log.base_values is not None:
                return log.base_values.keys()
            log = log.newer
        return None


def _in_range(key: bytes, min_key: bytes | None, max_key: bytes | None, min_inclusive: bool, max_inclusive: bool) -> bool:
    if min_key is not None and (key < min_key if min_inclusive else key <= min_key):
        return False
    if max_key is not None and (key > max_key if max_inclusive else key >= max_key):
        return False
    return True
