"""A compact hash table: ``bytes`` keys and small values packed into an arena.

``HashTable`` (store/hashtable.py) keeps a key and a value as two Python
objects, about 100 bytes a key with their list cells. This table keeps
them as bytes, at close to their own length, and offers the same interface
and guarantees (the rules below are hashtable.py's, restated where the
layout changes how they are kept).

Layout, and why:

* Records live in an arena: a list of ``CHUNK_BYTES`` bytearrays, records
  appended to the last one. A record is a 2-byte header (key length, or
  ``LONG_KEY`` and a 4-byte length after the header; a value tag), the key,
  then the value: ``bytes`` up to ``INLINE_VALUE_MAX_BYTES`` inline (the tag
  is its length), an ``int`` that fits in 64 bits inline (8 bytes), and
  anything else (a longer string, a ``Growable``, a ``TypedValue``, None) as
  a 4-byte index into a side list of objects, which keeps their identity.
  The arena is chunked so that no allocation or free is ever bigger than a
  chunk (a 16 MiB bytearray costs about 1 ms to free), and a record never
  straddles two chunks (a bigger one gets a chunk of its own size).
* Per slot: one control byte (0 empty: ends every probe; 1 tombstone;
  otherwise 7 bits of the key's hash with the top bit set, as SwissTable's
  control bytes) and a 32-bit record position (``chunk << CHUNK_SHIFT |
  offset``), 5 bytes a slot, in one anonymous ``mmap`` per list: mapping it
  costs nothing however large (the kernel hands out zero pages as they are
  touched), where a bytearray or array of 2**22 slots costs milliseconds to
  fill. A probe compares the control byte first, so it reads a record only
  when 7 hash bits agree (1 in 128 otherwise), then the key length and the
  key in place (``bytearray.startswith`` at the offset): a probe allocates
  nothing. At 1M keys of 16 bytes with 3-byte values: 21 bytes of record,
  10 of slots, about 31 bytes a key; 42 measured as RSS (bench/table_micro.py:
  the chunks earlier resizes freed stay in the allocator's heap for later
  chunks), against 146 for the object table with its key and value objects.
* The arena's position format caps one table at 4 GiB of records
  (``MAX_CHUNKS`` chunks): a write past it raises ``MemoryError`` before
  changing anything.
* Hashes are not stored: a resize rehashes each moved key (one ``bytes``
  made from the record).

Holes and compaction: an overwrite with a value of the same encoded size
writes in place; any other overwrite, and a delete, leave the old record as
a hole (counted in ``hole_bytes``). A resize moves every live record into a
fresh arena, which compacts it; when holes pass half the arena (and
``COMPACT_MIN_HOLE_BYTES``) a resize starts even if the slot count stays.

Incremental resize, as hashtable.py (dict.c): a resize maps the new slot
lists and keeps the old ones; every write first moves the next
``rehash_slots_per_write`` old slots (8 to 32, fixed when the resize
starts so that the old list drains before the new one fills), and
``rehash_step`` lets an idle task finish it (the keyspace's
``rehash_step``, called by the expiry cycle, so a table does not stay
mid-resize when writes stop). A finished resize's old lists and arena are
released over later writes, ``RELEASE_BYTES_PER_WRITE`` at a time (old
chunks dropped, the old mmap's pages given back with ``madvise``), since
freeing them at once stalls a write for milliseconds.

Rules kept here (as hashtable.py):

* A key is in exactly one of the two lists. New keys go to the current
  list; an existing key in the old list is updated there when its record
  keeps its size, else moved to the current list (as a resize would move
  it). Lookups check both; the old list is skipped for keys whose old home
  the drain has passed (``_rehash_drained``).
* Not thread-safe: the caller holds the store's reader-writer lock. Reads
  never mutate (except access stamps with read touches on: see below).
* ``keys()``/``items()`` are live views for a caller that does not write
  while it iterates.
* ``scan`` keeps Redis's guarantee across resizes, with dict.c's
  reverse-binary cursor over home slots (``hash(key) & (slots - 1)``).
* ``layout_version``, ``install_version``, ``inserts``, ``slot_counts``,
  ``keys_in_slots`` and ``detach`` mean what they mean in hashtable.py.

Access stamps (eviction): ``enable_stamps``/``disable_stamps``/``stamp``/
``sample`` as hashtable.py's, a 32-bit stamp per slot in a third mmap'd
array, moved with its key by a resize.
"""

from __future__ import annotations

import mmap
import random
import struct
from collections.abc import Callable, Iterator
from typing import Any

from .hashtable import (
    MIN_SLOTS,
    RANDOM_MAX_DRAWS,
    REHASH_MAX_SLOTS_PER_WRITE,
    REHASH_MIN_SLOTS_PER_WRITE,
    SCAN_SLOTS_PER_COUNT,
    _grow_at,
    _reverse_increment,
    _shrink_below,
    _target_slots,
)

# Arena chunks: 64 KiB, and the position format's split (16 bits of offset,
# 16 of chunk number).
CHUNK_SHIFT = 16
CHUNK_BYTES = 1 << CHUNK_SHIFT
_OFFSET_MASK = CHUNK_BYTES - 1
MAX_CHUNKS = 1 << (32 - CHUNK_SHIFT)
# Strings up to this length are stored in the record (the value tag is the
# length); longer ones as objects (a read then copies nothing).
INLINE_VALUE_MAX_BYTES = 240
_TAG_INT = 250
_TAG_OBJECT = 251
# A length no inline string has (swap's fast path: "not a string to inline").
_NOT_INLINE = 1 << 30
# Key length byte meaning "a 4-byte length follows the header".
LONG_KEY = 255
# Control bytes.
_EMPTY = 0
_TOMBSTONE = 1
# Compaction starts once holes pass half the arena and at least this much.
COMPACT_MIN_HOLE_BYTES = 1 << 20
# Bytes of finished resizes' lists and arenas given back per write.
RELEASE_BYTES_PER_WRITE = 1 << 18
# Bytes per slot: a control byte and a 4-byte position (+4 with stamps).
SLOT_BYTES = 5
STAMP_BYTES = 4

