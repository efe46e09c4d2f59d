"""``SortedKeyIndex`` cases the state machine
(tests/property/test_sorted_index_blocks_model.py) reaches only rarely: a
key found inside a tail across two keys' boundary, a long key beside short
ones, the empty key, and the bounds' validation."""

from __future__ import annotations

import random

import pytest

from trio_kv.store.sorted_index import SortedKeyIndex


def test_a_removed_key_is_matched_only_at_a_key_boundary_of_its_tail() -> None:
    index = SortedKeyIndex([b"000"], tail_max_keys=10, tail_max_bytes=100)
    index.add(b"001")
    index.add(b"100")  # the tail holds b"001100": b"110" occurs at byte 2, inside two keys
    index.discard(b"110")
    assert len(index) == 3 and list(index.irange(None, None)) == [b"000", b"001", b"100"]
    index.discard(b"100")
    assert list(index.irange(None, None)) == [b"000", b"001"] and b"100" not in index and b"001" in index


def test_long_short_and_empty_keys_together() -> None:
    long_key = b"x" * 70_000  # longer than a block may be: a block of its own
    index = SortedKeyIndex(block_max_keys=4, tail_max_keys=2)
    for key in (b"b", long_key, b"", b"a", b"y", b"c" * 300):
        index.add(key)
    expected = sorted([b"b", long_key, b"", b"a", b"y", b"c" * 300])
    assert list(index.irange(None, None)) == expected
    assert list(index.irange(b"", b"b", min_inclusive=False, reverse=True)) == [b"b", b"a"]
    for key in expected:
        assert key in index
        index.discard(key)
    assert len(index) == 0 and list(index.irange(None, None)) == []


@pytest.mark.parametrize("bounds", [{"block_max_keys": 1}, {"block_max_bytes": 65536}, {"tail_max_keys": 0}])
def test_bounds_are_checked(bounds: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        SortedKeyIndex(**bounds)


def test_default_bounds_against_a_sorted_list() -> None:
    """Blocks of the default size (chunked decoding, full tails, splits,
    joins) against a sorted list, through random adds, discards and walks."""
    rng = random.Random(12)
    model = sorted({b"k:%06d" % rng.randrange(20_000) for _ in range(5_000)})
    index = SortedKeyIndex(model)
    present = set(model)
    for step in range(30_000):
        key = b"k:%06d" % rng.randrange(20_000) if step % 7 else b"v%d" % rng.randrange(10**4)
        if key in present:
            index.discard(key)
            present.discard(key)
        else:
            index.add(key)
            present.add(key)
        if step % 1_000 == 0:
            model = sorted(present)
            assert list(index.irange(None, None)) == model and len(index) == len(model)
            low, high = sorted(rng.sample(model, 2))
            assert list(index.irange(low, high, min_inclusive=False, reverse=True)) == \
                [key for key in reversed(model) if low < key <= high]
