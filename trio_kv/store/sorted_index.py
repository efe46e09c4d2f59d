"""``SortedKeyIndex``: every stored key in byte order, beside the hash table.

The hash table answers "this key's value" in O(1) but keeps keys in hash
order; ordered reads (KRANGE, the line protocol's RANGE and ``KEYS prefix``,
HTTP ``/range``, snapshot ranges, the library's ``scan``) walk this index
instead. It keeps its own packed copy of the keys (the table packs its
keys too, so there are no per-key objects to share) in **blocks**: runs
of consecutive keys, each

* a sorted part: one immutable ``bytes`` of its keys concatenated, and
  either their width (all of one length: the offsets are implicit) or an
  ``array('H')`` of their offsets; a binary search of slices finds a key's
  place in it;
* a pending tail: the block's new keys not sorted in yet, packed the same
  way in arrival order (at most ``tail_max_keys`` keys and
  ``tail_max_bytes`` bytes, defaults ``TAIL_MAX_KEYS``/``TAIL_MAX_BYTES``).
  A new key is appended to its block's tail (a bisect of the blocks' fences
  and a short copy); a full tail is sorted into its block in one decode,
  sort and re-encode, shared by all its keys. A removed key leaves the tail
  or the sorted part at once (a splice of the bytes), so readers never
  filter removed keys.

A list of the blocks' fences (block b holds the keys from ``fences[b]`` up
to ``fences[b+1]``, exclusive; the first block also those below) routes a
key to its block with the C ``bisect``. A sorted part holds at most
``block_max_keys`` keys and ``block_max_bytes`` bytes (a longer key has a
block to itself): a bigger one is split in two, and one at a quarter of
both or under is joined with a neighbour. For 16-byte keys that is about
17-18 bytes a key, the key bytes included (bench/sorted_index_bench.py).

Rules kept here:

* **Exactly the keys of the value table.** The keyspace keeps it
  (``Keyspace.attach_sorted_index``): it adds a key wherever a key enters
  the value table and discards it wherever one leaves it (delete, expiry
  lazy or by the sweep, RENAME, a value left empty, FLUSHALL, a replay),
  the same points that move the per-slot counts. That is where every
  mutation path meets, the paths the effects sink deliberately does not
  report (expiry) included, and an overwrite costs nothing. So
  ``len(index) == DBSIZE`` at every lock release (pending keys count),
  and, like DBSIZE, the index holds a key whose time ran out until it is
  removed: readers skip such keys (``Keyspace.is_expired_key``). In
  cluster mode a tombstone is not a key (the keyspace holds only live
  winners; tombstones live in ``store/versions.py``), so it is never in the
  index.
* **Locks are the keyspace's.** Mutated only under the store's write lock
  (by the keyspace), read under either lock. Readers never mutate: ``irange``
  sorts each block's pending tail into the keys it yields from that block,
  in a list of its own. An iterator
  from ``irange`` must not outlive the lock hold it was made in (a write
  between two of its steps may skip or repeat keys): a reader that stops
  between slices resumes with a new ``irange`` from the last key it
  returned, exclusive.
* **Loading builds it once.** While a load replays a log or snapshot
  (``Keyspace.sorted_index_paused``), the keyspace does not feed it; it is
  rebuilt from the table afterwards in one sort, into full blocks.

Pure code: no trio, no IO.
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from itertools import accumulate
from struct import Struct
from typing import Any, Union

from .shared_key_index import SharedKeyIndex

# Keys a block's sorted part holds at most: a search in it takes log2 of
# this many slice compares (Python steps, ~0.1 us each), a split moves the
# block lists' slots past it (~5,000 blocks a million keys), and the
# per-block cost (a fence key, two bytes objects, five list slots: ~130
# bytes) is shared by this many keys.
BLOCK_MAX_KEYS = 256
# Bytes of keys a sorted part holds at most (a single longer key gets a
# block to itself): bounds the copy a removal makes, and keeps every offset
# of a block of several keys under 65,536 (an ``array('H')``).
BLOCK_MAX_BYTES = 8192
# A block's pending tail: at most this many keys and bytes before it is
# sorted into the block. Each new key copies its tail once (a bytes
# append); the sort's decode and re-encode of the block is shared by this
# many keys; a reader decodes and sorts in the tails of the blocks it walks.
TAIL_MAX_KEYS = 64
TAIL_MAX_BYTES = 2048
# What a block costs beyond its keys' bytes: its fence, the blob's and the
# tail's object headers, its slots in the five lists (and offsets where
# widths differ): ``bytes_measured`` gave 0.58 bytes a key over 16-byte keys
# in full 256-key blocks, about 150 a block; 200 leaves room for offsets.
BLOCK_OVERHEAD_BYTES = 200

# A packed run of keys' layout: the width of each of its keys (all of one
# length, at least 1), or the offsets of its keys (len = keys + 1); 0: an
# empty tail.
Layout = Union[int, "array[int]"]

_ONE_LANE = (1).to_bytes(2, sys.byteorder)
# irange's bounds: first and last block, min and max key, their inclusiveness.
_Bounds = tuple[int, int, Union[bytes, None], Union[bytes, None], bool, bool]


def _shifted(offsets: array[int], delta: int) -> array[int]:
    """``offsets`` with ``delta`` added to every entry, in a few C calls:
    the entries read as one integer of 16-bit lanes, plus ``delta`` times an
    integer with a 1 in every lane. No entry leaves [0, 65535] (the caller's
    promise), so no lane carries into or borrows from the next."""
    if not offsets:
        return offsets
    raw = offsets.tobytes()
    ones = int.from_bytes(_ONE_LANE * len(offsets), sys.byteorder)
    value = int.from_bytes(raw, sys.byteorder) + delta * ones
    out = array("H")
    out.frombytes(value.to_bytes(len(raw), sys.byteorder))
    return out


def _block_len(blob: bytes, layout: Layout) -> int:
    if type(layout) is int:
        return len(blob) // layout if layout else 0
    return len(layout) - 1  # type: ignore[arg-type]


# Keys of one width decoded by one ``struct`` call: a chunk of this many.
_CHUNK_KEYS = 32


@lru_cache(maxsize=64)
def _chunk_unpacker(width: int) -> Callable[[bytes, int], tuple[bytes, ...]]:
    """``unpack_from(blob, offset)``: the ``_CHUNK_KEYS`` keys of ``width``
    bytes at ``offset`` (a few widths are in use at a time: the cache is a
    handful of small ``Struct`` objects, shared by every index, thread-safe)."""
    return Struct(f"{width}s" * _CHUNK_KEYS).unpack_from


def _decode(blob: bytes, layout: Layout, start: int, stop: int) -> list[bytes]:
    """The keys ``start:stop`` of a packed run, as new ``bytes``."""
    if type(layout) is int:
        width: int = layout
        if not width:
            return []
        at, end = start * width, stop * width
        if stop - start < _CHUNK_KEYS:
            return [blob[offset : offset + width] for offset in range(at, end, width)]
        # Whole chunks in one C call each (~5x faster than a slice a key).
        unpack = _chunk_unpacker(width)
        step = _CHUNK_KEYS * width
        keys: list[bytes] = []
        for offset in range(at, end - step + 1, step):
            keys += unpack(blob, offset)
        rest = (stop - start) % _CHUNK_KEYS
        keys += [blob[offset : offset + width] for offset in range(end - rest * width, end, width)]
        return keys
    offsets: array[int] = layout  # type: ignore[assignment]
    return [blob[begin:end] for begin, end in zip(offsets[start:stop], offsets[start + 1 : stop + 1])]


def _search(blob: bytes, layout: Layout, key: bytes, after: bool, low: int = 0) -> int:
    """Where ``key`` goes in the block: the number of its keys below
    ``key`` (``after``: at or below it), searching from ``low``."""
    if type(layout) is int:
        width: int = layout
        high = len(blob) // width
        if after:
            while low < high:
                middle = (low + high) >> 1
                at = middle * width
                if key < blob[at : at + width]:
                    high = middle
                else:
                    low = middle + 1
        else:
            while low < high:
                middle = (low + high) >> 1
                at = middle * width
                if blob[at : at + width] < key:
                    low = middle + 1
                else:
                    high = middle
        return low
    offsets: array[int] = layout  # type: ignore[assignment]
    high = len(offsets) - 1
    if after:
        while low < high:
            middle = (low + high) >> 1
            if key < blob[offsets[middle] : offsets[middle + 1]]:
                high = middle
            else:
                low = middle + 1
    else:
        while low < high:
            middle = (low + high) >> 1
            if blob[offsets[middle] : offsets[middle + 1]] < key:
                low = middle + 1
            else:
                high = middle
    return low


def _encode(keys: list[bytes]) -> tuple[bytes, Layout]:
    """``keys`` (at least one) as a packed run."""
    lengths = list(map(len, keys))
    width = lengths[0]
    if width and min(lengths) == max(lengths):
        return b"".join(keys), width
    return b"".join(keys), array("H", accumulate(lengths, initial=0))


def _all(blob: bytes, layout: Layout) -> list[bytes]:
    """Every key of a packed run."""
    return _decode(blob, layout, 0, _block_len(blob, layout))


class SortedKeyIndex:
    """See the module docstring."""

    __slots__ = ("_fences", "_blobs", "_layouts", "_tails", "_tail_layouts", "_keys", "_max_keys",
                 "_max_bytes", "_tail_keys", "_tail_bytes", "_key_bytes")

    def __init__(
        self, keys: Iterable[bytes] = (), *, block_max_keys: int = BLOCK_MAX_KEYS,
        block_max_bytes: int = BLOCK_MAX_BYTES, tail_max_keys: int = TAIL_MAX_KEYS,
        tail_max_bytes: int = TAIL_MAX_BYTES,
    ) -> None:
        if not (2 <= block_max_keys and 1 <= block_max_bytes < 1 << 16 and 1 <= tail_max_keys
                and 1 <= tail_max_bytes < 1 << 16):
            raise ValueError("block_max_keys >= 2, tail_max_keys >= 1, byte bounds from 1 to 65535")
        self._max_keys = block_max_keys
        self._max_bytes = block_max_bytes
        self._tail_keys = tail_max_keys
        self._tail_bytes = tail_max_bytes
        # Block b: its fence (at most its smallest key, above every key of
        # block b-1), its sorted part's bytes and layout, its pending tail's
        # bytes and layout. Parallel lists: no object per block.
        self._fences: list[bytes] = []
        self._blobs: list[bytes] = []
        self._layouts: list[Layout] = []
        self._tails: list[bytes] = []
        self._tail_layouts: list[Layout] = []
        # Keys in the index, tails included, and their total length (so
        # that bytes_estimate is O(1): used_memory reads it before writes).
        self._keys = 0
        self._key_bytes = 0
        self.rebuild(keys)

    # --- whole-index operations (write lock) ---------------------------------

    def rebuild(self, keys: Iterable[bytes]) -> None:
        """Replace the contents with ``keys`` (distinct), sorted once, in
        full blocks."""
        ordered = sorted(keys)
        self._fences, self._blobs, self._layouts, self._tails, self._tail_layouts = [], [], [], [], []
        self._keys = len(ordered)
        self._key_bytes = sum(map(len, ordered))
        if ordered:
            self._place(0, 0, self._pack(ordered, full=True))

    def clear(self) -> None:
        self.rebuild(())

    def detach(self) -> list[list[Any]]:
        """Empty the index in O(1) and return its old storage (lists of
        packed keys) for the caller to free a chunk at a time without the
        lock (FLUSHALL's ``FreeSlices``)."""
        old: list[list[Any]] = [self._fences, self._blobs, self._layouts, self._tails, self._tail_layouts]
        self.rebuild(())
        return old

    # --- writes (write lock) -------------------------------------------------

    def add(self, key: bytes) -> None:
        """Add ``key``, which is not in the index: to its block's tail; a
        full tail is sorted into its block."""
        fences = self._fences
        b = bisect_right(fences, key) - 1
        self._keys += 1
        self._key_bytes += len(key)
        if b < 0:
            if not fences:
                self._place(0, 0, [_encode([key])])
                return
            b = 0
        tail, shape = self._tails[b], self._tail_layouts[b]
        size = len(key)
        if shape == size and size:  # the common case: a key as wide as the tail's
            tail += key
            count = len(tail) // size
        elif size > self._tail_bytes >> 2:  # a long key: straight into the block
            self._sort_tail(b, key)
            return
        elif type(shape) is int:
            if not shape:  # an empty tail
                count = 1
                shape = size if size else array("H", (0, 0))
            else:  # a key of another width: the tail gets offsets
                offsets = array("H", range(0, len(tail) + 1, shape))
                offsets.append(len(tail) + size)
                shape = offsets
                count = len(offsets) - 1
            tail += key
        else:
            offsets = shape  # type: ignore[assignment]
            offsets.append(len(tail) + size)
            count = len(offsets) - 1
            tail += key
        self._tails[b], self._tail_layouts[b] = tail, shape
        if count >= self._tail_keys or len(tail) >= self._tail_bytes:
            self._sort_tail(b)

    def discard(self, key: bytes) -> None:
        """Remove ``key`` if it is in the index."""
        fences = self._fences
        b = bisect_right(fences, key) - 1
        if b < 0:
            if not fences:
                return
            b = 0
        tail, shape = self._tails[b], self._tail_layouts[b]
        if type(shape) is int:
            if shape and len(key) == shape:
                width: int = shape
                at = tail.find(key)
                while at > 0 and at % width:
                    at = tail.find(key, at + 1)
                if at >= 0:
                    tail = tail[:at] + tail[at + width :]
                    self._tails[b], self._tail_layouts[b] = tail, (width if tail else 0)
                    self._keys -= 1
                    self._key_bytes -= len(key)
                    return
        else:
            pending = _all(tail, shape)
            if key in pending:
                pending.remove(key)
                self._tails[b], self._tail_layouts[b] = _encode(pending) if pending else (b"", 0)
                self._keys -= 1
                self._key_bytes -= len(key)
                return
        blob, layout = self._blobs[b], self._layouts[b]
        at = _search(blob, layout, key, False)
        if type(layout) is int:
            width = layout
            start = at * width
            if blob[start : start + width] != key:
                return
            blob = blob[:start] + blob[start + width :]
            count = len(blob) // width
        else:
            offsets: array[int] = layout  # type: ignore[assignment]
            if at >= len(offsets) - 1:
                return
            start, end = offsets[at], offsets[at + 1]
            if blob[start:end] != key:
                return
            blob = blob[:start] + blob[end:]
            layout = offsets[: at + 1] + _shifted(offsets[at + 2 :], start - end)
            count = len(layout) - 1
        self._keys -= 1
        self._key_bytes -= len(key)
        if not count:  # the sorted part is empty: its tail (if any) becomes it
            pending = _all(self._tails[b], self._tail_layouts[b])
            if pending:
                pending.sort()
                self._place(b, 1, self._pack(pending, full=False), keep_fence=True)
            else:
                del fences[b], self._blobs[b], self._layouts[b], self._tails[b], self._tail_layouts[b]
            return
        self._blobs[b], self._layouts[b] = blob, layout
        if count * 4 <= self._max_keys and len(blob) * 4 <= self._max_bytes and len(fences) > 1:
            self._join_neighbour(b)

    def _sort_tail(self, b: int, extra: bytes | None = None) -> None:
        """Sort block ``b``'s tail (and ``extra``) into its sorted part,
        splitting the block if it outgrows its bounds."""
        width = self._layouts[b]
        if extra is None and type(width) is int and self._tail_layouts[b] == width:
            # The common case, all keys of one width: no lengths to look at.
            keys = _decode(self._blobs[b], width, 0, len(self._blobs[b]) // width)
            keys += _decode(self._tails[b], width, 0, len(self._tails[b]) // width)
            keys.sort()
            per_block = max(1, min(self._max_keys, self._max_bytes // width))
            cap = -(-len(keys) // -(-len(keys) // per_block))  # as few blocks as fit, of even sizes
            join = b"".join
            self._place(b, 1, [(join(keys[at : at + cap]), width) for at in range(0, len(keys), cap)],
                        keep_fence=True)
            return
        keys = _all(self._blobs[b], self._layouts[b])
        keys += _all(self._tails[b], self._tail_layouts[b])
        if extra is not None:
            keys.append(extra)
        keys.sort()
        self._place(b, 1, self._pack(keys, full=False), keep_fence=True)

    def _join_neighbour(self, b: int) -> None:
        """Block ``b`` is a quarter full or less: join it with a neighbour
        (or share the two's keys evenly if they do not fit in one)."""
        if b + 1 == len(self._fences):
            b -= 1
        keys: list[bytes] = []
        for c in (b, b + 1):
            keys += _all(self._blobs[c], self._layouts[c])
            keys += _all(self._tails[c], self._tail_layouts[c])
        keys.sort()
        self._place(b, 2, self._pack(keys, full=False), keep_fence=True)

    def _pack(self, keys: list[bytes], full: bool) -> list[tuple[bytes, Layout]]:
        """``keys`` (sorted) as sorted parts within the bounds: as full as
        the bounds allow (``full``: a bulk load), else as few as the bounds
        allow, of even sizes (a split leaves room on both sides)."""
        max_keys, max_bytes = self._max_keys, self._max_bytes
        total = len(keys)
        if full:
            cap = max_keys
        else:
            blocks = max(-(-total // max_keys), -(-sum(map(len, keys)) // max_bytes))
            cap = -(-total // blocks)
        out: list[tuple[bytes, Layout]] = []
        at = 0
        while at < total:
            chunk = keys[at : at + cap]
            sizes = list(accumulate(map(len, chunk)))
            if sizes[-1] > max_bytes:
                chunk = chunk[: max(1, bisect_right(sizes, max_bytes))]
            out.append(_encode(chunk))
            at += len(chunk)
        return out

    def _place(self, b: int, replaced: int, blocks: list[tuple[bytes, Layout]], keep_fence: bool = False) -> None:
        """Blocks ``b:b+replaced`` become ``blocks`` (with empty tails).
        ``keep_fence``: the first keeps block ``b``'s fence (block 0's
        fence is always its smallest key)."""
        fences = [_decode(blob, layout, 0, 1)[0] for blob, layout in blocks]
        if keep_fence and b and fences:
            fences[0] = self._fences[b]
        self._fences[b : b + replaced] = fences
        self._blobs[b : b + replaced] = [blob for blob, _layout in blocks]
        self._layouts[b : b + replaced] = [layout for _blob, layout in blocks]
        self._tails[b : b + replaced] = [b""] * len(blocks)
        self._tail_layouts[b : b + replaced] = [0] * len(blocks)

    # --- reads (either lock; never mutate) -----------------------------------

    def __len__(self) -> int:
        return self._keys

    def __contains__(self, key: object) -> bool:
        return isinstance(key, bytes) and next(self.irange(key, key), None) is not None

    def irange(
        self,
        min_key: bytes | None,
        max_key: bytes | None,
        *,
        min_inclusive: bool = True,
        max_inclusive: bool = True,
        reverse: bool = False,
    ) -> Iterator[bytes]:
        """The keys from ``min_key`` to ``max_key`` in byte order (None: no
        bound on that side), backwards if ``reverse``. Valid only inside the
        lock hold that made it (see the module docstring)."""
        fences = self._fences
        if not fences:
            return iter(())
        first = 0 if min_key is None else max(0, bisect_right(fences, min_key) - 1)
        last = len(fences) - 1 if max_key is None else max(0, bisect_right(fences, max_key) - 1)
        if first > last:
            return iter(())
        bounds = (first, last, min_key, max_key, min_inclusive, max_inclusive)
        return self._walk(range(last, first - 1, -1) if reverse else range(first, last + 1), bounds, reverse)

    def _walk(self, blocks: range, bounds: _Bounds, reverse: bool) -> Iterator[bytes]:
        keys_of = self._keys_of
        for b in blocks:
            keys = keys_of(b, bounds)
            if reverse:
                keys.reverse()
            yield from keys

    def _keys_of(self, b: int, bounds: _Bounds) -> list[bytes]:
        """Block ``b``'s keys within ``bounds``, sorted: its sorted part's
        slice, and its tail's keys in range sorted in."""
        first, last, min_key, max_key, min_inclusive, max_inclusive = bounds
        blob, layout = self._blobs[b], self._layouts[b]
        low = _search(blob, layout, min_key, not min_inclusive) if b == first and min_key is not None else 0
        if b == last and max_key is not None:
            high = _search(blob, layout, max_key, max_inclusive)
        else:
            high = _block_len(blob, layout)
        keys = _decode(blob, layout, low, high) if low < high else []
        shape = self._tail_layouts[b]
        if shape != 0:
            pending = _all(self._tails[b], shape)
            if b == first and min_key is not None:
                if min_inclusive:
                    pending = [key for key in pending if key >= min_key]
                else:
                    pending = [key for key in pending if key > min_key]
            if b == last and max_key is not None:
                if max_inclusive:
                    pending = [key for key in pending if key <= max_key]
                else:
                    pending = [key for key in pending if key < max_key]
            if pending:
                keys += pending
                keys.sort()
        return keys

    def bytes_estimate(self) -> int:
        """What the index costs, its copy of the keys included (INFO
        sorted_index_bytes, used_memory): the keys' bytes plus a measured
        cost per block (O(1): read before every write under --maxmemory).
        ``bytes_measured`` walks the blocks for the exact figure."""
        return self._key_bytes + len(self._fences) * BLOCK_OVERHEAD_BYTES

    def bytes_measured(self) -> int:
        """The blocks' objects and the lists' slots, summed (O(blocks))."""
        size = sys.getsizeof
        total = sum(map(size, self._fences)) + sum(map(size, self._blobs)) + sum(map(size, self._tails))
        total += sum(size(layout) for layout in self._layouts if type(layout) is not int)
        total += sum(size(layout) for layout in self._tail_layouts if type(layout) is not int)
        lists = (self._fences, self._blobs, self._layouts, self._tails, self._tail_layouts)
        return total + sum(map(size, lists))


# Either ordered index: the keyspace and readers use only the interface both
# offer (add, discard, irange, rebuild, clear, detach, len, in,
# bytes_estimate).
KeyIndex = Union[SortedKeyIndex, SharedKeyIndex]


def index_for_table(table: str) -> KeyIndex:
    """The ordered index that costs least beside the keyspace's table: the
    object table's keys are ``bytes`` objects a SortedList can share (about
    9 bytes a key); the packed table keeps none, so the index packs its own
    copy (about 17 bytes a key, where a SortedList would cost about 65)."""
    return SortedKeyIndex() if table == "compact" else SharedKeyIndex()

