"""``SortedKeyIndex`` itself against a sorted-list model: a hypothesis state
machine over add/discard/rebuild/clear/detach with tiny block and pending
bounds (2-12 keys, 8-200 bytes a block, 1-6 pending keys), so every path of
the structure runs many times a test: pending merges that splice a key into
a block of one width or of offsets, merges that re-encode a block, splits,
blocks joined with a neighbour, a key longer than a block alone in one,
the empty key, a block's first key removed.

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

from trio_kv.store.sorted_index import SortedKeyIndex, _block_len, _decode

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
        max_keys=st.integers(2, 12), max_bytes=st.sampled_from([8, 20, 64, 200]), pending=st.integers(1, 6),
        keys=st.lists(KEYS, max_size=40, unique=True),
    )
    def start(self, max_keys: int, max_bytes: int, pending: int, keys: list[bytes]) -> None:
        self.index = SortedKeyIndex(keys, block_max_keys=max_keys, block_max_bytes=max_bytes, pending_max=pending)
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
        firsts, blobs, layouts = index._firsts, index._blobs, index._layouts
        assert len(firsts) == len(blobs) == len(layouts)
        in_blocks: list[bytes] = []
        for first, blob, layout in zip(firsts, blobs, layouts):
            count = _block_len(blob, layout)
            keys = _decode(blob, layout, 0, count)
            assert count >= 1 and keys[0] == first
            if type(layout) is int:
                assert layout >= 1 and len(blob) == layout * count
            else:
                assert layout[0] == 0 and layout[-1] == len(blob) and list(layout) == sorted(layout)
            assert count <= index._max_keys
            assert len(blob) <= index._max_bytes or count == 1
            in_blocks += keys
        assert in_blocks == sorted(set(in_blocks)) and index._block_keys == len(in_blocks)
        pending = index._pending
        assert pending == sorted(set(pending)) and len(pending) < index._pending_max
        assert not set(pending) & set(in_blocks)
        assert index.bytes_estimate() >= sum(map(len, self.model))


SortedIndexBlocks.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
TestSortedIndexBlocks = SortedIndexBlocks.TestCase
