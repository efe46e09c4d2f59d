"""The keyspace: keys to values, with expiry, on the project's own hash table.

Rules kept here:

* Not thread-safe by itself. Callers hold the store's ``ReadWriteLock``: the
  read lock for methods documented as reads, the write lock for the rest.
  Reads never mutate anything (several readers run at once).
* Expiry times are absolute wall-clock milliseconds since the epoch (as Redis
  keeps them), so they mean the same after a restart. They live in a second
  hash table that only holds keys with a TTL, as Redis' ``expires`` dict.
* Lazy expiry: a read treats an expired key as absent (it may not delete under
  the read lock); a write that touches an expired key deletes it first; the
  active sweep (``active_expire_step``) deletes expired keys that are never
  touched again, a bounded number per call.
* ``value_bytes`` is the total length of all stored values, kept exact on
  every write (the text protocol's ``bytes`` field). Spare capacity of grown
  values is not in it (``statistics()["grown_capacity_bytes"]`` is).
* ``key_bytes`` is what the keys' objects cost (store/memory_accounting.py),
  kept exact where keys enter and leave (the same points as the per-slot
  counts); ``memory_bytes()`` adds values, tables, expiry and the index:
  the data's part of INFO ``used_memory``, O(1).
* Eviction (store/eviction.py drives it): ``set_access_clock`` makes the
  value table keep an access stamp per key (LRU or LFU); ``evict`` deletes
  a key exactly as DEL does (snapshot pre-image, a ``DEL`` effect) and
  counts it in ``evicted_keys``; ``peek`` and ``is_eviction_candidate``
  read without touching a stamp.
* Values are ``bytes``, or a ``Growable`` (store/growable.py) once APPEND or
  SETRANGE made one longer than ``SMALL_VALUE_BYTES``: it grows in place in
  amortized O(1). ``get`` always answers ``bytes`` (a grown value is copied);
  ``get_view`` answers without copying, a ``bytes`` or a read-only
  ``memoryview`` that never changes, whatever is written later (the aliasing
  rules are growable.py's). Never store a memoryview: ``set`` copies one.
* WATCH keeps only its mechanism here (the rules are
  commands/transactions.py's): who watches which key, and a call to each
  watcher's ``key_touched`` from every write that changes the key (value,
  TTL, deletion, expiry, FLUSH), as Redis' touchWatchedKey. The registry has
  its own small lock, because WATCH runs under the read lock and a closing
  connection unwatches without any store lock; with nobody watching, a
  write pays one truth test of an empty dict.
* Types (commands/values.py has the contract): a value is a string
  (``bytes`` or ``Growable``) or a ``TypedValue`` of some other family (a
  hash...). The keyspace knows no family: it stores, counts
  (``size_bytes``), expires, renames, deletes and emits the effects of any value the
  same way, changes a typed value only through ``update`` (the family's
  ``ValueUpdate``), and keeps the WRONGTYPE rule: string accessors (``get``,
  ``get_view``, ``value_length``, ``pop``, ``append``, ``setrange``) raise
  ``WrongType`` on a typed value, ``get_typed`` / ``update`` on a value of
  another type, before changing anything. ``set`` (SET) replaces any value.
* Effects (``store/effects.py``, the one door they leave through): every
  mutation emits the effect it had to ``effects``, the keyspace's sink, as
  absolute facts (the expiry actually in force, KEEPTTL included; APPEND and
  SETRANGE as a PATCH of the request's bytes, see ``apply_patch``; a DEL
  only when something was deleted; EXPIRE / PERSIST only when applied;
  an UPDATE for a typed value, see ``apply_update`` for why a replay is
  exact).
  Deletions by expiry (lazy or active) emit nothing: the absolute expiry
  already implies them. With nobody subscribed a mutation pays one test.
* Keys per hash slot (cluster mode only, ``count_keys_per_slot``): a list
  of 16,384 counts, moved wherever a key enters or leaves the value table
  (``_added`` / ``_remove`` / ``clear``), so CLUSTER COUNTKEYSINSLOT is one
  read. A key whose time ran out counts until it is removed, as in Redis.
  Off (None), adding or removing a key pays one test.
* Snapshots (``store/snapshots.py`` has the rules): while one is open,
  ``undo_log`` is the newest undo log and every change to a key first
  calls ``_save_preimage`` (at the top of each mutator, and in ``_remove``
  for the paths that only delete: expiry, DEL, an emptied hash); a FLUSH
  hands the whole tables to the log (``_flush_tables``). With none open a
  write pays one ``is not None`` test.
* The sorted key index (``store/sorted_index.py``, ``attach_sorted_index``):
  fed at the same points as the per-slot counts, so it holds exactly the
  keys of the value table (expired ones not yet removed included) through
  every path, expiry and loading too. Off (None), adding or removing a key
  pays one test; overwriting a key pays nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Protocol, TypeVar

from ..cluster.slots import SLOT_COUNT, key_slot
from ..commands.values import TypedValue, ValueUpdate, WrongType
from .effects import EffectSink
from .eviction_policy import AccessClock
from .growable import SMALL_VALUE_BYTES, Growable, capacity_for
from .compact_table import CompactTable
from .hashtable import HashTable
from .memory_accounting import EXPIRY_OBJECT_BYTES, VALUE_OBJECT_BYTES, object_bytes
from .snapshots import SnapshotChain, UndoLog
from .sorted_index import KeyIndex

NO_EXPIRY = -1
STRING_TYPE_NAME = b"string"

# What the value table holds: a string (bytes, or grown in place) or a
# value of another family (commands/values.py).
Value = bytes | Growable | TypedValue
Family = TypeVar("Family", bound=TypedValue)
# The two tables the keyspace can run on (``--table``): the same interface.
Table = HashTable | CompactTable
TABLES: dict[str, Callable[[], Table]] = {"objects": HashTable, "compact": CompactTable}


class KeyWatcher(Protocol):
    """A WATCH (``commands.transactions.Transaction``), as the keyspace sees it."""

    def key_touched(self, key: bytes, present: bool) -> None:
        """``key`` was written or deleted (``present``: it exists now).
        Called under the store's write lock and the keyspace's watch lock."""
        ...


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def _before_every_expiry_ms() -> int:
    # The clock while loading: earlier than any expiry time, so nothing expires.
    return -(1 << 63)


class Keyspace:
    def __init__(self, clock_ms: Callable[[], int] = wall_clock_ms, table: Callable[[], Table] = HashTable) -> None:
        # Makes the value and expiry tables (again after a FLUSH a snapshot took).
        self._new_table = table
        self._values: Table = table()
        self._expires: Table = table()
        self._clock_ms = clock_ms
        # The wall clock as given, for access stamps: ``_clock_ms`` is
        # swapped while loading (``expiry_paused``), stamps must not be.
        self.access_clock_ms = clock_ms
        self.value_bytes = 0
        # What the keys' objects cost (store/memory_accounting.py), kept
        # exact where keys enter and leave, as the per-slot counts.
        self.key_bytes = 0
        # Access stamps for eviction (set_access_clock): the clock and
        # whether reads stamp; None: off (the tables keep none).
        self._access: tuple[AccessClock, bool] | None = None
        # Keys deleted by eviction (INFO stats evicted_keys).
        self.evicted_keys = 0
        # Total buffer size of the Growable values (their length plus spare capacity).
        self.grown_capacity_bytes = 0
        # Keys deleted because their time ran out (INFO stats expired_keys).
        self.expired_keys = 0
        # Where the active sweep resumes in the expires table.
        self._sweep_cursor = 0
        # WATCH: key -> the transactions watching it. A plain dict: it only holds
        # watched keys, and is empty (one cheap test per write) when nobody watches.
        self._watchers: dict[bytes, set[KeyWatcher]] = {}
        self._watch_lock = threading.Lock()
        # Where every mutation's effect goes (the append-only log subscribes).
        self.effects = EffectSink()
        # Keys per hash slot, cluster mode only (count_keys_per_slot).
        self._slot_keys: list[int] | None = None
        # Open snapshots (store/snapshots.py) and the newest undo log, None
        # while none is open (a write's one test).
        self.snapshots = SnapshotChain(self)
        self.undo_log: UndoLog | None = None
        # Every stored key in byte order (attach_sorted_index); None: none kept.
        self._sorted: KeyIndex | None = None

    def now_ms(self) -> int:
        return self._clock_ms()

    # --- reads (read lock) ---------------------------------------------------

    def __len__(self) -> int:
        return len(self._values)

    def _is_expired(self, key: bytes, now_ms: int | None = None) -> bool:
        expires = self._expires
        if not len(expires):
            return False
        at_ms = expires.get(key)
        if at_ms is None:
            return False
        return at_ms <= (self._clock_ms() if now_ms is None else now_ms)

    def _live(self, key: bytes) -> Value | None:
        """The stored value (of any type) unless absent or expired."""
        value = self._values.get(key)
        if value is None or self._is_expired(key):
            return None
        return value

    def _live_untouched(self, key: bytes) -> Value | None:
        """As ``_live``, without touching the key's access stamp (Redis'
        LOOKUP_NOTOUCH: EXISTS, TYPE, TTL and its kin leave the idle time
        alone)."""
        entry = self.peek(key)
        return None if entry is None else entry[0]

    def get(self, key: bytes) -> bytes | None:
        """The value as ``bytes`` (a grown value is copied: see get_view)."""
        value = self._values.get(key)
        if value is None or self._is_expired(key):
            return None
        if type(value) is not bytes:
            if type(value) is Growable:
                return value.tobytes()
            raise WrongType
        return value

    def get_view(self, key: bytes) -> bytes | memoryview | None:
        """The value without a copy: ``bytes``, or a read-only memoryview of a
        grown value that no later write changes (growable.py's rules). Marking
        the value shared is the one thing a read does to it: a plain flag
        store, the same whichever reader does it."""
        value = self._values.get(key)
        if value is None or self._is_expired(key):
            return None
        if type(value) is not bytes:
            if type(value) is Growable:
                return value.view()
            raise WrongType
        return value

    def value_length(self, key: bytes) -> int | None:
        """The value's length (STRLEN), None if the key is absent."""
        value = self._live(key)
        if value is None:
            return None
        if isinstance(value, TypedValue):
            raise WrongType
        return len(value)

    def exists(self, key: bytes) -> bool:
        """Whether ``key`` is stored and not expired; touches nothing."""
        return key in self._values and not self._is_expired(key)

    def value_size(self, key: bytes) -> int | None:
        """The bytes the value of ``key`` counts in ``value_bytes`` (any
        type), None if the key is absent."""
        value = self._live(key)
        if value is None:
            return None
        return value.size_bytes() if isinstance(value, TypedValue) else len(value)

    def type_name(self, key: bytes) -> bytes | None:
        """What TYPE answers: ``b"string"``, the family's ``TYPE_NAME``, or
        None if the key is absent (touches nothing)."""
        value = self._live_untouched(key)
        if value is None:
            return None
        return value.TYPE_NAME if isinstance(value, TypedValue) else STRING_TYPE_NAME

    def get_typed(self, key: bytes, family: type[Family]) -> Family | None:
        """The value of ``key`` if it is of ``family`` (the caller only reads
        it), None if the key is absent; ``WrongType`` if it holds anything else."""
        value = self._live(key)
        if value is None:
            return None
        if type(value) is not family:
            raise WrongType
        return value  # its type is family, checked above

    def expire_at_ms(self, key: bytes) -> int | None:
        """Absolute expiry, ``NO_EXPIRY`` if none, None if the key is absent
        (touches nothing: TTL, PTTL, EXPIRETIME)."""
        if not self.exists(key):
            return None
        at_ms = self._expires.get(key)
        return NO_EXPIRY if at_ms is None else at_ms

    def ttl_ms(self, key: bytes) -> int | None:
        """Milliseconds left, ``NO_EXPIRY`` if none, None if the key is absent."""
        at_ms = self.expire_at_ms(key)
        if at_ms is None or at_ms == NO_EXPIRY:
            return at_ms
        return max(0, at_ms - self._clock_ms())

    def raw_entry(self, key: bytes) -> tuple[Value, int | None] | None:
        """The stored value and expiry of ``key``, expired or not (a
        snapshot judges the expiry at its own time); None if not stored."""
        value = self._values.get(key)
        if value is None:
            return None
        return value, self._expires.get(key) if len(self._expires) else None

    def keys_expired_since(self, after_ms: int) -> list[bytes]:
        """Keys still stored whose time ran out after ``after_ms`` (a
        snapshot's time) and by now. One pass over the keys with a TTL."""
        if not len(self._expires):
            return []
        now_ms = self._clock_ms()
        return [key for key, at_ms in self._expires.items() if after_ms < at_ms <= now_ms]

    def live_items(self) -> Iterator[tuple[bytes, bytes | memoryview | TypedValue]]:
        """Every key and value not expired (strings as ``get_view`` gives
        them, other values as stored). The caller holds a lock for the whole
        iteration and does not mutate meanwhile."""
        now_ms = self._clock_ms()
        for key, value in self._values.items():
            if not self._is_expired(key, now_ms):
                yield key, value.view() if type(value) is Growable else value

    def live_values(self, keys: Iterable[bytes]) -> Iterator[tuple[bytes, bytes | memoryview | TypedValue]]:
        """The live ones of ``keys`` with their values (strings as
        ``get_view`` gives them, typed values as stored: read them under
        the same lock)."""
        for key in keys:
            value = self._live(key)
            if value is not None:
                yield key, value.view() if isinstance(value, Growable) else value

    def scan(self, cursor: int, count: int) -> tuple[int, list[bytes]]:
        """Redis SCAN over the table: every key present for the whole scan is
        returned at least once, whatever resizes happen between calls."""
        next_cursor, items = self._values.scan(cursor, count)
        now_ms = self._clock_ms()
        return next_cursor, [key for key, _ in items if not self._is_expired(key, now_ms)]

    def scan_keys(self, cursor: int, slot_budget: int, out: list[bytes]) -> tuple[int, int]:
        """One slice of a KEYS or big SCAN (``commands/slicing.py``): append
        the live keys of whole buckets from ``cursor`` on to ``out``, about
        ``slot_budget`` slots' worth; returns the next cursor (0: done) and
        the slots inspected. Read lock, for this call only: the cursor keeps
        SCAN's guarantee across calls whatever writes run between them."""
        start = len(out)
        cursor, inspected = self._values.scan_keys(cursor, slot_budget, out)
        self._drop_expired(out, start)
        return cursor, inspected

    def keys_in_slots(self, old: bool, start: int, stop: int, out: list[bytes]) -> int:
        """One unit of the fast KEYS walk (``commands/slicing.py``): append
        the live keys in slots ``[start, stop)`` of the value table's current
        (or old) list to ``out``; returns the slots inspected (0: that list
        is gone). See ``HashTable.keys_in_slots`` and ``install_version``
        for when a walk over slot indices is sound. Read lock, for this call
        only."""
        found = len(out)
        inspected = self._values.keys_in_slots(old, start, stop, out)
        self._drop_expired(out, found)
        return inspected

    def _drop_expired(self, out: list[bytes], start: int) -> None:
        """Remove from ``out[start:]`` the keys whose time ran out. Only keys
        with a TTL can be expired: when the expires table has fewer slots
        than there are keys to check, its expired keys are listed once
        (usually none: the active sweep deletes them) instead of looking up
        every key; either way the cost is at most one step per key checked."""
        expires = self._expires
        checked = len(out) - start
        if not len(expires) or checked <= 0:
            return
        now_ms = self._clock_ms()
        slots, old_slots = expires.slot_counts()
        if slots + old_slots <= checked:
            expired = {key for key, at_ms in expires.items() if at_ms <= now_ms}
            if expired:
                out[start:] = [key for key in out[start:] if key not in expired]
            return
        get = expires.get
        out[start:] = [key for key in out[start:] if (at_ms := get(key)) is None or at_ms > now_ms]

    @property
    def layout_version(self) -> int:
        """Changes when a key may have changed bucket (see HashTable.layout_version)."""
        return self._values.layout_version

    @property
    def keys_with_ttl(self) -> int:
        """How many keys have a TTL (the sliced walk checks expiry for them)."""
        return len(self._expires)

    @property
    def install_version(self) -> int:
        """See HashTable.install_version (of the value table)."""
        return self._values.install_version

    @property
    def inserts(self) -> int:
        """See HashTable.inserts (of the value table)."""
        return self._values.inserts

    def slot_counts(self) -> tuple[int, int]:
        """The value table's slots: current list, old list (0: no resize)."""
        return self._values.slot_counts()

    def keys_in_slot(self, slot: int) -> int:
        """Keys stored in hash ``slot`` (0..16383), expired ones not yet
        removed included; 0 when keys are not counted per slot."""
        counts = self._slot_keys
        return 0 if counts is None else counts[slot]

    def random_key(self) -> bytes | None:
        # A few tries skip expired keys waiting for the sweep; then give up as Redis does.
        for _ in range(16):
            item = self._values.random_item()
            if item is None:
                return None
            if not self._is_expired(item[0]):
                return item[0]
        return None

    def memory_bytes(self) -> int:
        """The data's accounted bytes (store/memory_accounting.py): keys,
        values, both tables' structure, expiry times, the sorted index. O(1)
        in the keys (a read). A table answers ``memory_bytes()`` for its own
        structure, and for the keys and values too if it packs them itself
        (``COUNTS_ENTRIES``)."""
        values, expires = self._values, self._expires
        total = values.memory_bytes() + expires.memory_bytes() + len(expires) * EXPIRY_OBJECT_BYTES
        if not values.COUNTS_ENTRIES:  # the key and value objects live outside the table
            total += self.key_bytes + self.value_bytes + len(values) * VALUE_OBJECT_BYTES + self.grown_capacity_bytes
        if self._sorted is not None:
            total += self._sorted.bytes_estimate()
        return total

    # --- eviction (store/eviction.py drives it; the rules are its) ---------

    def set_access_clock(self, clock: AccessClock | None, touch_reads: bool = True) -> None:
        """Keep an access stamp per key (``clock``: LRU or LFU) or none
        (None). Write lock: allocates or frees the stamp arrays at once."""
        self._access = None if clock is None else (clock, touch_reads)
        if clock is None:
            self._values.disable_stamps()
        else:
            self._values.enable_stamps(clock, touch_reads)

    def access_stamp(self, key: bytes) -> int | None:
        """``key``'s stamp without touching it (OBJECT FREQ/IDLETIME, the
        pool's scores); None when absent or no stamps are kept (a read)."""
        return self._values.stamp(key)

    def peek(self, key: bytes) -> tuple[Value, int] | None:
        """``key``'s value and access stamp (0 when none is kept) unless
        absent or expired, touching nothing (OBJECT; a read)."""
        entry = self._values.peek(key)
        if entry is None or self._is_expired(key):
            return None
        return entry

    def eviction_sample(self, volatile: bool, count: int) -> list[tuple[bytes, object, int]]:
        """About ``count`` random candidates (a read) as (key, value, stamp)
        from every key, or as (key, expiry ms, stamp) from the keys with a
        TTL (``volatile``). The table's own tuples when it can (this runs
        for every evicted key)."""
        if not volatile:
            return self._values.sample(count)
        stamp_of = self._values.stamp
        return [(key, at_ms, stamp_of(key) or 0) for key, at_ms, _stamp in self._expires.sample(count)]

    def is_eviction_candidate(self, key: bytes, volatile: bool) -> bool:
        """``key`` is stored (with a TTL if ``volatile``); touches nothing."""
        return key in self._values and (not volatile or key in self._expires)

    def evict(self, key: bytes) -> bool:
        """Delete ``key`` to free memory, as DEL does: its pre-image goes to
        open snapshots, a DEL effect to the log and replicas; counted in
        ``evicted_keys`` (an expired key found here is only expired)."""
        if self._is_expired(key):
            self._expire_if_needed(key)
            return True
        deleted = self._remove(key) is not None
        if deleted:
            self.evicted_keys += 1
            self.effects.emit(("DEL", key))
        return deleted

    def statistics(self) -> dict[str, object]:
        return {
            "keys": len(self._values),
            "expires": len(self._expires),
            "value_bytes": self.value_bytes,
            "grown_capacity_bytes": self.grown_capacity_bytes,
            "table": self._values.statistics(),
        }

    # --- writes (write lock) ------------------------------------------------

    def _expire_if_needed(self, key: bytes) -> None:
        if self._is_expired(key):
            self._remove(key)
            self.expired_keys += 1

    def _forget(self, value: Value) -> int:
        """The bytes ``value`` counted in ``value_bytes`` (it is leaving the
        table); drops a grown value's capacity from the statistics."""
        if type(value) is Growable:
            self.grown_capacity_bytes -= value.capacity
            return len(value)
        if isinstance(value, TypedValue):
            return value.size_bytes()
        return len(value)

    def _save_preimage(self, key: bytes) -> None:
        """A snapshot is open: save ``key``'s value and expiry before the
        change the caller is about to make (once per key and undo log)."""
        if key not in self.undo_log.entries:  # type: ignore[union-attr]
            self.snapshots.capture(key, self._values.get(key), self._expires.get(key) if len(self._expires) else None)
        elif self.snapshots.release_pending:
            self.snapshots.compact()

    def _remove(self, key: bytes) -> Value | None:
        if self.undo_log is not None:
            self._save_preimage(key)
        value = self._values.pop(key, None)
        if value is not None:
            self.key_bytes -= object_bytes(len(key))
            if self._slot_keys is not None:
                self._slot_keys[key_slot(key)] -= 1
            if self._sorted is not None:
                self._sorted.discard(key)
            self.value_bytes -= len(value) if type(value) is bytes else self._forget(value)
            if len(self._expires):
                self._expires.pop(key, None)
            if self._watchers:
                self._touch(key)
        return value

    def set(self, key: bytes, value: bytes, expire_at_ms: int | None = None, keep_ttl: bool = False) -> None:
        """Store ``value``; a TTL is replaced by ``expire_at_ms`` (None: no TTL)
        unless ``keep_ttl``."""
        if type(value) is not bytes:
            value = bytes(value)  # a view of a grown value, a bytearray: never stored
        if self.undo_log is not None:
            self._save_preimage(key)
        expires = self._expires
        if len(expires):  # only a key with a TTL can have expired
            self._expire_if_needed(key)
        old = self._values.swap(key, value)
        if old is not None:
            self.value_bytes += len(value) - (len(old) if type(old) is bytes else self._forget(old))
        else:
            self.value_bytes += len(value)
            self.key_bytes += object_bytes(len(key))
            if self._slot_keys is not None:
                self._slot_keys[key_slot(key)] += 1
            if self._sorted is not None:
                self._sorted.add(key)
        if expire_at_ms is not None:
            expires.set(key, expire_at_ms)
        elif not keep_ttl and len(expires):
            expires.pop(key, None)
        if self._watchers:
            self._touch(key)
        effects = self.effects.pending
        if effects is not None:
            if expire_at_ms is None and keep_ttl:
                expire_at_ms = self._expires.get(key)
            effects.append(("SET", key, value, expire_at_ms))

    def delete(self, key: bytes) -> bool:
        self._expire_if_needed(key)
        deleted = self._remove(key) is not None
        if deleted:
            self.effects.emit(("DEL", key))
        return deleted

    def pop(self, key: bytes) -> bytes | memoryview | None:
        """Delete ``key``; its value (a grown value as a view: nothing
        writes to its buffer any more)."""
        self._expire_if_needed(key)
        if isinstance(self._values.get(key), TypedValue):
            raise WrongType
        value = self._remove(key)
        if value is not None:
            self.effects.emit(("DEL", key))
        if isinstance(value, Growable):
            return value.view()
        assert not isinstance(value, TypedValue)
        return value

    def append(self, key: bytes, data: bytes) -> int:
        """APPEND: the new length. The caller checked the size limits. A new
        key emits a SET of ``data``, an existing one a PATCH."""
        if len(self._expires):
            self._expire_if_needed(key)
        old = self._values.get(key)
        if old is None:
            self.set(key, data)
            return len(data)
        if isinstance(old, TypedValue):
            raise WrongType
        return self._write(key, old, len(old), data)

    def setrange(self, key: bytes, offset: int, data: bytes) -> int:
        """SETRANGE with a non-empty ``data``: the new length. The caller
        checked the size limits. A key it creates has no TTL, as in Redis."""
        if len(self._expires):
            self._expire_if_needed(key)
        old = self._values.get(key)
        if isinstance(old, TypedValue):
            raise WrongType
        return self._write(key, b"" if old is None else old, offset, data)

    def apply_patch(self, key: bytes, old_length: int, offset: int, data: bytes, expire_at_ms: int | None) -> None:
        """Replay a PATCH effect: cut or zero-pad the value to ``old_length``,
        write ``data`` at ``offset``, set the expiry to ``expire_at_ms``.

        Why this gives the logged value: APPEND and SETRANGE never shorten a
        value, so between two absolute effects (SET, DEL) of a key its length
        only grows, and a PATCH rewrites every byte it or its zero gap covers.
        Applied to the value the key had just before it (the log's order),
        it gives exactly the value after it. Applied to a *later* value of
        the key (a fuzzy snapshot took the key after the log switch), the
        bytes a PATCH does not cover may be newer, but the later PATCHes and
        absolute effects in the log, replayed in order, rewrite each of them
        back to its value at that moment: after the effect the snapshot saw,
        the replayed value is exact again, and so is the rest of the replay.
        The expiry travels in the record for the same reason: a key the
        snapshot missed (expired meanwhile) comes back with its expiry and is
        dropped by ``purge_expired``."""
        if self.undo_log is not None:
            self._save_preimage(key)
        if len(self._expires):
            self._expire_if_needed(key)
        current = self._values.get(key)
        if isinstance(current, TypedValue):
            # The key held a string when this was logged: a later absolute
            # effect of the log made it the value the snapshot saw.
            self._remove(key)
            current = None
        if current is None or len(current) != old_length:
            if current is None:
                base = b""
            elif type(current) is Growable:
                base = current.view()[:old_length].tobytes()
            else:
                base = current[:old_length]
            if len(base) < old_length:
                base += bytes(old_length - len(base))
            self._replace(key, base)
            current = base
        if expire_at_ms is None:
            if len(self._expires):
                self._expires.pop(key, None)
        else:
            self._expires.set(key, expire_at_ms)
        self._write(key, current, offset, data)

    def _replace(self, key: bytes, value: bytes | Growable) -> None:
        """Store ``value`` for ``key`` keeping the byte counts right; no
        effect, no TTL change, no WATCH touch."""
        old = self._values.swap(key, value)
        self.value_bytes += len(value) - (0 if old is None else self._forget(old))
        if old is None:
            self.key_bytes += object_bytes(len(key))
            if self._slot_keys is not None:
                self._slot_keys[key_slot(key)] += 1
            if self._sorted is not None:
                self._sorted.add(key)
        if type(value) is Growable:
            self.grown_capacity_bytes += value.capacity

    def _write(self, key: bytes, old: bytes | Growable, offset: int, data: bytes) -> int:
        """Write ``data`` at ``offset`` of ``old`` (the key's value, b"" for a
        new key), in place when ``old`` is grown; emit the PATCH."""
        if self.undo_log is not None:
            self._save_preimage(key)
        old_length = len(old)
        end = offset + len(data)
        new_length = max(old_length, end)
        if isinstance(old, Growable):
            capacity = old.capacity
            old.write(offset, data)
            self.grown_capacity_bytes += old.capacity - capacity
            self.value_bytes += new_length - old_length
        elif new_length <= SMALL_VALUE_BYTES:
            if offset >= old_length:
                new = old + bytes(offset - old_length) + data if offset > old_length else old + data
            else:
                new = old[:offset] + data + old[end:]
            self._replace(key, new)
        else:
            grown = Growable(old, capacity_for(end) if end > old_length else old_length)
            grown.write(offset, data)
            self._replace(key, grown)
        if self._watchers:
            self._touch(key)
        effects = self.effects.pending
        if effects is not None:
            at_ms = self._expires.get(key) if len(self._expires) else None
            effects.append(("PATCH", key, old_length, offset, data, at_ms))
        return new_length

    def set_expire_at(self, key: bytes, at_ms: int) -> bool:
        """Give an existing key an absolute expiry; a time in the past deletes it."""
        if self.undo_log is not None:
            self._save_preimage(key)
        self._expire_if_needed(key)
        if key not in self._values:
            return False
        if at_ms <= self._clock_ms():
            self._remove(key)
            self.effects.emit(("DEL", key))
            return True
        self._expires.set(key, at_ms)
        if self._watchers:
            self._touch(key)
        self.effects.emit(("EXPIRE", key, at_ms))
        return True

    def persist(self, key: bytes) -> bool:
        """Remove a key's TTL; True if it had one."""
        if self.undo_log is not None:
            self._save_preimage(key)
        self._expire_if_needed(key)
        removed = self._expires.pop(key, None) is not None
        if removed and self._watchers:
            self._touch(key)
        if removed:
            self.effects.emit(("PERSIST", key))
        return removed

    # --- values of other families (commands/values.py) ---------------------

    def update(self, key: bytes, update: ValueUpdate) -> None:
        """Apply a family's update to ``key``'s value, creating an empty one
        of ``update.VALUE_TYPE`` when the key is absent; ``WrongType`` (and no
        change) if the key holds anything else. A value left empty deletes
        the key. The key keeps its TTL. Journaled as ``("UPDATE", key, type
        code, created, update bytes, expire_at_ms | None)`` (``created``: the
        update starts from an empty value, whatever the key held before), or
        ``("DEL", key)`` when the value became empty."""
        if self.undo_log is not None:
            self._save_preimage(key)  # before the value changes in place
        if len(self._expires):
            self._expire_if_needed(key)
        family = update.VALUE_TYPE
        value = self._values.get(key)
        created = value is None
        if created:
            value = family.empty()
        elif type(value) is not family:
            raise WrongType
        delta = update.apply(value)
        if created:
            if not value:
                return  # nothing to store, nothing changed
            self._values.set(key, value)
            self.value_bytes += value.size_bytes()
            self.key_bytes += object_bytes(len(key))
            if self._slot_keys is not None:
                self._slot_keys[key_slot(key)] += 1
            if self._sorted is not None:
                self._sorted.add(key)
        else:
            self.value_bytes += delta
            if not value:
                self._remove(key)
                self.effects.emit(("DEL", key))
                return
        if self._watchers:
            self._touch(key)
        effects = self.effects.pending
        if effects is not None:
            at_ms = self._expires.get(key) if len(self._expires) else None
            effects.append(("UPDATE", key, family.TYPE_CODE, created, update.encode(), at_ms))

    def apply_update(self, key: bytes, update: ValueUpdate, created: bool, expire_at_ms: int | None) -> None:
        """Replay an UPDATE effect: apply ``update`` to the key's value (to
        an empty one if ``created``, or if the key holds no value of that
        family), then set the expiry to ``expire_at_ms``.

        Why this gives the logged state, even over a fuzzy snapshot that
        already holds later effects: updates are absolute per element (the
        element's new value or its removal), every other effect on a key is
        absolute for the whole key (SET, DEL, CLEAR, an UPDATE that
        ``created`` the value), and the log is in apply order. Replayed from
        the last whole-key effect on, the value is rebuilt exactly; if the
        log has none for the key, the snapshot's value differs from the
        value at the log switch only in elements some logged update set or
        removed, and the last such update of each element rewrites it. An
        expiry-deletion is not logged, but a value created after it is
        (``created``), so no element outlives its key. The expiry travels
        in the effect for the reason ``apply_patch`` gives."""
        if self.undo_log is not None:
            self._save_preimage(key)
        if len(self._expires):
            self._expire_if_needed(key)
        family = update.VALUE_TYPE
        value = self._values.get(key)
        if created or type(value) is not family:
            if value is not None:
                self._remove(key)
            value = family.empty()
            update.apply(value)
            if not value:
                return
            self._values.set(key, value)
            self.value_bytes += value.size_bytes()
            self.key_bytes += object_bytes(len(key))
            if self._slot_keys is not None:
                self._slot_keys[key_slot(key)] += 1
            if self._sorted is not None:
                self._sorted.add(key)
        else:
            self.value_bytes += update.apply(value)
            if not value:
                self._remove(key)
                return
        if expire_at_ms is None:
            if len(self._expires):
                self._expires.pop(key, None)
        else:
            self._expires.set(key, expire_at_ms)

    def rename(self, source: bytes, target: bytes) -> None:
        """RENAME of a live ``source`` to another key: ``target`` gets its
        value (of any type) and TTL, replacing whatever it held. Journaled as
        ``DEL source`` then the absolute effect for ``target``."""
        self._expire_if_needed(source)
        value = self._values.get(source)
        if value is None:
            return
        at_ms = self._expires.get(source) if len(self._expires) else None
        if not isinstance(value, TypedValue):
            self.delete(source)
            self.set(target, value.tobytes() if type(value) is Growable else value, at_ms)
            return
        self.delete(source)
        if self.undo_log is not None:
            self._save_preimage(target)
        self._expire_if_needed(target)
        old = self._values.swap(target, value)
        self.value_bytes += value.size_bytes() - (0 if old is None else self._forget(old))
        if old is None:
            self.key_bytes += object_bytes(len(target))
            if self._slot_keys is not None:
                self._slot_keys[key_slot(target)] += 1
            if self._sorted is not None:
                self._sorted.add(target)
        if at_ms is not None:
            self._expires.set(target, at_ms)
        elif len(self._expires):
            self._expires.pop(target, None)
        if self._watchers:
            self._touch(target)
        effects = self.effects.pending
        if effects is not None:  # encoding the whole value only for a subscriber
            effects.append(("UPDATE", target, value.TYPE_CODE, True, value.as_update().encode(), at_ms))

    def clear(self) -> None:
        touched: list[bytes] = []
        if self._watchers:
            with self._watch_lock:
                touched = [key for key in self._watchers if key in self._values]
        if not self._flush_tables():
            self._values.clear()
            self._expires.clear()
        if self._sorted is not None:
            self._sorted.clear()
        if self._slot_keys is not None:
            self._slot_keys = [0] * SLOT_COUNT
        self.value_bytes = 0
        self.key_bytes = 0
        self.grown_capacity_bytes = 0
        self._sweep_cursor = 0
        self._touch_all(touched)
        self.effects.emit(("CLEAR",))

    def detach_all(self) -> list[list[object]]:
        """``clear`` in O(1) (FLUSHALL): the same effect and
        WATCH marks, but the old tables' lists are returned instead of
        dropped, for the caller to free a chunk at a time without the lock."""
        touched: list[bytes] = []
        if self._watchers:
            with self._watch_lock:
                touched = [key for key in self._watchers if key in self._values]
        lists = [] if self._flush_tables() else self._values.detach() + self._expires.detach()
        if self._sorted is not None:
            lists += self._sorted.detach()
        if self._slot_keys is not None:
            self._slot_keys = [0] * SLOT_COUNT
        self.value_bytes = 0
        self.key_bytes = 0
        self._sweep_cursor = 0
        self._touch_all(touched)
        self.effects.emit(("CLEAR",))
        return lists

    def _flush_tables(self) -> bool:
        """Before a FLUSH: True if an open snapshot's undo log took the
        tables (new empty ones are in place now: nothing to free)."""
        if self.undo_log is None or not self.snapshots.cleared(self._values, self._expires):
            return False
        self._values, self._expires = self._new_table(), self._new_table()
        if self._access is not None:
            self._values.enable_stamps(*self._access)
        return True

    def attach_sorted_index(self, index: KeyIndex | None) -> None:
        """Keep ``index`` equal to the stored keys from now on, starting
        from the keys stored now (None: keep none). Write lock."""
        if index is not None:
            index.rebuild(key for key, _value in self._values.items())
        self._sorted = index

    @property
    def sorted_index(self) -> KeyIndex | None:
        return self._sorted

    def add_string_views(self, keys: list[bytes], out: list[bytes | memoryview | None]) -> None:
        """Append each of ``keys`` (stored, not expired: the caller checked,
        under the same lock) and its value to ``out``: a string as
        ``get_view`` gives it, None for a value of another type. One loop
        with no per-key method call: KRANGE WITHVALUES' inner loop."""
        get = self._values.get
        append = out.append
        for key in keys:
            value = get(key)
            append(key)
            kind = type(value)
            append(value if kind is bytes else value.view() if kind is Growable else None)

    def is_expired_key(self, key: bytes, now_ms: int) -> bool:
        """A stored ``key`` whose time ran out by ``now_ms`` (readers of the
        sorted index skip it; it is removed by the next write or the sweep)."""
        return self._is_expired(key, now_ms)

    @contextmanager
    def sorted_index_paused(self) -> Iterator[None]:
        """Loading: the sorted index is not fed inside the block, and is
        rebuilt from the table in one sort after it (store/sorted_index.py)."""
        index = self._sorted
        self._sorted = None
        try:
            yield
        finally:
            self.attach_sorted_index(index)

    def count_keys_per_slot(self) -> None:
        """Keep a count of keys per hash slot from now on (cluster mode),
        starting from the keys stored now. Write lock."""
        counts = [0] * SLOT_COUNT
        for key, _value in self._values.items():
            counts[key_slot(key)] += 1
        self._slot_keys = counts

    # --- loading (write lock, nobody else using the keyspace) ---------------

    @contextmanager
    def expiry_paused(self) -> Iterator[None]:
        """No key counts as expired inside the block, as while Redis loads:
        replaying a log applies each effect as it was applied then (an
        EXPIRE or PERSIST of a key whose old TTL has run out since must still
        find the key). ``now_ms()`` is meaningless inside. Call
        ``purge_expired`` after the block."""
        clock_ms = self._clock_ms
        self._clock_ms = _before_every_expiry_ms
        try:
            yield
        finally:
            self._clock_ms = clock_ms

    def purge_expired(self) -> int:
        """Delete every key whose time is up, in one pass; returns how many.
        For the end of loading: not counted in ``expired_keys`` (those keys
        were never live in this process)."""
        if not len(self._expires):
            return 0
        now_ms = self._clock_ms()
        doomed = [key for key, at_ms in self._expires.items() if at_ms <= now_ms]
        for key in doomed:
            self._remove(key)
        return len(doomed)

    def active_expire_step(self, max_checks: int) -> int:
        """Look at up to about ``max_checks`` keys with a TTL and delete the
        expired ones; returns how many were deleted. Resumes where the last call
        stopped, so repeated calls cover every key with a TTL."""
        if not len(self._expires):
            self._sweep_cursor = 0
            return 0
        now_ms = self._clock_ms()
        cursor, items = self._expires.scan(self._sweep_cursor, max_checks)
        self._sweep_cursor = cursor
        removed = 0
        for key, at_ms in items:
            if at_ms <= now_ms:
                self._remove(key)
                removed += 1
        self.expired_keys += removed
        return removed

    def rehash_step(self, buckets: int) -> bool:
        """Advance any resize in progress (for idle time); True while either
        table still has one (or, the compact table, memory to release)."""
        values = self._values.rehash_step(buckets)
        expires = self._expires.rehash_step(buckets)
        return values or expires

    # --- WATCH's mechanism (its rules: commands/transactions.py) -------------

    def watch(self, watcher: KeyWatcher, key: bytes) -> bool:
        """Register ``watcher`` for ``key`` (read or write lock); returns
        whether the key is stored but its time is up (not deleted yet)."""
        expired = self.stored_but_expired(key)
        with self._watch_lock:
            self._watchers.setdefault(key, set()).add(watcher)
        return expired

    def unwatch(self, watcher: KeyWatcher, keys: Iterable[bytes]) -> None:
        """Forget ``watcher`` for ``keys``. Needs no store lock."""
        with self._watch_lock:
            for key in keys:
                watchers = self._watchers.get(key)
                if watchers is not None:
                    watchers.discard(watcher)
                    if not watchers:
                        del self._watchers[key]

    def stored_but_expired(self, key: bytes) -> bool:
        """The key is still stored but its time is up (lazy expiry has not
        deleted it yet). Read or write lock."""
        return key in self._values and self._is_expired(key)

    def watched_keys(self) -> int:
        """How many distinct keys are watched (for INFO and tests)."""
        with self._watch_lock:
            return len(self._watchers)

    def _touch(self, key: bytes) -> None:
        """``key`` was just written or deleted: tell its watchers (Redis'
        touchWatchedKey)."""
        with self._watch_lock:
            watchers = self._watchers.get(key)
            if not watchers:
                return
            present = key in self._values
            for watcher in watchers:
                watcher.key_touched(key, present)

    def _touch_all(self, keys: Iterable[bytes]) -> None:
        for key in keys:
            self._touch(key)