_UNPACK_BYTES: list[Callable[..., tuple[Any, ...]]] = [struct.Struct(f"{n}s").unpack_from for n in range(LONG_KEY)]
_INT64 = struct.Struct("<q")
_UINT32 = struct.Struct("<I")
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_MISSING: Any = object()


def _tag(h: int) -> int:
    return h >> 57 & 127 | 128


class _Lists:
    """One generation's slot arrays in one anonymous mmap: control bytes,
    positions, and stamps (when on). Releasing gives the pages back a range
    at a time (``release``), so no single call frees more than that."""

    __slots__ = ("map", "ctrl", "positions", "stamps", "_view", "_released")

    def __init__(self, slots: int, stamps: bool) -> None:
        size = slots * (SLOT_BYTES + (STAMP_BYTES if stamps else 0))
        # Private: pages a release gives back (MADV_DONTNEED) are freed at
        # once; a shared anonymous map keeps them until it is closed, which
        # then frees them all in one go.
        self.map = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE)
        if hasattr(mmap, "MADV_NOHUGEPAGE"):
            # Small pages: a transparent huge page is zeroed whole on its first
            # touch and split by a partial release, each a stall of its own.
            self.map.madvise(mmap.MADV_NOHUGEPAGE)
        view = self._view = memoryview(self.map)
        self.positions = view[: 4 * slots].cast("I")
        self.ctrl = view[4 * slots : 5 * slots]
        self.stamps: Any = view[5 * slots :].cast("I") if stamps else None
        self._released = 0

    def __len__(self) -> int:
        """Bytes not released yet (FreeSlices' protocol: ``del x[-n:]``)."""
        return len(self.map) - self._released if not self.map.closed else 0

    def __delitem__(self, cells: slice) -> None:
        self.release(64 * max(1, -(cells.start or -1)))

    def release(self, budget: int) -> bool:
        """Give back up to ``budget`` bytes of pages; True once all are."""
        if self.map.closed:
            return True
        size = len(self.map)
        start = self._released
        if start < size:
            end = min(size, start + max(mmap.PAGESIZE, budget - budget % mmap.PAGESIZE))
            self.map.madvise(mmap.MADV_DONTNEED, start, end - start)
            self._released = end
            return False
        self.positions.release()
        self.ctrl.release()
        if self.stamps is not None:
            self.stamps.release()
        self._view.release()
        self.map.close()
        return True


class _Chunks:
    """A finished generation's arena, released a chunk at a time."""

    __slots__ = ("chunks",)

    def __init__(self, chunks: list[bytearray]) -> None:
        self.chunks = chunks

    def __len__(self) -> int:
        return len(self.chunks)

    def __delitem__(self, cells: slice) -> None:
        self.release(CHUNK_BYTES)

    def release(self, budget: int) -> bool:
        chunks = self.chunks
        while chunks and budget > 0:
            budget -= len(chunks.pop())
        return not chunks


