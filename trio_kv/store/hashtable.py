"""The keyspace's hash table: ``bytes`` keys to values, resized a little at a time.

Layout, and why:

* Open addressing with linear probing over one Python list that interleaves
  keys and values: slot ``s`` is ``table[2*s]`` (key) and ``table[2*s + 1]``
  (value), and the number of slots is a power of two. A slot costs 16 bytes
  and there is no per-entry object: at 1,000,000 keys the table is 2**21
  slots, about 34 bytes per key (Redis 7's dict: an 8-byte bucket and a
  24-byte entry per key). Per-entry tuples or chains would cost 60+ bytes. Interleaving puts a key and
  its value in one cache line, which saves a cache miss per lookup against
  two parallel lists.
* Hashes are not stored: ``bytes`` caches its own hash, so ``hash(key)`` is
  cheap, and a stored ``int`` would cost 40 more bytes per key.
* A key cell holds ``None`` (empty: ends every probe), ``_TOMBSTONE``
  (deleted: probes continue past it) or a live key. Tombstones count toward
  the fill that triggers a resize, so a table with many deletions cleans
  itself by rehashing; a delete whose next slot is empty leaves no tombstone.
* The table grows when live keys plus tombstones exceed 2/3 of the slots and
  shrinks when live keys fall below 1/8 of them, never below ``MIN_SLOTS``.

Incremental resize, as Redis ``dict.c``: a resize allocates the new list and
keeps the old one. Every write (``set``, ``pop``) first visits the next
``rehash_slots_per_write`` old slots, empty or not, and moves the live keys
among them, so no single request pays for the whole rehash (dict.c bounds
its empty visits the same way); ``rehash_step(n)`` lets an idle task go
faster. The rate is fixed when the resize starts, from the new list's spare
room, so that the old list is drained before the new one fills up; the
sizing rule (``_target_slots``) keeps it between
``REHASH_MIN_SLOTS_PER_WRITE`` and ``REHASH_MAX_SLOTS_PER_WRITE``.

Allocating and freeing the lists is spread over writes too, because one
``[None] * n`` for 2**22 slots stalls a write for tens of milliseconds, and
so does dropping a list whose cells still reference values:

* The next list is built ahead ("the spare"): once the fill is within
  ``slots / PREPARE_GROW_WINDOW_DIVISOR`` inserts of the grow mark, or the
  live count within ``slots / PREPARE_SHRINK_WINDOW_DIVISOR`` deletes of the
  shrink mark, each insert or delete extends it by a chunk sized so that it
  is complete when the mark is reached (32 cells per write for growth, done
  as 512 cells every 16th write). Its size is predicted from the live count
  and re-predicted, the list lengthened or trimmed, whenever the prediction
  stops being a workable size (``_fits``). A resize takes the spare if it
  fits and otherwise allocates at once (counted as ``spare_misses``; rare:
  the live count must swing across a size boundary late in a window). The
  spare costs no memory outside the windows; inside, it holds early the
  list the resize would allocate anyway, so peak memory does not change.
* A resize clears each old value cell as it moves the key, and when it ends
  the old list goes on a release stack that writes trim from the end, a
  chunk at a time (``RELEASE_CELLS_PER_WRITE``; 4,096 cells every 16th).

What stays O(slots) per call: ``clear`` (FLUSHALL), and the kernel freeing
pages when a shrinking list is reallocated to half its size (about 0.2 us
per 4 KiB page).

Moved keys leave tombstones so the old list's probe runs stay intact. The
drain starts at an empty cell and goes round, so once it passes an empty
cell, every key whose old home lies behind that cell has been moved: lookups
of such keys skip the old list, which removes most double lookups.

Rules kept here:

* A key is in exactly one of the two lists. New keys go to the new list; an
  existing key is updated where it is. Lookups check both.
* Not thread-safe. The caller holds the store's reader-writer lock. Reads
  (``get``, ``in``, ``len``, ``scan``, ``random_item``, ``statistics``) run
  concurrently under the read lock, so they never mutate the table: only
  writes (``set``, ``pop``, ``clear``, ``rehash_step``) move rehash slots.
* ``keys()`` and ``items()`` are live views for a caller that holds a lock
  and does not write while it iterates; a write in between may skip or repeat
  keys.
* ``scan`` keeps Redis's guarantee: a key present for a whole scan is returned
  at least once, whatever resizes happen between calls (it may be repeated).
  The cursor is ``dict.c``'s reverse-binary counter over home slots
  (``(hash(key) >> 1) & (slots - 1)``); "bucket b" is every key whose home slot
  is b, found by walking the probe run from slot b to the first empty slot.
* ``scan_keys`` is the same walk for KEYS and big SCANs run in slices
  (``commands/slicing.py``): keys only, bounded in slots. ``layout_version``
  changes whenever a key may change bucket (resize start or end, clear), so
  a caller can tell whether its slices may have seen a key twice.
* ``keys_in_slots`` is KEYS' fast walk: the live keys of a range of slot
  indices, with one list slice and one C ``filter`` (tombstones are falsy
  for it). ``install_version`` (a new current list: resize start, clear) and
  ``inserts`` (new keys stored) tell a caller walking indices in slices
  whether a key can have moved or come back in another slot. ``detach``
  empties the table in O(1) and hands over the old lists for freeing in
  slices (FLUSHALL).
* ``hash(bytes)`` is randomized per process, so cursors only mean something
  within one process (as Redis's do within one server).

Access stamps (eviction, store/eviction_policy.py): off by default and then
free but for one ``is not None`` test per write. ``enable_stamps(clock,
touch_reads)`` keeps a 32-bit stamp per slot in a parallel ``array('I')``
for each list (4 bytes a slot): a new key gets ``clock.fresh()``, a write
to a key ``clock.touch(stamp)``, and with ``touch_reads`` so does a ``get``
that finds it; a resize moves a key's stamp with it. A read updates its
stamp under the *read* lock, racing other readers: one array store is
atomic under the GIL, so a race only loses an update (a stamp a little
old, eviction a little less exact, as Redis' unlocked lru field), never
corrupts the table; writers are excluded by the lock. ``sample`` and
``stamp`` read them. Installing a new list with stamps on allocates its
array at once (``array * n``: about 2 ms at 2**22 slots); only a server
with an LRU or LFU policy pays it.
``memory_bytes`` is what the table's own structure costs (its lists' cells,
the stamp arrays), without the keys and values it references.
"""

