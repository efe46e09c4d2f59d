"""``SortedKeyIndex``: every stored key in byte order, beside the hash table.

The hash table answers "this key's value" in O(1) but keeps keys in hash
order; ordered reads (KRANGE, the line protocol's RANGE and ``KEYS prefix``,
HTTP ``/range``, snapshot ranges, the library's ``scan``) walk this index
instead. It keeps its own packed copy of the keys (the table packs its
keys too, so there are no per-key objects to share), in two parts:

* **Blocks**: runs of consecutive keys, each one immutable ``bytes`` of the
  keys concatenated, plus either the keys' width (every key of the block
  has the same length: the offsets are implicit) or an ``array('H')`` of
  offsets; a list of the blocks' first keys finds a key's block with the C
  ``bisect``, a binary search of slices finds its place in the block. A
  block holds at most ``block_max_keys`` keys and ``block_max_bytes`` bytes
  (a longer key has a block to itself); it splits in two past either and
  merges with a neighbour at a quarter of both or under. For 16-byte keys that is
  about 17 bytes a key, the key bytes included (bench/sorted_index_bench.py).
* **Pending**: new keys not placed in a block yet, a small sorted list
  (``bisect.insort``, at most ``pending_max`` keys, default
  ``PENDING_MAX_KEYS``). When it is full, it is merged into the blocks in
  one pass in key order, so keys that land in the same block (a run of
  increasing keys, say) rewrite it once for all of them. A removed key
  leaves its block at once (a splice of the block's bytes), so readers
  never have to filter removed keys.

Rules kept here:

* **Exactly the keys of the value table.** The keyspace keeps it
  (``Keyspace.attach_sorted_index``): it adds a key wherever a key enters
  the value table and discards it wherever one leaves it (delete, expiry
  lazy or by the sweep, RENAME, a value left empty, FLUSHALL, a replay),
  the same points that move the per-slot counts. That is where every
  mutation path meets, the paths the effects sink deliberately does not
  report (expiry) included, and an overwrite costs nothing. So
  ``len(index) == DBSIZE`` at every lock release (the pending keys count),
  and, like DBSIZE, the index holds a key whose time ran out until it is
  removed: readers skip such keys (``Keyspace.is_expired_key``). In
  cluster mode a tombstone is not a key (the keyspace holds only live
  winners; tombstones live in ``store/versions.py``), so it is never in the
  index.
* **Locks are the keyspace's.** Mutated only under the store's write lock
  (by the keyspace), read under either lock. Readers never mutate: ``irange``
  merges the pending keys into the blocks' keys on the fly (the pending
  list is sorted, so that is a bisect and a per-block merge). An iterator
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
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator
from itertools import accumulate
from typing import Union

# Keys a block holds at most: a new key's place in a block takes log2 of
# this many slice compares (Python steps, ~0.1 us each), and a block's
# per-block cost (its first key, its bytes object, list slots: ~110 bytes)
# is shared by this many keys.
BLOCK_MAX_KEYS = 128
# Bytes of keys a block holds at most (a single longer key gets a block to
# itself): bounds the copy a splice makes, and keeps every offset of a
# block of several keys under 65,536 (an ``array('H')``).
BLOCK_MAX_BYTES = 4096
# New keys held sorted before they are merged into the blocks: an add is a
# bisect and a short memmove; a reader's cost is a bisect; the merge's
# pause, once per this many new keys, is this many placements (~0.3 ms).
PENDING_MAX_KEYS = 256

# A block's layout: the width of each of its keys (all of one length, at
# least 1), or the offsets of its keys (len = keys + 1).
Layout = Union[int, "array[int]"]

_ONE_LANE = (1).to_bytes(2, sys.byteorder)


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
    return len(blob) // layout if type(layout) is int else len(layout) - 1  # type: ignore[arg-type]


def _decode(blob: bytes, layout: Layout, start: int, stop: int) -> list[bytes]:
    """The keys ``start:stop`` of a block, as new ``bytes``."""
    if type(layout) is int:
        width: int = layout
        return [blob[at : at + width] for at in range(start * width, stop * width, width)]
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
    """One block of ``keys`` (sorted, at least one)."""
    lengths = list(map(len, keys))
    width = lengths[0]
    if width and min(lengths) == max(lengths):
        return b"".join(keys), width
    return b"".join(keys), array("H", accumulate(lengths, initial=0))


class SortedKeyIndex:
    """See the module docstring."""

    __slots__ = ("_firsts", "_blobs", "_layouts", "_block_keys", "_pending", "_max_keys", "_max_bytes",
                 "_pending_max")

    def __init__(
        self, keys: Iterable[bytes] = (), *, block_max_keys: int = BLOCK_MAX_KEYS,
        block_max_bytes: int = BLOCK_MAX_BYTES, pending_max: int = PENDING_MAX_KEYS,
    ) -> None:
        if not 2 <= block_max_keys or not 1 <= block_max_bytes < 1 << 16 or pending_max < 1:
            raise ValueError("block_max_keys >= 2, 1 <= block_max_bytes < 65536 and pending_max >= 1")
        self._max_keys = block_max_keys
        self._max_bytes = block_max_bytes
        self._pending_max = pending_max
        # Block b: its first key, its keys' bytes, its layout (the width of
        # its keys, or their offsets). Parallel lists: no object per block.
        self._firsts: list[bytes] = []
        self._blobs: list[bytes] = []
        self._layouts: list[Layout] = []
        # Keys in the blocks (the pending ones are len(_pending)).
        self._block_keys = 0
        # New keys not merged into the blocks yet, sorted (PENDING_MAX_KEYS).
        self._pending: list[bytes] = []
        self.rebuild(keys)

    # --- whole-index operations (write lock) ---------------------------------

    def rebuild(self, keys: Iterable[bytes]) -> None:
        """Replace the contents with ``keys`` (distinct), sorted once, in
        full blocks."""
        ordered = sorted(keys)
        self._firsts, self._blobs, self._layouts = [], [], []
        self._pending = []
        self._block_keys = 0
        if ordered:
            self._place(0, 0, self._pack(ordered, full=True))
            self._block_keys = len(ordered)

    def clear(self) -> None:
        self.rebuild(())

    def detach(self) -> list[list[object]]:
        """Empty the index in O(1) and return its old storage (lists of
        keys' bytes) for the caller to free a chunk at a time without the
        lock (FLUSHALL's ``FreeSlices``): at a million keys the blocks are
        ~8,000 objects of each kind, not worth a pause, but no reason to
        free them under the lock either."""
        old: list[list[object]] = [self._firsts, self._blobs, self._layouts, self._pending]  # type: ignore[list-item]
        self.rebuild(())
        return old

    # --- writes (write lock) -------------------------------------------------

    def add(self, key: bytes) -> None:
        """Add ``key``, which is not in the index: into the pending list;
        a full one is merged into the blocks."""
        pending = self._pending
        insort(pending, key)
        if len(pending) >= self._pending_max:
            self._merge_pending()

    def discard(self, key: bytes) -> None:
        """Remove ``key`` if it is in the index."""
        pending = self._pending
        at = bisect_left(pending, key)
        if at < len(pending) and pending[at] == key:
            del pending[at]
            return
        firsts = self._firsts
        b = bisect_right(firsts, key) - 1
        if b < 0:
            return
        blob, layout = self._blobs[b], self._layouts[b]
        at = _search(blob, layout, key, False)
        if type(layout) is int:
            width: int = layout
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
        self._block_keys -= 1
        if not count:
            del firsts[b], self._blobs[b], self._layouts[b]
            return
        self._blobs[b], self._layouts[b] = blob, layout
        if at == 0:
            firsts[b] = _decode(blob, layout, 0, 1)[0]
        if count * 4 <= self._max_keys and len(blob) * 4 <= self._max_bytes and len(firsts) > 1:
            self._join_neighbour(b)

    def _merge_pending(self) -> None:
        """Move every pending key into its block, in key order: each block
        gets its keys in one rewrite (a splice per key when they are few,
        else a decode, sort and re-encode)."""
        pending = self._pending
        firsts = self._firsts
        total = len(pending)
        at = 0
        while at < total:
            b = bisect_right(firsts, pending[at]) - 1
            if b < 0:
                b = 0
            end = bisect_left(pending, firsts[b + 1], at) if b + 1 < len(firsts) else total
            self._insert_into_block(b, pending, at, end)
            at = end
        self._block_keys += total
        pending.clear()

    def _insert_into_block(self, b: int, keys: list[bytes], start: int, stop: int) -> None:
        """Put ``keys[start:stop]`` (sorted, all in block ``b``'s span, or
        no block yet) into block ``b``, splitting it if it outgrows its
        bounds."""
        if not self._blobs:
            self._place(0, 0, self._pack(keys[start:stop], full=True))
            return
        blob, layout = self._blobs[b], self._layouts[b]
        count = _block_len(blob, layout)
        new = stop - start
        # A splice copies the block per key; a re-encode decodes every key.
        splice = new == 1 or new * 8 <= count
        if type(layout) is int and splice:
            width: int = layout
            pieces: list[bytes] = []
            copied = position = 0
            for index in range(start, stop):
                key = keys[index]
                if len(key) != width:
                    break
                position = _search(blob, width, key, False, position)
                pieces.append(blob[copied * width : position * width])
                pieces.append(key)
                copied = position
            else:
                pieces.append(blob[copied * width :])
                blob = b"".join(pieces)
                self._store_block(b, blob, width, keys[start])
                return
        elif type(layout) is not int and splice and len(blob) + sum(map(len, keys[start:stop])) < 1 << 16:
            offsets: array[int] = layout  # type: ignore[assignment]
            position = 0
            for index in range(start, stop):
                key = keys[index]
                position = _search(blob, offsets, key, False, position)
                begin = offsets[position]
                blob = b"".join((blob[:begin], key, blob[begin:]))
                offsets = offsets[: position + 1] + _shifted(offsets[position:], len(key))
                position += 1
            self._store_block(b, blob, offsets, keys[start])
            return
        merged = _decode(blob, layout, 0, count)
        merged += keys[start:stop]
        merged.sort()
        self._place(b, 1, self._pack(merged, full=False))

    def _store_block(self, b: int, blob: bytes, layout: Layout, smallest_new: bytes) -> None:
        """Block ``b`` is now ``blob``/``layout`` (keys were spliced in,
        the smallest ``smallest_new``); split it if it outgrew its bounds."""
        if smallest_new < self._firsts[b]:
            self._firsts[b] = smallest_new
        count = _block_len(blob, layout)
        if count > self._max_keys or (len(blob) > self._max_bytes and count > 1):
            self._place(b, 1, self._pack(_decode(blob, layout, 0, count), full=False))
        else:
            self._blobs[b], self._layouts[b] = blob, layout

    def _join_neighbour(self, b: int) -> None:
        """Block ``b`` is a quarter full or less: merge it with a neighbour
        (or share the two's keys evenly if they do not fit in one)."""
        if b + 1 == len(self._firsts):
            b -= 1
        keys = _decode(self._blobs[b], self._layouts[b], 0, _block_len(self._blobs[b], self._layouts[b]))
        keys += _decode(self._blobs[b + 1], self._layouts[b + 1], 0,
                        _block_len(self._blobs[b + 1], self._layouts[b + 1]))
        self._place(b, 2, self._pack(keys, full=False))

    def _pack(self, keys: list[bytes], full: bool) -> list[tuple[bytes, Layout]]:
        """``keys`` (sorted) as blocks within the bounds: as full as the
        bounds allow (``full``: a bulk load), else as few blocks as the
        bounds allow, of even sizes (a split leaves room on both sides)."""
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

    def _place(self, b: int, replaced: int, blocks: list[tuple[bytes, Layout]]) -> None:
        """Blocks ``b:b+replaced`` become ``blocks``."""
        self._firsts[b : b + replaced] = [_decode(blob, layout, 0, 1)[0] for blob, layout in blocks]
        self._blobs[b : b + replaced] = [blob for blob, _layout in blocks]
        self._layouts[b : b + replaced] = [layout for _blob, layout in blocks]

    # --- reads (either lock; never mutate) -----------------------------------

    def __len__(self) -> int:
        return self._block_keys + len(self._pending)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, bytes):
            return False
        pending = self._pending
        at = bisect_left(pending, key)
        if at < len(pending) and pending[at] == key:
            return True
        b = bisect_right(self._firsts, key) - 1
        if b < 0:
            return False
        blob, layout = self._blobs[b], self._layouts[b]
        at = _search(blob, layout, key, False)
        return at < _block_len(blob, layout) and _decode(blob, layout, at, at + 1)[0] == key

    def _locate(self, key: bytes, after: bool) -> tuple[int, int]:
        """The position (block, index in it) of the first block key above
        ``key`` (``after``) or at or above it."""
        b = bisect_right(self._firsts, key) - 1
        if b < 0:
            return 0, 0
        return b, _search(self._blobs[b], self._layouts[b], key, after)

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
        pending = self._pending
        low = 0 if min_key is None else (bisect_left if min_inclusive else bisect_right)(pending, min_key)
        high = len(pending) if max_key is None else (bisect_right if max_inclusive else bisect_left)(pending, max_key)
        extra = pending[low:high] if low < high else []
        blocks = len(self._firsts)
        if not blocks:
            return reversed(extra) if reverse else iter(extra)
        first = (0, 0) if min_key is None else self._locate(min_key, not min_inclusive)
        if max_key is None:
            last = blocks - 1, _block_len(self._blobs[-1], self._layouts[-1])
        else:
            last = self._locate(max_key, max_inclusive)
        if first >= last:
            return reversed(extra) if reverse else iter(extra)
        if reverse:
            return self._walk_down(first, last, extra)
        return self._walk_up(first, last, extra)

    def _walk_up(self, first: tuple[int, int], last: tuple[int, int], extra: list[bytes]) -> Iterator[bytes]:
        firsts, blobs, layouts = self._firsts, self._blobs, self._layouts
        blocks = len(firsts)
        (b, start), (last_b, last_stop) = first, last
        taken, pending_keys = 0, len(extra)
        while b <= last_b:
            stop = last_stop if b == last_b else _block_len(blobs[b], layouts[b])
            keys = _decode(blobs[b], layouts[b], start, stop)
            if taken < pending_keys:
                # The pending keys of this block's span: below the next block's first key.
                until = bisect_left(extra, firsts[b + 1], taken) if b + 1 < blocks else pending_keys
                if until > taken:
                    keys += extra[taken:until]
                    keys.sort()
                    taken = until
            yield from keys
            b, start = b + 1, 0

    def _walk_down(self, first: tuple[int, int], last: tuple[int, int], extra: list[bytes]) -> Iterator[bytes]:
        firsts, blobs, layouts = self._firsts, self._blobs, self._layouts
        (first_b, first_start), (b, stop) = first, last
        untaken = len(extra)
        while b >= first_b:
            start = first_start if b == first_b else 0
            keys = _decode(blobs[b], layouts[b], start, stop)
            if untaken:
                # The pending keys of this block's span: at or above its first key.
                since = bisect_left(extra, firsts[b], 0, untaken) if b > first_b else 0
                if since < untaken:
                    keys += extra[since:untaken]
                    keys.sort()
                    untaken = since
            keys.reverse()
            yield from keys
            b -= 1
            if b >= 0:
                stop = _block_len(blobs[b], layouts[b])

    def bytes_estimate(self) -> int:
        """What the index costs, its copy of the keys included (INFO
        sorted_index_bytes): the blocks' objects and list slots, and the
        pending keys'."""
        size = sys.getsizeof
        total = sum(map(size, self._blobs)) + sum(map(size, self._firsts)) + sum(map(size, self._pending))
        total += sum(size(layout) for layout in self._layouts if type(layout) is not int)
        lists = (self._firsts, self._blobs, self._layouts, self._pending)
        return total + sum(map(size, lists))