class CompactTable:
    """``bytes`` keys to values, packed; see the module docstring."""

    __slots__ = (
        # The current generation: its slot lists, arena and fill position.
        "_lists",
        "_ctrl",
        "_positions",
        "_stamps",
        "_mask",
        "_chunks",
        "_tail",
        # The generation a resize drains, or None.
        "_old_lists",
        "_old_ctrl",
        "_old_positions",
        "_old_stamps",
        "_old_mask",
        "_old_chunks",
        "_old_used",
        "_rehash_start",
        "_rehash_position",
        "_rehash_remaining",
        "_rehash_drained",
        "_rehash_slots_per_write",
        # Live keys in both generations; live + tombstones in the current one.
        "_used",
        "_fill",
        "_tombstones",
        "_grow_at",
        "_shrink_below",
        # Bytes appended to the current arena, and dead ones among them.
        "_arena_bytes",
        "_hole_bytes",
        # Values kept as objects, and the free indices in that list.
        "_objects",
        "_free_objects",
        # Finished generations being given back, a step per write.
        "_releasing",
        "_random",
        "_layout_version",
        "_install_version",
        "_inserts",
        # Access stamps: the clock (None: off) and its touch for reads.
        "_clock",
        "_read_touch",
    )

    # memory_bytes() includes the keys and inline values (they live in the
    # arena): the eviction helper's accounting adds none for them.
    COUNTS_ENTRIES = True

    # Holes below this never start a compaction (a class attribute so a
    # test can lower it).
    compact_min_hole_bytes = COMPACT_MIN_HOLE_BYTES

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
        self._releasing: list[Any] = []
        self._reset(slots)

    def _reset(self, slots: int) -> None:
        self._objects: list[Any] = []
        self._free_objects: list[int] = []
        self._install(slots)
        self._old_lists: _Lists | None = None
        self._old_ctrl: Any = None
        self._old_positions: Any = None
        self._old_stamps: Any = None
        self._old_chunks: list[bytearray] = []
        self._end_rehash_state()
        self._used = 0

    def _install(self, slots: int) -> None:
        """A new, empty current generation of ``slots`` slots."""
        self._layout_version += 1
        self._install_version += 1
        lists = self._lists = _Lists(slots, self._clock is not None)
        self._ctrl = lists.ctrl
        self._positions = lists.positions
        self._stamps: Any = lists.stamps
        self._mask = slots - 1
        self._chunks: list[bytearray] = []
        self._tail = CHUNK_BYTES
        self._fill = 0
        self._tombstones = 0
        self._arena_bytes = 0
        self._hole_bytes = 0
        self._grow_at = _grow_at(slots)
        self._shrink_below = _shrink_below(slots)

    def _end_rehash_state(self) -> None:
        self._old_mask = 0
        self._old_used = 0
        self._rehash_start = 0
        self._rehash_position = 0
        self._rehash_remaining = 0
        self._rehash_drained = 0
        self._rehash_slots_per_write = 0

    def seed(self, seed: int) -> None:
        """Make ``random_item`` reproducible (tests)."""
        self._random.seed(seed)

    # --- records ---------------------------------------------------------------

    def _key_at(self, chunk: bytearray, p: int) -> bytes:
        n = chunk[p]
        if n != LONG_KEY:
            return _UNPACK_BYTES[n](chunk, p + 2)[0]
        n = _UINT32.unpack_from(chunk, p + 2)[0]
        return bytes(chunk[p + 6 : p + 6 + n])

    def _value_start(self, chunk: bytearray, p: int) -> int:
        n = chunk[p]
        if n != LONG_KEY:
            return p + 2 + n
        return p + 6 + _UINT32.unpack_from(chunk, p + 2)[0]

    def _value_at(self, chunk: bytearray, v: int, tag: int) -> Any:
        if tag <= INLINE_VALUE_MAX_BYTES:
            return _UNPACK_BYTES[tag](chunk, v)[0]
        if tag == _TAG_INT:
            return _INT64.unpack_from(chunk, v)[0]
        return self._objects[_UINT32.unpack_from(chunk, v)[0]]

    @staticmethod
    def _payload_bytes(tag: int) -> int:
        if tag <= INLINE_VALUE_MAX_BYTES:
            return tag
        return 8 if tag == _TAG_INT else 4

    def _matches(self, chunk: bytearray, p: int, key: bytes, n: int) -> bool:
        b = chunk[p]
        if b != LONG_KEY:
            return b == n and chunk.startswith(key, p + 2)
        return n >= LONG_KEY and _UINT32.unpack_from(chunk, p + 2)[0] == n and chunk.startswith(key, p + 6)

    def _encode(self, value: Any) -> tuple[int, bytes]:
        """A value's tag and payload; an object takes a side-list index."""
        kind = type(value)
        if kind is bytes and len(value) <= INLINE_VALUE_MAX_BYTES:
            return len(value), value
        if kind is int and _INT64_MIN <= value <= _INT64_MAX:
            return _TAG_INT, _INT64.pack(value)
        free = self._free_objects
        if free:
            index = free.pop()
            self._objects[index] = value
        else:
            index = len(self._objects)
            self._objects.append(value)
        return _TAG_OBJECT, _UINT32.pack(index)

    def _drop_object(self, chunk: bytearray, v: int) -> Any:
        """Free the side-list index at ``v``; returns the object it held."""
        index = _UINT32.unpack_from(chunk, v)[0]
        objects = self._objects
        value = objects[index]
        objects[index] = None
        self._free_objects.append(index)
        return value

    def _append(self, key: bytes, tag: int, payload: bytes) -> int:
        """Write a record at the arena's end; returns its position."""
        n = len(key)
        head = 2 if n < LONG_KEY else 6
        size = head + n + len(payload)
        self._reserve(size)
        chunk = self._chunks[-1]
        p = self._tail
        if n < LONG_KEY:
            chunk[p] = n
        else:
            chunk[p] = LONG_KEY
            _UINT32.pack_into(chunk, p + 2, n)
        chunk[p + 1] = tag
        k = p + head
        chunk[k : k + n] = key
        chunk[k + n : p + size] = payload
        self._tail = p + size
        self._arena_bytes += size
        return (len(self._chunks) - 1) << CHUNK_SHIFT | p

    def _append_record(self, record: bytearray) -> int:
        """Copy a whole record (a resize's move) to the arena's end."""
        size = len(record)
        self._reserve(size)
        p = self._tail
        self._chunks[-1][p : p + size] = record
        self._tail = p + size
        self._arena_bytes += size
        return (len(self._chunks) - 1) << CHUNK_SHIFT | p

    def _reserve(self, size: int) -> None:
        """Make room for ``size`` bytes at ``_tail`` of the last chunk."""
        if self._tail + size <= CHUNK_BYTES:
            return
        chunks = self._chunks
        if len(chunks) >= MAX_CHUNKS:
            raise MemoryError(f"compact table: arena full ({MAX_CHUNKS} chunks of {CHUNK_BYTES} bytes)")
        if chunks:  # the last chunk's unused end counts as a hole
            waste = max(0, len(chunks[-1]) - self._tail)
            self._arena_bytes += waste
            self._hole_bytes += waste
        chunks.append(bytearray(max(size, CHUNK_BYTES)))
        self._tail = 0

    def _record_size(self, chunk: bytearray, p: int) -> int:
        return self._value_start(chunk, p) - p + self._payload_bytes(chunk[p + 1])

    # --- reads: never mutate ----------------------------------------------------

    def __len__(self) -> int:
        return self._used

    def get(self, key: bytes, default: Any = None) -> Any:
        h = hash(key)
        n = len(key)
        if n < LONG_KEY:
            tag = h >> 57 & 127 | 128
            ctrl = self._ctrl
            mask = self._mask
            i = h & mask
            c = ctrl[i]
            while c:
                if c == tag:
                    o = self._positions[i]
                    chunk = self._chunks[o >> CHUNK_SHIFT]
                    p = o & _OFFSET_MASK
                    if chunk[p] == n and chunk.startswith(key, p + 2):
                        if self._read_touch is not None:
                            self._touch(self._stamps, i)
                        vt = chunk[p + 1]
                        if vt <= INLINE_VALUE_MAX_BYTES:
                            return _UNPACK_BYTES[vt](chunk, p + 2 + n)[0]
                        return self._value_at(chunk, p + 2 + n, vt)
                i = (i + 1) & mask
                c = ctrl[i]
        else:
            i = self._find(self._ctrl, self._positions, self._chunks, self._mask, key, h)
            if i >= 0:
                return self._value_in(self._positions, self._chunks, i, self._stamps)
        if self._old_lists is not None:
            i = self._find_old(key, h)
            if i >= 0:
                return self._value_in(self._old_positions, self._old_chunks, i, self._old_stamps)
        return default

    def _value_in(self, positions: Any, chunks: list[bytearray], i: int, stamps: Any) -> Any:
        if self._read_touch is not None:
            self._touch(stamps, i)
        o = positions[i]
        chunk = chunks[o >> CHUNK_SHIFT]
        p = o & _OFFSET_MASK
        return self._value_at(chunk, self._value_start(chunk, p), chunk[p + 1])

    def _touch(self, stamps: Any, i: int) -> None:
        # Racy by design under the read lock (hashtable.py's module docstring).
        stamps[i] = self._read_touch(stamps[i])

    def __contains__(self, key: bytes) -> bool:
        h = hash(key)
        if self._find(self._ctrl, self._positions, self._chunks, self._mask, key, h) >= 0:
            return True
        return self._old_lists is not None and self._find_old(key, h) >= 0

    def _find(self, ctrl: Any, positions: Any, chunks: list[bytearray], mask: int, key: bytes, h: int) -> int:
        """Slot of ``key`` in one generation, or -1."""
        n = len(key)
        tag = h >> 57 & 127 | 128
        i = h & mask
        c = ctrl[i]
        while c:
            if c == tag:
                o = positions[i]
                if self._matches(chunks[o >> CHUNK_SHIFT], o & _OFFSET_MASK, key, n):
                    return i
            i = (i + 1) & mask
            c = ctrl[i]
        return -1

    def _find_old(self, key: bytes, h: int) -> int:
        mask = self._old_mask
        if ((h & mask) - self._rehash_start) & mask < self._rehash_drained:
            return -1
        return self._find(self._old_ctrl, self._old_positions, self._old_chunks, mask, key, h)

    def _entry(self, positions: Any, chunks: list[bytearray], i: int) -> tuple[bytes, Any]:
        o = positions[i]
        chunk = chunks[o >> CHUNK_SHIFT]
        p = o & _OFFSET_MASK
        return self._key_at(chunk, p), self._value_at(chunk, self._value_start(chunk, p), chunk[p + 1])

    def _key_in(self, positions: Any, chunks: list[bytearray], i: int) -> bytes:
        o = positions[i]
        return self._key_at(chunks[o >> CHUNK_SHIFT], o & _OFFSET_MASK)

    def _generations(self) -> list[tuple[Any, Any, list[bytearray]]]:
        gens = [(self._ctrl, self._positions, self._chunks)]
        if self._old_lists is not None:
            gens.append((self._old_ctrl, self._old_positions, self._old_chunks))
        return gens

    def keys(self) -> Iterator[bytes]:
        """Every key. The caller must not write while iterating."""
        for ctrl, positions, chunks in self._generations():
            for i in range(len(ctrl)):
                if ctrl[i] > _TOMBSTONE:
                    yield self._key_in(positions, chunks, i)

    def items(self) -> Iterator[tuple[bytes, Any]]:
        """Every (key, value). The caller must not write while iterating."""
        for ctrl, positions, chunks in self._generations():
            for i in range(len(ctrl)):
                if ctrl[i] > _TOMBSTONE:
                    yield self._entry(positions, chunks, i)

    def _collect_home(self, ctrl: Any, positions: Any, chunks: list[bytearray], mask: int, home: int, out: list[tuple[bytes, Any]]) -> int:
        i = home
        c = ctrl[i]
        inspected = 1
        while c:
            if c != _TOMBSTONE:
                k = self._key_in(positions, chunks, i)
                if hash(k) & mask == home:
                    o = positions[i]
                    chunk = chunks[o >> CHUNK_SHIFT]
                    p = o & _OFFSET_MASK
                    out.append((k, self._value_at(chunk, self._value_start(chunk, p), chunk[p + 1])))
            i = (i + 1) & mask
            c = ctrl[i]
            inspected += 1
        return inspected

    def scan(self, cursor: int, count: int = 10) -> tuple[int, list[tuple[bytes, Any]]]:
        """Redis SCAN (hashtable.py's ``scan``)."""
        cursor, items, _inspected = self._scan(cursor, count, max(1, count) * SCAN_SLOTS_PER_COUNT)
        return cursor, items

    def _scan(self, cursor: int, count: int, budget: int) -> tuple[int, list[tuple[bytes, Any]], int]:
        items: list[tuple[bytes, Any]] = []
        inspected = 0
        if self._old_lists is None:
            gen, mask = (self._ctrl, self._positions, self._chunks), self._mask
            while True:
                inspected += self._collect_home(*gen, mask, cursor & mask, items)
                cursor = _reverse_increment(cursor, mask)
                if cursor == 0 or len(items) >= count or inspected >= budget:
                    return cursor, items, inspected
        small, small_mask = (self._old_ctrl, self._old_positions, self._old_chunks), self._old_mask
        large, large_mask = (self._ctrl, self._positions, self._chunks), self._mask
        if small_mask > large_mask:
            small, small_mask, large, large_mask = large, large_mask, small, small_mask
        expansion_bits = small_mask ^ large_mask
        while True:
            inspected += self._collect_home(*small, small_mask, cursor & small_mask, items)
            while True:
                inspected += self._collect_home(*large, large_mask, cursor & large_mask, items)
                cursor = _reverse_increment(cursor, large_mask)
                if not cursor & expansion_bits:
                    break
            if cursor == 0 or len(items) >= count or inspected >= budget:
                return cursor, items, inspected

    def scan_keys(self, cursor: int, slot_budget: int, out: list[bytes]) -> tuple[int, int]:
        """hashtable.py's ``scan_keys``: keys of whole buckets from ``cursor``."""
        cursor, items, inspected = self._scan(cursor, 1 << 62, slot_budget)
        out.extend([k for k, _ in items])
        return cursor, inspected

    @property
    def layout_version(self) -> int:
        return self._layout_version

    @property
    def install_version(self) -> int:
        return self._install_version

    @property
    def inserts(self) -> int:
        return self._inserts

    def slot_counts(self) -> tuple[int, int]:
        return self._mask + 1, 0 if self._old_lists is None else self._old_mask + 1

    def keys_in_slots(self, old: bool, start: int, stop: int, out: list[bytes]) -> int:
        """hashtable.py's ``keys_in_slots``: the live keys in slots
        ``[start, stop)`` of the current (or old) list; slots inspected."""
        if old:
            if self._old_lists is None:
                return 0
            ctrl, positions, chunks = self._old_ctrl, self._old_positions, self._old_chunks
        else:
            ctrl, positions, chunks = self._ctrl, self._positions, self._chunks
        stop = min(stop, len(ctrl))
        if start >= stop:
            return 0
        key_in = self._key_in
        append = out.append
        # Control bytes of the range as bytes: scanning them at C speed
        # for live ones (> 1) beats testing every slot in Python.
        window = bytes(ctrl[start:stop])
        for i, c in enumerate(window, start):
            if c > _TOMBSTONE:
                append(key_in(positions, chunks, i))
        return stop - start

    def random_item(self) -> tuple[bytes, Any] | None:
        """A uniformly chosen (key, value), or None if empty."""
        if not self._used:
            return None
        gens = self._generations()
        slots = len(gens[0][0])
        total = slots + (len(gens[1][0]) if len(gens) > 1 else 0)
        draw = self._random.random
        for _ in range(RANDOM_MAX_DRAWS):
            s = int(draw() * total)
            ctrl, positions, chunks = gens[0] if s < slots else gens[1]
            i = s if s < slots else s - slots
            if ctrl[i] > _TOMBSTONE:
                return self._entry(positions, chunks, i)
        start = int(draw() * total)
        for offset in range(total):
            s = (start + offset) % total
            ctrl, positions, chunks = gens[0] if s < slots else gens[1]
            i = s if s < slots else s - slots
            if ctrl[i] > _TOMBSTONE:
                return self._entry(positions, chunks, i)
        raise AssertionError("compact table count says non-empty but no slot is live")

    def statistics(self) -> dict[str, Any]:
        rehashing = self._old_lists is not None
        return {
            "len": self._used,
            "slots": self._mask + 1,
            "old_slots": self._old_mask + 1 if rehashing else 0,
            "rehashing": rehashing,
            "tombstones": self._tombstones,
            "fill": self._fill,
            "old_len": self._old_used,
            "rehash_index": self._old_mask + 1 - self._rehash_remaining if rehashing else 0,
            "rehash_slots_per_write": self._rehash_slots_per_write,
            "arena_bytes": self._arena_bytes,
            "hole_bytes": self._hole_bytes,
            "chunks": len(self._chunks),
            "objects": len(self._objects) - len(self._free_objects),
            "releasing": len(self._releasing),
        }

    def memory_bytes(self) -> int:
        """Bytes the table costs (a read, O(1) in the keys): slot lists,
        arenas (so the keys and inline values: ``COUNTS_ENTRIES``), the side
        list's cells, and what is still being released; not the objects
        the side list references (long strings, grown and typed values).
        Oversized chunks count as one chunk each."""
        total = len(self._lists.map) + CHUNK_BYTES * len(self._chunks) + 8 * len(self._objects)
        if self._old_lists is not None:
            total += len(self._old_lists.map) + CHUNK_BYTES * len(self._old_chunks)
        for item in self._releasing:
            total += len(item) if isinstance(item, _Lists) else CHUNK_BYTES * len(item)
        return total

    def peek(self, key: bytes) -> tuple[Any, int] | None:
        """``key``'s value and stamp (0 with stamps off) without touching
        the stamp, or None if absent (hashtable.py's ``peek``)."""
        h = hash(key)
        on = self._clock is not None
        i = self._find(self._ctrl, self._positions, self._chunks, self._mask, key, h)
        if i >= 0:
            key_value = self._entry(self._positions, self._chunks, i)
            return key_value[1], self._stamps[i] if on and self._stamps is not None else 0
        if self._old_lists is not None:
            i = self._find_old(key, h)
            if i >= 0:
                key_value = self._entry(self._old_positions, self._old_chunks, i)
                return key_value[1], self._old_stamps[i] if on and self._old_stamps is not None else 0
        return None

    # --- writes (write lock) ------------------------------------------------------

    def set(self, key: bytes, value: Any) -> bool:
        """Store ``value`` under ``key``; True if the key was new."""
        return self.swap(key, value, _MISSING) is _MISSING

    def swap(self, key: bytes, value: Any, missing: Any = None) -> Any:
        """Store ``value`` under ``key``; the value it replaced, or ``missing``."""
        if self._releasing:
            self._release_step()
        h = hash(key)
        if self._old_lists is not None:
            self._rehash(self._rehash_slots_per_write)
            if self._old_lists is not None:
                i = self._find_old(key, h)
                if i >= 0:
                    return self._replace_old(i, key, h, value)
        ctrl, positions, chunks, mask = self._ctrl, self._positions, self._chunks, self._mask
        n = len(key)
        short = n < LONG_KEY
        # The common case inline (a short key, a string that fits a record):
        # no method call on the way.
        m = len(value) if type(value) is bytes and short else _NOT_INLINE
        if m > INLINE_VALUE_MAX_BYTES:
            m = _NOT_INLINE
        tag = h >> 57 & 127 | 128
        i = h & mask
        free = -1
        c = ctrl[i]
        while c:
            if c == tag:
                o = positions[i]
                chunk = chunks[o >> CHUNK_SHIFT]
                p = o & _OFFSET_MASK
                if (chunk[p] == n and chunk.startswith(key, p + 2)) if short else self._matches(chunk, p, key, n):
                    if chunk[p + 1] == m:
                        # Same length: in place.
                        v = p + 2 + n
                        previous = _UNPACK_BYTES[m](chunk, v)[0]
                        chunk[v : v + m] = value
                        if self._clock is not None:
                            self._stamps[i] = self._clock.touch(self._stamps[i])
                        return previous
                    return self._replace(i, chunk, p, key, value)
            elif c == _TOMBSTONE and free < 0:
                free = i
            i = (i + 1) & mask
            c = ctrl[i]
        if m <= INLINE_VALUE_MAX_BYTES:
            size = 2 + n + m
            p = self._tail
            if p + size > CHUNK_BYTES:
                self._reserve(size)  # raises MemoryError before any change
                p = 0
            chunk = chunks[-1]
            chunk[p] = n
            chunk[p + 1] = m
            chunk[p + 2 : p + size] = key + value
            self._tail = p + size
            self._arena_bytes += size
            o = (len(chunks) - 1) << CHUNK_SHIFT | p
        else:
            vt, payload = self._encode(value)
            try:
                o = self._append(key, vt, payload)
            except MemoryError:
                if vt == _TAG_OBJECT:
                    self._free_object_index(_UINT32.unpack(payload)[0])
                raise
        if free >= 0:
            i = free
            self._tombstones -= 1
        else:
            self._fill += 1
        positions[i] = o
        ctrl[i] = tag
        if self._clock is not None:
            self._stamps[i] = self._clock.fresh()
        self._used += 1
        self._inserts += 1
        if self._fill > self._grow_at:
            self._start_resize()
        return missing

    def _free_object_index(self, index: int) -> None:
        self._objects[index] = None
        self._free_objects.append(index)

    def _replace(self, i: int, chunk: bytearray, p: int, key: bytes, value: Any) -> Any:
        """Overwrite the value of the current generation's slot ``i``."""
        if self._clock is not None:
            self._stamps[i] = self._clock.touch(self._stamps[i])
        v = self._value_start(chunk, p)
        old_tag = chunk[p + 1]
        kind = type(value)
        if old_tag <= INLINE_VALUE_MAX_BYTES:
            previous = _UNPACK_BYTES[old_tag](chunk, v)[0]
            if kind is bytes and len(value) == old_tag:
                chunk[v : v + old_tag] = value
                return previous
        elif old_tag == _TAG_INT:
            previous = _INT64.unpack_from(chunk, v)[0]
            if kind is int and _INT64_MIN <= value <= _INT64_MAX:
                _INT64.pack_into(chunk, v, value)
                return previous
        else:
            index = _UINT32.unpack_from(chunk, v)[0]
            previous = self._objects[index]
            if not (kind is bytes and len(value) <= INLINE_VALUE_MAX_BYTES) and not (
                kind is int and _INT64_MIN <= value <= _INT64_MAX
            ):
                self._objects[index] = value
                return previous
        # Another size: a new record; the old one becomes a hole.
        size = v - p + self._payload_bytes(old_tag)
        vt, payload = self._encode(value)
        try:
            self._positions[i] = self._append(key, vt, payload)
        except MemoryError:
            if vt == _TAG_OBJECT:
                self._free_object_index(_UINT32.unpack(payload)[0])
            raise
        if old_tag == _TAG_OBJECT:
            self._drop_object(chunk, v)
        self._add_hole(size)
        return previous

    def _add_hole(self, size: int) -> None:
        self._hole_bytes += size
        holes = self._hole_bytes
        if holes > self.compact_min_hole_bytes and 2 * holes > self._arena_bytes and self._old_lists is None:
            self._start_resize()

    def _replace_old(self, i: int, key: bytes, h: int, value: Any) -> Any:
        """Overwrite a key still in the old generation: in place when the
        record keeps its size, else moved to the current generation."""
        o = self._old_positions[i]
        chunk = self._old_chunks[o >> CHUNK_SHIFT]
        p = o & _OFFSET_MASK
        v = self._value_start(chunk, p)
        old_tag = chunk[p + 1]
        kind = type(value)
        stamps = self._old_stamps
        if old_tag <= INLINE_VALUE_MAX_BYTES and kind is bytes and len(value) == old_tag:
            previous = _UNPACK_BYTES[old_tag](chunk, v)[0]
            chunk[v : v + old_tag] = value
        elif old_tag == _TAG_INT and kind is int and _INT64_MIN <= value <= _INT64_MAX:
            previous = _INT64.unpack_from(chunk, v)[0]
            _INT64.pack_into(chunk, v, value)
        elif old_tag == _TAG_OBJECT and not (kind is bytes and len(value) <= INLINE_VALUE_MAX_BYTES) and not (
            kind is int and _INT64_MIN <= value <= _INT64_MAX
        ):
            index = _UINT32.unpack_from(chunk, v)[0]
            previous = self._objects[index]
            self._objects[index] = value
        else:
            previous = self._value_at(chunk, v, old_tag)
            stamp = stamps[i] if stamps is not None and self._clock is not None else 0
            vt, payload = self._encode(value)
            try:
                new_position = self._append(key, vt, payload)
            except MemoryError:
                if vt == _TAG_OBJECT:
                    self._free_object_index(_UINT32.unpack(payload)[0])
                raise
            if old_tag == _TAG_OBJECT:
                self._drop_object(chunk, v)
            self._old_ctrl[i] = _TOMBSTONE
            self._old_used -= 1
            j = self._free_slot(h)
            self._positions[j] = new_position
            self._ctrl[j] = _tag(h)
            if self._clock is not None:
                self._stamps[j] = self._clock.touch(stamp)
            if not self._old_used:
                self._end_rehash()
            if self._fill > self._grow_at:
                self._start_resize()
            return previous
        if self._clock is not None:
            stamps[i] = self._clock.touch(stamps[i])
        return previous

    def _free_slot(self, h: int) -> int:
        """A free slot of the current generation for a key not in it (the
        first tombstone or empty slot of its probe run); counts it."""
        ctrl, mask = self._ctrl, self._mask
        i = h & mask
        c = ctrl[i]
        while c > _TOMBSTONE:
            i = (i + 1) & mask
            c = ctrl[i]
        if c == _TOMBSTONE:
            self._tombstones -= 1
        else:
            self._fill += 1
        return i

    def pop(self, key: bytes, default: Any = _MISSING) -> Any:
        """Remove ``key`` and return its value; ``default`` if absent, or
        KeyError if no default was given."""
        if self._releasing:
            self._release_step()
        h = hash(key)
        if self._old_lists is not None:
            self._rehash(self._rehash_slots_per_write)
            if self._old_lists is not None:
                i = self._find_old(key, h)
                if i >= 0:
                    value, _size = self._take(self._old_positions, self._old_chunks, i)
                    self._old_ctrl[i] = _TOMBSTONE
                    self._used -= 1
                    self._old_used -= 1
                    if not self._old_used:
                        self._end_rehash()
                    self._maybe_shrink()
                    return value
        ctrl, positions, chunks, mask = self._ctrl, self._positions, self._chunks, self._mask
        n = len(key)
        if n < LONG_KEY:
            # _find and _take inline for a short key.
            tag = h >> 57 & 127 | 128
            i = h & mask
            c = ctrl[i]
            while c:
                if c == tag:
                    o = positions[i]
                    chunk = chunks[o >> CHUNK_SHIFT]
                    p = o & _OFFSET_MASK
                    if chunk[p] == n and chunk.startswith(key, p + 2):
                        break
                i = (i + 1) & mask
                c = ctrl[i]
            else:
                i = -1
        else:
            i = self._find(ctrl, positions, chunks, mask, key, h)
        if i < 0:
            if default is _MISSING:
                raise KeyError(key)
            return default
        value, size = self._take(positions, chunks, i)
        self._used -= 1
        if ctrl[(i + 1) & mask] == _EMPTY:
            # Nothing probes past an empty slot: this slot and the
            # tombstones right before it can become empty too.
            ctrl[i] = _EMPTY
            fill = self._fill - 1
            i = (i - 1) & mask
            while ctrl[i] == _TOMBSTONE:
                ctrl[i] = _EMPTY
                fill -= 1
                self._tombstones -= 1
                i = (i - 1) & mask
            self._fill = fill
        else:
            ctrl[i] = _TOMBSTONE
            self._tombstones += 1
        # After the slot is gone: either may start a resize.
        self._add_hole(size)
        self._maybe_shrink()
        return value

    def _take(self, positions: Any, chunks: list[bytearray], i: int) -> tuple[Any, int]:
        """The value of slot ``i`` and its record's size (a hole now)."""
        o = positions[i]
        chunk = chunks[o >> CHUNK_SHIFT]
        p = o & _OFFSET_MASK
        v = self._value_start(chunk, p)
        tag = chunk[p + 1]
        value = self._drop_object(chunk, v) if tag == _TAG_OBJECT else self._value_at(chunk, v, tag)
        return value, v - p + self._payload_bytes(tag)

    def _maybe_shrink(self) -> None:
        if self._used < self._shrink_below and self._old_lists is None:
            self._start_resize()

    def clear(self) -> None:
        self._releasing.clear()
        self._reset(MIN_SLOTS)

    def detach(self) -> list[Any]:
        """Empty the table in O(1) and return what it held, for a caller to
        free a piece at a time (``del x[-n:]`` until empty: FreeSlices)."""
        held: list[Any] = [self._objects, _Chunks(self._chunks), self._lists, *self._releasing]
        if self._old_lists is not None:
            held += [_Chunks(self._old_chunks), self._old_lists]
        self._releasing = []
        self._reset(MIN_SLOTS)
        return held

    def rehash_step(self, slots: int) -> bool:
        """Advance a resize in progress by up to ``slots`` old slots, and the
        release of finished ones (idle time, write lock). True while a
        resize or a release is in progress."""
        if self._old_lists is not None:
            self._rehash(max(1, slots))
        elif self._releasing:
            self._release_step()
        if self._old_lists is None and not self._releasing:
            # A shrink the last delete left due (it starts on the next write).
            self._maybe_shrink()
        return self._old_lists is not None or bool(self._releasing)

    # --- access stamps (eviction) ----------------------------------------------

    def enable_stamps(self, clock: Any, touch_reads: bool) -> None:
        """Keep a stamp per key from now on; every key present gets
        ``clock.fresh()``. Remaps the slot lists at once (O(slots))."""
        self._clock = clock
        self._read_touch = clock.touch if touch_reads else None
        fresh = clock.fresh()
        for attr in ("", "_old"):
            lists: _Lists | None = getattr(self, f"{attr}_lists")
            if lists is None:
                continue
            slots = len(lists.ctrl)
            copy = _Lists(slots, True)
            copy.ctrl[:] = lists.ctrl
            copy.positions[:] = lists.positions
            copy.stamps[:] = memoryview(_UINT32.pack(fresh) * slots).cast("I")
            setattr(self, f"{attr}_lists", copy)
            setattr(self, f"{attr}_ctrl", copy.ctrl)
            setattr(self, f"{attr}_positions", copy.positions)
            setattr(self, f"{attr}_stamps", copy.stamps)
            self._releasing.append(lists)

    def disable_stamps(self) -> None:
        """Stop keeping stamps (the arrays go with the next resize)."""
        self._clock = self._read_touch = None

    def stamp(self, key: bytes) -> int | None:
        if self._clock is None:
            return None
        h = hash(key)
        i = self._find(self._ctrl, self._positions, self._chunks, self._mask, key, h)
        if i >= 0:
            return self._stamps[i]
        if self._old_lists is not None:
            i = self._find_old(key, h)
            if i >= 0:
                return self._old_stamps[i]
        return None

    def sample(self, count: int) -> list[tuple[bytes, Any, int]]:
        """About ``count`` live entries drawn at random, each with its stamp
        (0 with stamps off); may repeat a key (hashtable.py's ``sample``)."""
        out: list[tuple[bytes, Any, int]] = []
        if not self._used:
            return out
        gens = [(self._ctrl, self._positions, self._chunks, self._stamps)]
        if self._old_lists is not None:
            gens.append((self._old_ctrl, self._old_positions, self._old_chunks, self._old_stamps))
        slots = len(gens[0][0])
        total = slots + (len(gens[1][0]) if len(gens) > 1 else 0)
        draw = self._random.random
        on = self._clock is not None
        for _ in range(count * RANDOM_MAX_DRAWS):
            s = int(draw() * total)
            ctrl, positions, chunks, stamps = gens[0] if s < slots else gens[1]
            i = s if s < slots else s - slots
            if ctrl[i] > _TOMBSTONE:
                key, value = self._entry(positions, chunks, i)
                out.append((key, value, stamps[i] if on and stamps is not None else 0))
                if len(out) >= count:
                    break
        return out

    # --- resizing ---------------------------------------------------------------

    def _start_resize(self) -> None:
        if self._old_lists is not None:
            # Unreachable by the rate rule (the old lists drain before the new
            # ones fill); kept so a mistake costs time, not correctness.
            self._rehash(self._old_mask + 1)
        live = self._used
        old_slots = self._mask + 1
        old = (self._lists, self._ctrl, self._positions, self._stamps, self._mask, self._chunks)
        self._install(_target_slots(live, old_slots) if live else MIN_SLOTS)
        if not live:
            self._releasing += [_Chunks(old[5]), old[0]]
            return
        self._fill = 0
        (self._old_lists, self._old_ctrl, self._old_positions, self._old_stamps, self._old_mask, self._old_chunks) = old
        self._old_used = live
        ctrl = self._old_ctrl
        start = 0
        while ctrl[start]:
            start += 1
        self._rehash_start = self._rehash_position = start
        self._rehash_remaining = old_slots
        room = self._grow_at - live
        rate = -(-2 * old_slots // room)
        self._rehash_slots_per_write = min(REHASH_MAX_SLOTS_PER_WRITE, max(REHASH_MIN_SLOTS_PER_WRITE, rate))

    def _rehash(self, slot_count: int) -> None:
        """Move the live keys of the next ``slot_count`` old slots."""
        old_ctrl, old_positions, old_chunks = self._old_ctrl, self._old_positions, self._old_chunks
        old_mask = self._old_mask
        ctrl, positions, mask = self._ctrl, self._positions, self._mask
        stamps, old_stamps = self._stamps, self._old_stamps
        if self._clock is None:
            stamps = None
        position = self._rehash_position
        steps = min(slot_count, self._rehash_remaining)
        last_empty = -1
        moved = 0
        reused = 0
        for _ in range(steps):
            c = old_ctrl[position]
            if c == _EMPTY:
                last_empty = position
            elif c != _TOMBSTONE:
                o = old_positions[position]
                chunk = old_chunks[o >> CHUNK_SHIFT]
                p = o & _OFFSET_MASK
                key = self._key_at(chunk, p)
                size = self._record_size(chunk, p)
                i = hash(key) & mask
                cell = ctrl[i]
                while cell > _TOMBSTONE:
                    i = (i + 1) & mask
                    cell = ctrl[i]
                if cell == _TOMBSTONE:
                    reused += 1
                positions[i] = self._append_record(chunk[p : p + size])
                ctrl[i] = c
                if stamps is not None:
                    stamps[i] = old_stamps[position] if old_stamps is not None else self._clock.fresh()
                old_ctrl[position] = _TOMBSTONE
                moved += 1
            position = (position + 1) & old_mask
        self._fill += moved - reused
        self._tombstones -= reused
        self._old_used -= moved
        self._rehash_position = position
        self._rehash_remaining -= steps
        if last_empty >= 0:
            self._rehash_drained = (last_empty + 1 - self._rehash_start) & old_mask
        if not self._rehash_remaining or not self._old_used:
            self._end_rehash()

    def _end_rehash(self) -> None:
        self._layout_version += 1
        if self._old_lists is not None:
            self._releasing += [_Chunks(self._old_chunks), self._old_lists]
        self._old_lists = None
        self._old_ctrl = self._old_positions = self._old_stamps = None
        self._old_chunks = []
        self._end_rehash_state()

    def _release_step(self) -> None:
        """Give back ``RELEASE_BYTES_PER_WRITE`` of finished generations."""
        releasing = self._releasing
        if releasing[-1].release(RELEASE_BYTES_PER_WRITE):
            releasing.pop()