from __future__ import annotations

import random
import sys
from array import array
from collections.abc import Iterator
from itertools import repeat
from typing import Any

# The smallest table; shrinking stops here.
MIN_SLOTS = 8
# Old slots visited per write during a resize: bounds of the computed rate.
REHASH_MIN_SLOTS_PER_WRITE = 8
REHASH_MAX_SLOTS_PER_WRITE = 32
# Growth is prepared over the last slots/8 inserts before the grow mark,
# shrinking over the last slots/32 deletes before the shrink mark.
PREPARE_GROW_WINDOW_DIVISOR = 8
PREPARE_SHRINK_WINDOW_DIVISOR = 32
# Cells added to the spare per write: the computed rate stays within these
# (it is 32 for growth and shrink unless a window was entered late).
PREPARE_MIN_CELLS_PER_WRITE = 32
PREPARE_MAX_CELLS_PER_WRITE = 256
# Cells of a finished resize's old list freed per write.
RELEASE_CELLS_PER_WRITE = 256
# The upkeep runs on every 16th insert or delete, doing 16 writes' worth:
# a Python call per write would cost more than the cells themselves.
UPKEEP_WRITES_PER_STEP = 16
# Most cells one write allocates or frees (a step at the highest rate).
MAX_UPKEEP_CELLS_PER_WRITE = UPKEEP_WRITES_PER_STEP * PREPARE_MAX_CELLS_PER_WRITE
# Bytes of a list cell (a pointer), of a list object's header, of a stamp.
CELL_BYTES = 8
LIST_HEADER_BYTES = 56
STAMP_BYTES = 4
# A trigger no count reaches.
_NEVER = sys.maxsize
# SCAN stops after returning ``count`` items or inspecting this many slots per
# unit of ``count`` (Redis's SCAN visits at most 10 * count buckets too).
SCAN_SLOTS_PER_COUNT = 10
# random_item's rejection sampling gives up after this many empty draws and
# walks to the next live slot (slightly biased; only in pathological tables).
RANDOM_MAX_DRAWS = 64


class _Tombstone:
    __slots__ = ()

    def __bool__(self) -> bool:
        # Falsy like None, so ``filter(None, cells)`` keeps exactly the live
        # keys but b"" (``keys_in_slots``'s C-speed pass over a slot range).
        return False

    def __repr__(self) -> str:
        return "<tombstone>"


_TOMBSTONE: Any = _Tombstone()
_MISSING: Any = object()


def _grow_at(slots: int) -> int:
    """Fill (live keys + tombstones) above which the table resizes."""
    return slots * 2 // 3


def _shrink_below(slots: int) -> int:
    """Live count below which the table shrinks."""
    return slots // 8 if slots > MIN_SLOTS else 0


