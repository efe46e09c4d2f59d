"""Tictac trees (cluster/tictac.py), with hypothesis: a tree kept by O(1)
updates equals the tree rebuilt from scratch, does not depend on the order
of changes, and two trees' comparison finds exactly the segments (and the
keys) whose contents differ; the version digest names the logical
versions, not their bytes."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from trio_kv.cluster import dvvset
from trio_kv.cluster.dvvset import Version
from trio_kv.cluster.tictac import (
    SEGMENT_COUNT,
    TictacTree,
    differing_keys,
    differing_segments,
    entry_hash,
    pack_hashes,
    segment_of,
    stored_entry_hash,
    unpack_hashes,
    version_digest,
)

from .test_dvvset import clocks_of_one_history

# Few distinct keys, so changes hit the same keys and segments again.
keys = st.binary(min_size=0, max_size=6)
digests = st.binary(min_size=1, max_size=4)
# A change: put (key, digest), or remove key (digest None).
changes = st.lists(st.tuples(keys, st.none() | digests), max_size=60)


def built(contents: dict[bytes, bytes], order: list[bytes] | None = None) -> TictacTree:
    tree = TictacTree()
    for key in sorted(contents) if order is None else order:
        tree.put(key, segment_of(key), entry_hash(key, contents[key]))
    return tree


def apply_changes(tree: TictacTree, steps: list[tuple[bytes, bytes | None]]) -> dict[bytes, bytes]:
    model: dict[bytes, bytes] = {}
    for key, digest in steps:
        if digest is None:
            tree.remove(key, segment_of(key))
            model.pop(key, None)
        else:
            tree.put(key, segment_of(key), entry_hash(key, digest))
            model[key] = digest
    return model


def same(a: TictacTree, b: TictacTree) -> bool:
    return (
        a.root == b.root and a.segments == b.segments and a.key_count == b.key_count
        and sorted(a.entries(range(SEGMENT_COUNT))) == sorted(b.entries(range(SEGMENT_COUNT)))
    )


@given(changes)
def test_incremental_updates_equal_a_rebuild_from_scratch(steps: list[tuple[bytes, bytes | None]]) -> None:
    tree = TictacTree()
    model = apply_changes(tree, steps)
    assert same(tree, built(model))
    root = 0
    for segment in tree.segments:
        root ^= segment
    assert tree.root == root


@given(st.dictionaries(keys, digests, max_size=40), st.randoms(use_true_random=False))
def test_a_tree_does_not_depend_on_the_order_of_its_keys(contents: dict[bytes, bytes], rng: random.Random) -> None:
    order = list(contents)
    rng.shuffle(order)
    assert same(built(contents, order), built(contents))


@given(changes, changes)
def test_two_histories_to_the_same_contents_give_the_same_tree(
    first: list[tuple[bytes, bytes | None]], second: list[tuple[bytes, bytes | None]],
) -> None:
    # Replay the first history's final contents after the second history:
    # whatever the second did, removing its leftovers and putting the first's
    # contents ends in the first's tree.
    a = TictacTree()
    contents = apply_changes(a, first)
    b = TictacTree()
    leftovers = apply_changes(b, second)
    for key in leftovers.keys() - contents.keys():
        b.remove(key, segment_of(key))
    for key, digest in contents.items():
        b.put(key, segment_of(key), entry_hash(key, digest))
    assert same(a, b)


@given(st.dictionaries(keys, digests, max_size=40), st.dictionaries(keys, digests, max_size=40))
def test_comparison_finds_exactly_the_segments_and_keys_that_differ(
    mine: dict[bytes, bytes], theirs: dict[bytes, bytes],
) -> None:
    a, b = built(mine), built(theirs)
    differ = sorted(key for key in mine.keys() | theirs.keys() if mine.get(key) != theirs.get(key))
    # A segment differs when a key in it differs (a 2**-64 chance of
    # differing entries cancelling out is not drawn by these small trees).
    assert differing_segments(a.segments, b.segments) == sorted({segment_of(key) for key in differ})
    assert (a.root == b.root) == (not differ)
    segments = differing_segments(a.segments, b.segments)
    assert differing_keys(a.entries(segments), b.entries(segments)) == differ


@given(st.lists(st.integers(0, 2**64 - 1), max_size=SEGMENT_COUNT + 3))
def test_hashes_round_trip_through_their_wire_form(hashes: list[int]) -> None:
    assert unpack_hashes(pack_hashes(hashes)) == hashes


def _payloads_changed(clock: dvvset.Clock) -> dvvset.Clock:
    return dvvset.map_values(clock, lambda value: value._replace(payload=b"other bytes " + value.payload))


@given(clocks_of_one_history(2))
def test_the_version_digest_names_the_versions_not_their_bytes(clocks: list[dvvset.Clock]) -> None:
    a, b = clocks
    packed = dvvset.encode(a)
    digest = version_digest(packed)
    # The same versions in other bytes (payloads held or copied out): the same digest.
    assert version_digest(dvvset.encode(_payloads_changed(a))) == digest
    # At an offset (the store's header byte before the packed clock).
    assert version_digest(b"\x81" + packed, 1) == digest
    # Different versions: a different digest. Within one history, a dot
    # names one write, so equal clocks are equal entries.
    assert (version_digest(dvvset.encode(b)) == digest) == (a == b)
    # The store's one-step form gives the same entry hash (its fast path included).
    assert stored_entry_hash(b"key", b"\x81" + packed, 1) == entry_hash(b"key", digest)
    assert stored_entry_hash(b"key", packed) == entry_hash(b"key", digest)


def test_the_one_step_entry_hash_covers_long_counters() -> None:
    actor = b"n" * 20
    for counter in (1, 127, 128, 300, 2**40):
        clock = dvvset.Clock((dvvset.Entry(actor, counter, (Version(5, actor, b"p"),)),))
        packed = dvvset.encode(clock)
        assert stored_entry_hash(b"k", packed) == entry_hash(b"k", version_digest(packed))


def test_a_clock_with_anonymous_values_has_no_digest() -> None:
    client = dvvset.new(Version(1, b"a", b"x"))
    try:
        version_digest(dvvset.encode(client))
    except ValueError:
        return
    raise AssertionError("anonymous values were digested")


def test_the_hashes_are_the_same_in_every_process() -> None:
    # Fixed values (CRC-32 and BLAKE2b, never Python's per-process hash()):
    # two nodes, or one node before and after a restart, agree.
    assert segment_of(b"key:1") == 1004
    assert entry_hash(b"key:1", b"\x01a\x01\x01") == 0xD1E3E4759DDC584A
