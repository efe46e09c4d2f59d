"""``SortedKeyIndex`` itself against a sorted-list model: a hypothesis state
machine over add/discard/rebuild/clear/detach with tiny block and pending
bounds (2-12 keys, 8-200 bytes a block, tails of 1-6 keys and 4-64 bytes), so every path of
the structure runs many times a test: tails of one width or of offsets,
full tails sorted into their blocks, splits, blocks joined with a
neighbour, a sorted part emptied while its tail is not, a key longer than
a block alone in one, the empty key, keys below the first block's fence.

Invariants after every step: the whole walk up and down is the sorted
model, ``len`` and ``in`` agree with it, and the blocks are well formed
(sorted, first keys right, within their bounds, the count right). Rules
read ranges with every kind of bound (none, inclusive, exclusive, on a key
or between keys) both ways, and page through the index resuming after the
last key returned, exclusive."""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from trio_kv.store.sorted_index import SortedKeyIndex, _all

# Keys of one width (blocks with implicit offsets), short keys of any
# length (blocks with offsets, the empty key), and a few keys longer than
# any block bound below (a block to themselves).
KEYS = (
    st.integers(0, 120).map(lambda n: b"%03d" % n)
    | st.binary(max_size=3)
    | st.integers(0, 3).map(lambda n: b"L" * (70 + n))
)
BOUND = st.none() | KEYS


class SortedIndexBlocks(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.model: set[bytes] = set()
        self.index = SortedKeyIndex()

    @initialize(
        max_keys=st.integers(2, 12), max_bytes=st.sampled_from([8, 20, 64, 200]), tail_keys=st.integers(1, 6),
        tail_bytes=st.sampled_from([4, 16, 64]), keys=st.lists(KEYS, max_size=40, unique=True),
    )
    def start(self, max_keys: int, max_bytes: int, tail_keys: int, tail_bytes: int, keys: list[bytes]) -> None:
        self.index = SortedKeyIndex(keys, block_max_keys=max_keys, block_max_bytes=max_bytes,
                                    tail_max_keys=tail_keys, tail_max_bytes=tail_bytes)
        self.model = set(keys)

    @rule(key=KEYS)
    def add(self, key: bytes) -> None:
        if key not in self.model:  # add's contract: a key not in the index
            self.index.add(key)
            self.model.add(key)

    @rule(keys=st.lists(KEYS, max_size=30))
    def add_many(self, keys: list[bytes]) -> None:
        for key in keys:
            self.add(key)

    @rule(first=st.integers(0, 999), count=st.integers(1, 40))
    def add_a_run(self, first: int, count: int) -> None:
        """Increasing keys: a merge puts many pending keys into one block."""
        for number in range(first, first + count):
            self.add(b"r%04d" % number)

    @rule(key=KEYS)
    def discard(self, key: bytes) -> None:
        self.index.discard(key)
        self.model.discard(key)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def discard_many(self, data: st.DataObject) -> None:
        present = sorted(self.model)
        start = data.draw(st.integers(0, len(present) - 1))
        for key in present[start : start + data.draw(st.integers(1, 30))]:
            self.index.discard(key)
            self.model.discard(key)

    @rule(keys=st.lists(KEYS, max_size=60, unique=True))
    def rebuild(self, keys: list[bytes]) -> None:
        self.index.rebuild(iter(keys))
        self.model = set(keys)

    @rule()
    def clear(self) -> None:
        self.index.clear()
        self.model.clear()

    @rule()
    def detach(self) -> None:
        old = self.index.detach()
        assert isinstance(old, list) and all(isinstance(part, list) for part in old)
        self.model.clear()

    @rule(low=BOUND, high=BOUND, low_inclusive=st.booleans(), high_inclusive=st.booleans(), reverse=st.booleans())
    def irange(self, low: bytes | None, high: bytes | None, low_inclusive: bool, high_inclusive: bool,
               reverse: bool) -> None:
        ordered = sorted(self.model)
        start = 0 if low is None else (bisect_left if low_inclusive else bisect_right)(ordered, low)
        stop = len(ordered) if high is None else (bisect_right if high_inclusive else bisect_left)(ordered, high)
        expected = ordered[start:stop]
        got = list(self.index.irange(low, high, min_inclusive=low_inclusive, max_inclusive=high_inclusive,
                                     reverse=reverse))
        assert got == (expected[::-1] if reverse else expected)

    @rule(page=st.integers(1, 7), reverse=st.booleans())
    def page_through(self, page: int, reverse: bool) -> None:
        """Pages of ``page`` keys, each a new irange after the last key, exclusive."""
        seen: list[bytes] = []
        last: bytes | None = None
        while True:
            if reverse:
                walk = self.index.irange(None, last, max_inclusive=last is None, reverse=True)
            else:
                walk = self.index.irange(last, None, min_inclusive=last is None)
            keys = [key for _, key in zip(range(page), walk)]
            seen += keys
            if len(keys) < page:
                break
            last = keys[-1]
        assert seen == sorted(self.model, reverse=reverse)

    @rule(key=KEYS)
    def contains(self, key: bytes) -> None:
        assert (key in self.index) == (key in self.model)

    @invariant()
    def walks_and_counts_match(self) -> None:
        ordered = sorted(self.model)
        assert list(self.index.irange(None, None)) == ordered
        assert list(self.index.irange(None, None, reverse=True)) == ordered[::-1]
        assert len(self.index) == len(ordered)

    @invariant()
    def blocks_are_well_formed(self) -> None:
        index = self.index
        fences, blobs, layouts = index._fences, index._blobs, index._layouts
        tails, tail_layouts = index._tails, index._tail_layouts
        assert len(fences) == len(blobs) == len(layouts) == len(tails) == len(tail_layouts)
        every: list[bytes] = []
        for b, (fence, blob, layout, tail, tail_layout) in enumerate(zip(fences, blobs, layouts, tails, tail_layouts)):
            keys = _all(blob, layout)
            assert keys == sorted(set(keys)) and keys, "a sorted part is sorted and never empty"
            if type(layout) is int:
                assert layout >= 1 and len(blob) == layout * len(keys)
            else:
                assert layout[0] == 0 and layout[-1] == len(blob) and list(layout) == sorted(layout)
            assert len(keys) <= index._max_keys
            assert len(blob) <= index._max_bytes or len(keys) == 1
            pending = _all(tail, tail_layout)
            assert (tail_layout == 0) == (not pending) and len(pending) < index._tail_keys
            assert len(tail) < index._tail_bytes
            mine = sorted(keys + pending)
            assert every == [] or every[-1] < mine[0], "blocks in key order"
            if b:
                assert every[-1] < fence <= mine[0], "the fence parts block b-1 from block b"
            every += mine
        assert len(every) == len(set(every)) == len(index)
        assert index._key_bytes == sum(map(len, self.model)), "the O(1) estimate's running total"
        assert index.bytes_estimate() >= sum(map(len, self.model))
        assert index.bytes_measured() >= sum(map(len, self.model))


SortedIndexBlocks.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
TestSortedIndexBlocks = SortedIndexBlocks.TestCase