def _target_slots(live: int, old_slots: int) -> int:
    """Size of a resized table: at most half full, and with room for at
    least ``old_slots / 16`` more keys before it must grow again, which caps
    the rehash rate at 32 old slots per write (see ``_start_resize``)."""
    slots = MIN_SLOTS
    need_room = max(1, old_slots // 16)
    while slots < 2 * live or _grow_at(slots) - live < need_room:
        slots *= 2
    return slots


def _fits(slots: int, live: int, old_slots: int) -> bool:
    """Whether a prepared list of ``slots`` can take a resize of ``live``
    keys from ``old_slots``: room for the rehash rate bound, at most twice
    the size ``_target_slots`` picks, and smaller than the current list if
    it is sparse enough to shrink again (a mass delete shrinks in steps)."""
    return (
        _grow_at(slots) - live >= max(1, old_slots // 16)
        and slots <= 2 * _target_slots(live, old_slots)
        and (slots < old_slots or live >= _shrink_below(slots))
    )


def _collect_home(table: list[Any], mask: int, home: int, out: list[tuple[bytes, Any]]) -> int:
    """Append every live entry whose home position is ``home``; return the
    number of slots inspected."""
    i = home
    k = table[i]
    inspected = 1
    while k is not None:
        if k is not _TOMBSTONE and (hash(k) & mask) == home:
            out.append((k, table[i + 1]))
        i = (i + 2) & mask
        k = table[i]
        inspected += 1
    return inspected


def _reverse_increment(cursor: int, bucket_mask: int) -> int:
    """``dict.c``'s cursor step: add one to the bit-reversed
    ``cursor & bucket_mask``. Higher bits are dropped; 0 means it wrapped."""
    cursor &= bucket_mask
    bit = (bucket_mask + 1) >> 1
    while cursor & bit:
        cursor ^= bit
        bit >>= 1
    return cursor | bit


class HashTable:
    """``bytes`` keys to any values; see the module docstring for the rules."""

    # ``memory_bytes`` counts only the table's own lists: the key and value
    # objects it references are the keyspace's to count (memory_accounting).
    # A table that packs keys and values into its own buffers says True and
    # counts them in ``memory_bytes``.
    COUNTS_ENTRIES = False

    __slots__ = (
        # The current list (keys at even positions, values after them): every
        # new key goes here.
        "_table",
        # 2 * (slots - 1): ``hash(key) & _mask`` is a key cell's home position.
        "_mask",
        # Live keys in both lists (len()).
        "_used",
        # Live keys plus tombstones in the current list (triggers growth).
        "_fill",
        "_tombstones",
        "_grow_at",
        "_shrink_below",
        # The list a resize is draining, or None, and its mask.
        "_old_table",
        "_old_mask",
        # Live keys left in the old list; the resize ends when it reaches 0.
        "_old_used",
        # The old list is drained in cyclic order from ``_rehash_start``, an
        # empty cell, so that no probe run straddles the start.
        "_rehash_start",
        # Position of the next old key cell to move, and slots left to visit.
        "_rehash_position",
        "_rehash_remaining",
        # How many cells from ``_rehash_start`` on (up to the last empty cell
        # the drain passed) hold no key any more and start no probe run that
        # does: a key whose old home is among them is not in the old list.
        "_rehash_drained",
        # Old slots visited per write, fixed when the resize starts.
        "_rehash_slots_per_write",
        # The next resize's list, built ahead a chunk per write, and the
        # length it is being built to (0: not started).
        "_spare",
        "_spare_cells",
        # Inserts or deletes until the next upkeep step.
        "_upkeep_gap",
        # Lists that finished resizes dropped, freed a chunk per write.
        "_releasing",
        # A write calls ``_maintain`` when an insert takes the fill above
        # ``_maintain_above`` or a delete takes the live count below
        # ``_maintain_below``; one compare on the hot path.
        "_maintain_above",
        "_maintain_below",
        # Resizes that found no usable spare and allocated at once.
        "_spare_misses",
        # Per table so tests can seed it; random.Random is safe to share
        # between reader threads (its methods run under the GIL).
        "_random",
        # Bumped when a resize starts or ends or the table is emptied (see
        # ``layout_version``).
        "_layout_version",
        # Bumped when a new current list is installed: a resize starts, or
        # the table is emptied (see ``install_version``).
        "_install_version",
        # New keys stored so far (see ``inserts``).
        "_inserts",
        # Access stamps (see the module docstring): the clock (None: off),
        # its touch for reads (None: reads do not stamp), one array per list.
        "_clock",
        "_read_touch",
        "_stamps",
        "_old_stamps",
    )

    def __init__(self, initial_slots: int = MIN_SLOTS) -> None:
        slots = MIN_SLOTS
        while slots < initial_slots:
            slots *= 2
        self._random = random.Random()
        self._layout_version = 0
        self._install_version = 0
        self._inserts = 0
        self._clock: Any = None
        self._read_touch: Any = None
        self._stamps: array[int] | None = None
        self._old_stamps: array[int] | None = None
        self._reset(slots)

    def _reset(self, slots: int) -> None:
        self._spare: list[Any] = []
        self._spare_cells = 0
        self._upkeep_gap = 1
        self._releasing: list[list[Any]] = []
        self._spare_misses = 0
        self._install([None] * (2 * slots))

    def _install(self, table: list[Any]) -> None:
        """Make ``table`` (all cells None) the current list, with no resize."""
        self._layout_version += 1
        self._install_version += 1
        slots = len(table) >> 1
        self._table: list[Any] = table
        self._stamps = None if self._clock is None else array("I", [0]) * slots
        self._old_stamps = None
        self._mask = 2 * (slots - 1)
        self._used = 0
        self._fill = 0
        self._tombstones = 0
        self._grow_at = _grow_at(slots)
        self._shrink_below = _shrink_below(slots)
        self._old_table: list[Any] | None = None
        self._old_mask = 0
        self._old_used = 0
        self._rehash_start = 0
        self._rehash_position = 0
        self._rehash_remaining = 0
        self._rehash_drained = 0
        self._rehash_slots_per_write = 0
        self._set_triggers()

    def seed(self, seed: int) -> None:
        """Make ``random_item`` reproducible (tests)."""
        self._random.seed(seed)

    # --- reads: never mutate (they run concurrently under the read lock) ---

    def __len__(self) -> int:
        return self._used

    def get(self, key: bytes, default: Any = None) -> Any:
        table = self._table
        mask = self._mask
        i = hash(key) & mask
        k = table[i]
        while k is not None:
            if k == key:
                touch = self._read_touch
                if touch is not None:  # racy by design (module docstring)
                    stamps = self._stamps
                    if stamps is not None:  # a policy change under the read lock
                        stamps[i >> 1] = touch(stamps[i >> 1])
                return table[i + 1]
            i = (i + 2) & mask
            k = table[i]
        old_table = self._old_table
        if old_table is not None:
            i = self._find_old(key)
            if i >= 0:
                touch = self._read_touch
                if touch is not None:
                    stamps = self._old_stamps
                    if stamps is not None:
                        stamps[i >> 1] = touch(stamps[i >> 1])
                return old_table[i + 1]
        return default

    def __contains__(self, key: bytes) -> bool:
        table = self._table
        mask = self._mask
        i = hash(key) & mask
        k = table[i]
        while k is not None:
            if k == key:
                return True
            i = (i + 2) & mask
            k = table[i]
        if self._old_table is not None:
            return self._find_old(key) >= 0
        return False

    def scan(self, cursor: int, count: int = 10) -> tuple[int, list[tuple[bytes, Any]]]:
        """Redis SCAN: start with cursor 0 and call again with the returned
        cursor until it is 0. Each call does at least one bucket and stops
        after ``count`` items or ``count * SCAN_SLOTS_PER_COUNT`` slots."""
        cursor, items, _inspected = self._scan(cursor, count, max(1, count) * SCAN_SLOTS_PER_COUNT)
        return cursor, items

    def _scan(self, cursor: int, count: int, budget: int) -> tuple[int, list[tuple[bytes, Any]], int]:
        """``scan`` with an explicit slot budget; also returns the slots inspected."""
        items: list[tuple[bytes, Any]] = []
        inspected = 0
        if self._old_table is None:
            table, mask = self._table, self._mask
            buckets = mask >> 1
            while True:
                inspected += _collect_home(table, mask, (cursor & buckets) << 1, items)
                cursor = _reverse_increment(cursor, buckets)
                if cursor == 0 or len(items) >= count or inspected >= budget:
                    return cursor, items, inspected
        # Mid-resize: the small list's bucket, then every bucket of the large
        # list that expands it (dict.c's dictScan with two tables).
        small_table, small_mask = self._old_table, self._old_mask
        large_table, large_mask = self._table, self._mask
        if small_mask > large_mask:
            small_table, small_mask, large_table, large_mask = large_table, large_mask, small_table, small_mask
        small_buckets = small_mask >> 1
        large_buckets = large_mask >> 1
        expansion_bits = small_buckets ^ large_buckets
        while True:
            inspected += _collect_home(small_table, small_mask, (cursor & small_buckets) << 1, items)
            while True:
                inspected += _collect_home(large_table, large_mask, (cursor & large_buckets) << 1, items)
                cursor = _reverse_increment(cursor, large_buckets)
                if not cursor & expansion_bits:
                    break
            if cursor == 0 or len(items) >= count or inspected >= budget:
                return cursor, items, inspected

    # --- iteration helpers for commands run in slices (commands/slicing.py) ---

    def scan_keys(self, cursor: int, slot_budget: int, out: list[bytes]) -> tuple[int, int]:
        """``scan`` for callers that want keys only and bound their work in
        slots: appends to ``out`` the keys of whole buckets from ``cursor`` on
        until about ``slot_budget`` slots were inspected (at least one
        bucket). Returns the next cursor (0: done) and the slots inspected.
        Same guarantee as ``scan``, and a key is never returned twice while
        ``layout_version`` stays the same (a key's home bucket only changes
        when the layout does, and each bucket is visited once)."""
        if self._old_table is not None:
            cursor, items, inspected = self._scan(cursor, _NEVER, slot_budget)
            out.extend([k for k, _ in items])
            return cursor, inspected
        # One table: _collect_home and _reverse_increment inlined (this loop
        # is a whole KEYS; calls per bucket doubled its time).
        table, mask = self._table, self._mask
        buckets = mask >> 1
        top_bit = (buckets + 1) >> 1
        append = out.append
        tombstone = _TOMBSTONE
        inspected = 0
        while True:
            home = (cursor & buckets) << 1
            i = home
            k = table[i]
            inspected += 1
            while k is not None:
                if k is not tombstone and (hash(k) & mask) == home:
                    append(k)
                i = (i + 2) & mask
                k = table[i]
                inspected += 1
            cursor &= buckets
            bit = top_bit
            while cursor & bit:
                cursor ^= bit
                bit >>= 1
            cursor |= bit
            if cursor == 0 or inspected >= slot_budget:
                return cursor, inspected

    @property
    def layout_version(self) -> int:
        """Changes whenever keys may change home bucket: a resize starts or
        ends, or ``clear``/``detach`` empties the table. A caller iterating in
        slices compares it to know whether a key can have been repeated."""
        return self._layout_version

    @property
    def install_version(self) -> int:
        """Changes only when a new current list is installed: a resize
        starts, or ``clear``/``detach`` empties the table. While it stays the
        same, no key moves within the current list (writes update in place,
        deletes leave the other keys where they are) and a key leaves the old
        list only for the current one (a resize's moves), so a walk over slot
        indices meets every key present throughout (see ``keys_in_slots``)."""
        return self._install_version

    @property
    def inserts(self) -> int:
        """How many new keys were stored so far (never decreases). While it
        stays the same, no key was (re)inserted, so a walk over slot indices
        cannot have met a key twice."""
        return self._inserts

    def slot_counts(self) -> tuple[int, int]:
        """Slots of the current list, and of the old list (0: no resize in
        progress)."""
        old_table = self._old_table
        return len(self._table) >> 1, 0 if old_table is None else len(old_table) >> 1

    def keys_in_slots(self, old: bool, start: int, stop: int, out: list[bytes]) -> int:
        """Append to ``out`` the live keys in slots ``[start, stop)`` of the
        current list (or of the old list when ``old``). Returns the slots
        inspected: 0 when that list does not exist (any more), else about
        ``stop - start``. One slice of the list and one ``filter`` at C speed
        (about 15x faster than the cursor walk of ``scan_keys``); empty
        cells and tombstones are both falsy, and the one key that is falsy
        too, b"", is looked up on its own."""
        table = self._old_table if old else self._table
        if table is None:
            return 0
        cells = table[2 * start : 2 * stop : 2]
        out.extend(filter(None, cells))
        # b"" is the only falsy key: filter dropped it; find its slot.
        if self._used:
            position = self._find_old(b"") if old else self._find_current(b"")
            if position >= 0 and 2 * start <= position < 2 * stop:
                out.append(b"")
        return len(cells)

    def _find_current(self, key: bytes) -> int:
        """Position of ``key``'s cell in the current list, or -1."""
        table = self._table
        mask = self._mask
        i = hash(key) & mask
        k = table[i]
        while k is not None:
            if k == key:
                return i
            i = (i + 2) & mask
            k = table[i]
        return -1

    def detach(self) -> list[list[Any]]:
        """Empty the table in O(1) and return every list it held (with their
        keys and values), for a caller to free a chunk at a time outside
        the store lock (FLUSHALL): dropping them at once costs a stall
        proportional to the keys."""
        lists = [self._table, *self._releasing]
        if self._old_table is not None:
            lists.append(self._old_table)
        if self._spare:
            lists.append(self._spare)
        self._reset(MIN_SLOTS)
        return lists

    def random_item(self) -> tuple[bytes, Any] | None:
        """A uniformly chosen (key, value), or None if empty. Draws slots
        uniformly over both lists until one is live: every key sits in exactly
        one slot, so every key is equally likely. Expected draws are
        slots / len, at most about 8 outside a resize."""
        if not self._used:
            return None
        table, old_table = self._table, self._old_table
        slots = len(table) >> 1
        total = slots + (len(old_table) >> 1 if old_table is not None else 0)
        draw = self._random.random
        for _ in range(RANDOM_MAX_DRAWS):
            s = int(draw() * total)
            if s < slots:
                k = table[2 * s]
                if k is not None and k is not _TOMBSTONE:
                    return k, table[2 * s + 1]
            else:
                i = 2 * (s - slots)
                k = old_table[i]  # type: ignore[index]
                if k is not None and k is not _TOMBSTONE:
                    return k, old_table[i + 1]  # type: ignore[index]
        start = int(draw() * total)
        for offset in range(total):
            s = (start + offset) % total
            cells, i = (table, 2 * s) if s < slots else (old_table, 2 * (s - slots))
            k = cells[i]  # type: ignore[index]
            if k is not None and k is not _TOMBSTONE:
                return k, cells[i + 1]  # type: ignore[index]
        raise AssertionError("hash table count says non-empty but no slot is live")

    def keys(self) -> Iterator[bytes]:
        """Every key. The caller must not write while iterating."""
        for k, _ in self.items():
            yield k

    def items(self) -> Iterator[tuple[bytes, Any]]:
        """Every (key, value). The caller must not write while iterating."""
        tables = [self._table] if self._old_table is None else [self._table, self._old_table]
        for table in tables:
            for i in range(0, len(table), 2):
                k = table[i]
                if k is not None and k is not _TOMBSTONE:
                    yield k, table[i + 1]

    def statistics(self) -> dict[str, Any]:
        old_table = self._old_table
        return {
            "len": self._used,
            "slots": len(self._table) >> 1,
            "old_slots": 0 if old_table is None else len(old_table) >> 1,
            "rehashing": old_table is not None,
            "tombstones": self._tombstones,
            "fill": self._fill,
            "old_len": self._old_used,
            # Next old slot a resize moves.
            # Old slots a resize has visited so far.
            "rehash_index": (len(old_table) >> 1) - self._rehash_remaining if old_table is not None else 0,
            "rehash_slots_per_write": self._rehash_slots_per_write,
            "spare_cells": len(self._spare),
            "releasing_cells": sum(len(cells) for cells in self._releasing),
            "spare_misses": self._spare_misses,
        }

    # --- access stamps and memory (eviction; see the module docstring) -----

    def enable_stamps(self, clock: Any, touch_reads: bool) -> None:
        """Keep a stamp per key from now on (write lock): every key present
        gets ``clock.fresh()``; ``clock`` has ``fresh()`` and ``touch(stamp)``
        (store/eviction_policy.AccessClock). Allocates 4 bytes a slot at once.
        May run under the read lock (CONFIG SET, one at a time): the arrays
        are in place before readers can see the touch function, and ``get``
        tests the array too, for ``disable_stamps``' order (the reverse)."""
        fresh = array("I", [clock.fresh()])
        old_table = self._old_table
        self._old_stamps = None if old_table is None else fresh * (len(old_table) >> 1)
        self._stamps = fresh * (len(self._table) >> 1)
        self._clock = clock
        self._read_touch = clock.touch if touch_reads else None

    def disable_stamps(self) -> None:
        """Stop keeping stamps and free their arrays (read or write lock, as
        ``enable_stamps``)."""
        self._read_touch = None
        self._clock = None
        self._stamps = self._old_stamps = None

    def stamp(self, key: bytes) -> int | None:
        """``key``'s access stamp (a read: nothing changes), or None if the
        key is absent or stamps are off."""
        # Each array read once: a policy change may drop them meanwhile.
        stamps, old_stamps = self._stamps, self._old_stamps
        if stamps is None:
            return None
        i = self._find_current(key)
        if i >= 0:
            return stamps[i >> 1]
        if self._old_table is not None:
            i = self._find_old(key)
            if i >= 0:
                return None if old_stamps is None else old_stamps[i >> 1]
        return None

    def peek(self, key: bytes) -> tuple[Any, int] | None:
        """``key``'s value and stamp (0 with stamps off) without touching
        the stamp (OBJECT, eviction's checks), or None if absent."""
        stamps, old_stamps = self._stamps, self._old_stamps  # read once, as ``stamp``
        i = self._find_current(key)
        if i >= 0:
            return self._table[i + 1], 0 if stamps is None else stamps[i >> 1]
        if self._old_table is not None:
            i = self._find_old(key)
            if i >= 0:
                return self._old_table[i + 1], 0 if old_stamps is None else old_stamps[i >> 1]
        return None

    def sample(self, count: int) -> list[tuple[bytes, Any, int]]:
        """About ``count`` live entries chosen at random (a read), each as
        (key, value, stamp; 0 with stamps off): with stamps on and no resize
        in progress, consecutive slots from a random start (Redis'
        dictGetSomeKeys); otherwise uniform slots over both lists, as
        ``random_item``, giving up after ``count * RANDOM_MAX_DRAWS`` draws
        (a sparse table: then one entry, from ``random_item``); may repeat a
        key."""
        out: list[tuple[bytes, Any, int]] = []
        if not self._used:
            return out
        table, stamps = self._table, self._stamps
        old_table, old_stamps = self._old_table, self._old_stamps
        draw = self._random.random
        if old_table is None and stamps is not None:
            # The usual case under an LRU/LFU policy: as Redis'
            # dictGetSomeKeys, consecutive slots from one random start
            # (hash order is random order; half the cost of a draw a key).
            mask = self._mask
            i = int(draw() * len(table)) & mask
            tombstone = _TOMBSTONE
            for _ in range(min(len(table) >> 1, count * RANDOM_MAX_DRAWS)):
                k = table[i]
                if k is not None and k is not tombstone:
                    out.append((k, table[i + 1], stamps[i >> 1]))
                    if len(out) >= count:
                        return out
                i = (i + 2) & mask
        slots = len(table) >> 1
        total = slots + (0 if old_table is None else len(old_table) >> 1)
        for _ in range(0 if out else count * RANDOM_MAX_DRAWS):
            s = int(draw() * total)
            cells: list[Any] = table
            cell_stamps = stamps
            if s >= slots:
                cells, cell_stamps, s = old_table, old_stamps, s - slots  # type: ignore[assignment]
            k = cells[2 * s]
            if k is not None and k is not _TOMBSTONE:
                out.append((k, cells[2 * s + 1], 0 if cell_stamps is None else cell_stamps[s]))
                if len(out) >= count:
                    break
        if not out:  # a sparse table: random_item walks to a live slot
            item = self.random_item()
            if item is not None:
                out.append((item[0], item[1], self.stamp(item[0]) or 0))
        return out

    def memory_bytes(self) -> int:
        """Bytes the table's structure costs: every list it holds (current,
        old, spare, lists being released) and the stamp arrays; not the
        keys and values (a read)."""
        # Read before every write under maxmemory: no generator, few calls.
        cells = len(self._table) + len(self._spare)
        lists = 2
        for released in self._releasing:
            cells += len(released)
            lists += 1
        old_table = self._old_table
        if old_table is not None:
            cells += len(old_table)
            lists += 1
        total = cells * CELL_BYTES + lists * LIST_HEADER_BYTES
        stamps = self._stamps
        if stamps is not None:
            total += len(stamps) * STAMP_BYTES
            if self._old_stamps is not None:
                total += len(self._old_stamps) * STAMP_BYTES
        return total

    def _find_old(self, key: bytes) -> int:
        """Position of ``key``'s cell in the old list, or -1."""
        old_table: list[Any] = self._old_table  # type: ignore[assignment]
        mask = self._old_mask
        i = hash(key) & mask
        if (i - self._rehash_start) & mask < self._rehash_drained:
            return -1
        k = old_table[i]
        while k is not None:
            if k == key:
                return i
            i = (i + 2) & mask
            k = old_table[i]
        return -1

    # --- writes (write lock): only these move rehash slots ------------------

    def set(self, key: bytes, value: Any) -> bool:
        """Store ``value`` under ``key``; True if the key was new."""
        return self.swap(key, value, _MISSING) is _MISSING

    def swap(self, key: bytes, value: Any, missing: Any = None) -> Any:
        """Store ``value`` under ``key`` and return the value it replaced, or
        ``missing`` if the key was new (one probe where get-then-set is two)."""
        if self._old_table is not None:
            self._rehash(self._rehash_slots_per_write)
            old_table = self._old_table
            if old_table is not None:
                i = self._find_old(key)
                if i >= 0:
                    previous = old_table[i + 1]
                    old_table[i + 1] = value
                    if self._clock is not None:
                        stamps = self._old_stamps
                        stamps[i >> 1] = self._clock.touch(stamps[i >> 1])  # type: ignore[index]
                    return previous
        table = self._table
        mask = self._mask
        i = hash(key) & mask
        free = -1
        k = table[i]
        while k is not None:
            if k == key:
                previous = table[i + 1]
                table[i + 1] = value
                if self._clock is not None:
                    stamps = self._stamps
                    stamps[i >> 1] = self._clock.touch(stamps[i >> 1])  # type: ignore[index]
                return previous
            if k is _TOMBSTONE and free < 0:
                free = i
            i = (i + 2) & mask
            k = table[i]
        if free >= 0:
            i = free
            self._tombstones -= 1
        else:
            self._fill += 1
        table[i] = key
        table[i + 1] = value
        if self._clock is not None:
            self._stamps[i >> 1] = self._clock.fresh()  # type: ignore[index]
        self._used += 1
        self._inserts += 1
        if self._fill > self._maintain_above:
            self._maintain()
        return missing

    def pop(self, key: bytes, default: Any = _MISSING) -> Any:
        """Remove ``key`` and return its value; ``default`` if absent, or
        KeyError if no default was given."""
        if self._old_table is not None:
            self._rehash(self._rehash_slots_per_write)
            old_table = self._old_table
            if old_table is not None:
                i = self._find_old(key)
                if i >= 0:
                    value = old_table[i + 1]
                    old_table[i] = _TOMBSTONE
                    old_table[i + 1] = None
                    self._used -= 1
                    self._old_used -= 1
                    if not self._old_used:
                        self._end_rehash()
                    if self._used < self._maintain_below:
                        self._maintain()
                    return value
        table = self._table
        mask = self._mask
        i = hash(key) & mask
        k = table[i]
        while k is not None:
            if k == key:
                value = table[i + 1]
                table[i + 1] = None
                self._used -= 1
                if table[(i + 2) & mask] is None:
                    # Nothing probes past an empty slot, so this slot and the
                    # tombstones right before it can become empty too.
                    table[i] = None
                    fill = self._fill - 1
                    i = (i - 2) & mask
                    while table[i] is _TOMBSTONE:
                        table[i] = None
                        fill -= 1
                        self._tombstones -= 1
                        i = (i - 2) & mask
                    self._fill = fill
                else:
                    table[i] = _TOMBSTONE
                    self._tombstones += 1
                if self._used < self._maintain_below:
                    self._maintain()
                return value
            i = (i + 2) & mask
            k = table[i]
        if default is _MISSING:
            raise KeyError(key)
        return default

    def clear(self) -> None:
        self._reset(MIN_SLOTS)

    def rehash_step(self, slots: int) -> bool:
        """Advance a resize in progress by up to ``slots`` old slots (for an
        idle task holding the write lock). True while a resize is in progress."""
        if self._old_table is not None:
            self._rehash(max(1, slots))
        self._maintain()
        return self._old_table is not None

    # --- bounded upkeep paid by writes ---------------------------------------

    def _set_triggers(self) -> None:
        """Set when the next insert or delete calls ``_maintain``: at a resize
        mark, or ``_upkeep_gap`` writes on while there is upkeep to do."""
        slots = len(self._table) >> 1
        above, below = self._grow_at, self._shrink_below
        gap = self._upkeep_gap
        if self._releasing:
            above = min(above, self._fill + gap - 1)
            below = max(below, self._used - gap + 1)
        else:
            grow_window = above - max(1, slots // PREPARE_GROW_WINDOW_DIVISOR)
            above = min(above, self._fill + gap - 1) if self._fill > grow_window else grow_window
            if below:
                shrink_window = below + max(1, slots // PREPARE_SHRINK_WINDOW_DIVISOR)
                below = max(below, self._used - gap + 1) if self._used < shrink_window else shrink_window
        self._maintain_above, self._maintain_below = above, below

    def _maintain(self) -> None:
        """One bounded step: start a resize that is due, else free a chunk
        of a dropped list, else extend the spare."""
        if self._fill > self._grow_at or (self._used < self._shrink_below and self._old_table is None):
            self._start_resize()
        elif self._releasing:
            cells = self._releasing[-1]
            self._release_cells(cells, UPKEEP_WRITES_PER_STEP * RELEASE_CELLS_PER_WRITE)
            if not cells:
                self._releasing.pop()
            self._upkeep_gap = UPKEEP_WRITES_PER_STEP
        elif self._fill > self._maintain_above or self._used < self._maintain_below:
            self._extend_spare()
        self._set_triggers()

    def _extend_spare(self) -> None:
        """Move the spare's length a step toward the size the nearer resize
        mark will want, re-predicted when the current goal stops fitting
        (a growth-sized spare when deletes head for a shrink, say)."""
        spare = self._spare
        slots = len(self._table) >> 1
        to_grow = self._grow_at + 1 - self._fill
        to_shrink = self._used - self._shrink_below + 1 if self._shrink_below else _NEVER
        # The live count at the mark: deletes end at the shrink mark; inserts
        # on the way to the grow mark often come with deletes (churn), so the
        # current count is the better guess there. (The live count can be past
        # the shrink mark while a resize in progress delays the next one.)
        live = self._used if to_grow <= to_shrink else min(self._used, self._shrink_below - 1)
        if not self._spare_cells or not _fits(self._spare_cells >> 1, live, slots):
            self._spare_cells = 2 * _target_slots(live, slots)
        missing = self._spare_cells - len(spare)
        writes_left = max(1, min(to_grow, to_shrink))
        rate = min(PREPARE_MAX_CELLS_PER_WRITE, max(PREPARE_MIN_CELLS_PER_WRITE, -(-abs(missing) // writes_left)))
        # This step pays for the writes until the next one, in advance.
        gap = min(UPKEEP_WRITES_PER_STEP, writes_left)
        if missing > 0:
            self._add_cells(spare, min(missing, rate * gap))
        elif missing < 0:
            self._release_cells(spare, min(-missing, rate * gap))
        self._upkeep_gap = UPKEEP_WRITES_PER_STEP if not missing else gap

    def _add_cells(self, cells: list[Any], count: int) -> None:
        """Append ``count`` empty cells (one place, so tests can count)."""
        cells.extend(repeat(None, count))

    def _release_cells(self, cells: list[Any], count: int) -> None:
        """Drop up to ``count`` cells from the end (one place, so tests can count)."""
        del cells[-count:]

    def _take_list(self, live: int, old_slots: int) -> list[Any]:
        """The list for a resize of ``live`` keys: the spare if it fits,
        else a new one allocated at once (the spare is then released)."""
        spare = self._spare
        self._spare, self._spare_cells = [], 0
        if spare and len(spare) == len(spare) & -len(spare) and _fits(len(spare) >> 1, live, old_slots):
            # Any all-empty list of a workable power-of-two size will do.
            return spare
        if spare:
            self._releasing.append(spare)
        slots = _target_slots(live, old_slots)
        if slots > MIN_SLOTS:
            self._spare_misses += 1
        table: list[Any] = []
        self._add_cells(table, 2 * slots)
        return table

    def _start_resize(self) -> None:
        if self._old_table is not None:
            # Unreachable by the rate rule below (the old list drains before
            # the new one fills); kept so a mistake costs time, not correctness.
            self._rehash(len(self._old_table))
        live = self._used
        old_table, old_mask = self._table, self._mask
        old_slots = len(old_table) >> 1
        if not live:
            self._releasing.append(old_table)
            self._install([None] * (2 * MIN_SLOTS))
            return
        old_stamps = self._stamps
        self._install(self._take_list(live, old_slots))
        self._used = live
        self._old_table, self._old_mask = old_table, old_mask
        self._old_stamps = old_stamps
        self._old_used = live
        # The first empty cell: no probe run crosses it, and none is ever
        # added to the old list, so draining from it never splits a run.
        start = 0
        while old_table[start] is not None:
            start += 2
        self._rehash_start = self._rehash_position = start
        self._rehash_remaining = old_slots
        # Each write adds at most one key to the new list, so draining
        # old_slots within room / 2 writes keeps it under its grow mark.
        room = self._grow_at - live
        rate = -(-2 * old_slots // room)
        self._rehash_slots_per_write = min(REHASH_MAX_SLOTS_PER_WRITE, max(REHASH_MIN_SLOTS_PER_WRITE, rate))
        self._set_triggers()

    def _rehash(self, slot_count: int) -> None:
        """Move the live keys of the next ``slot_count`` old slots."""
        old_table: list[Any] = self._old_table  # type: ignore[assignment]
        old_mask = self._old_mask
        table, mask = self._table, self._mask
        stamps, old_stamps = self._stamps, self._old_stamps
        position = self._rehash_position
        steps = min(slot_count, self._rehash_remaining)
        last_empty = -1
        moved = 0
        reused_tombstones = 0
        for _ in range(steps):
            k = old_table[position]
            if k is None:
                last_empty = position
            elif k is not _TOMBSTONE:
                i = hash(k) & mask
                cell = table[i]
                while cell is not None and cell is not _TOMBSTONE:
                    i = (i + 2) & mask
                    cell = table[i]
                if cell is _TOMBSTONE:
                    reused_tombstones += 1
                table[i] = k
                table[i + 1] = old_table[position + 1]
                if stamps is not None:
                    stamps[i >> 1] = old_stamps[position >> 1]  # type: ignore[index]
                old_table[position] = _TOMBSTONE
                # Cleared now, while the value is in cache: freeing the old
                # list later then touches no value's reference count.
                old_table[position + 1] = None
                moved += 1
            position = (position + 2) & old_mask
        self._fill += moved - reused_tombstones
        self._tombstones -= reused_tombstones
        self._old_used -= moved
        self._rehash_position = position
        self._rehash_remaining -= steps
        if last_empty >= 0:
            self._rehash_drained = (last_empty + 2 - self._rehash_start) & old_mask
        if not self._rehash_remaining or not self._old_used:
            self._end_rehash()

    def _end_rehash(self) -> None:
        self._layout_version += 1
        if self._old_table is not None:
            self._releasing.append(self._old_table)
        self._old_table = None
        self._old_stamps = None
        self._old_mask = 0
        self._old_used = 0
        self._rehash_start = 0
        self._rehash_position = 0
        self._rehash_remaining = 0
        self._rehash_drained = 0
        self._rehash_slots_per_write = 0
        self._set_triggers()
