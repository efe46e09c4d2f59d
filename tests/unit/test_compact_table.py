"""The compact table's own rules (the rules it shares with HashTable are
tested on both tables in test_hashtable.py and the hypothesis model):
values of every kind round-trip (inline, as ints, as objects with their
identity), long keys, in-place overwrites, holes reclaimed by compaction,
finished resizes released over later writes or idle steps, detach, the
arena limit, and access stamps."""

from __future__ import annotations

from typing import Any

import pytest

from trio_kv.store import compact_table
from trio_kv.store.compact_table import CHUNK_BYTES, INLINE_VALUE_MAX_BYTES, CompactTable
from trio_kv.store.growable import Growable


def key(i: int) -> bytes:
    return b"key:%012d" % i


def settle(table: CompactTable) -> None:
    """Finish any resize and release (what the idle hook does)."""
    while table.rehash_step(64):
        pass


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"abc",
        b"x" * INLINE_VALUE_MAX_BYTES,
        b"y" * (INLINE_VALUE_MAX_BYTES + 1),
        0,
        -1,
        (1 << 63) - 1,
        -(1 << 63),
        1 << 63,
        -(1 << 70),
        None,
        True,
        3.5,
        bytearray(b"mutable"),
    ],
    ids=repr,
)
def test_every_kind_of_value_round_trips(value: Any) -> None:
    table = CompactTable()
    table.set(b"k", value)
    got = table.get(b"k")
    assert got == value and type(got) is type(value)
    assert table.swap(b"k", b"other") == value
    assert table.pop(b"k") == b"other"


def test_objects_keep_their_identity_and_indices_are_reused() -> None:
    table = CompactTable()
    grown = Growable(b"g" * 1000, 2048)
    table.set(b"g", grown)
    assert table.get(b"g") is grown
    big = b"B" * 5000
    for i in range(100):
        table.set(b"k%d" % i, big)
    assert all(table.get(b"k%d" % i) is big for i in range(100))
    for round_ in range(5):
        for i in range(100):
            table.pop(b"k%d" % i)
            table.set(b"k%d" % i, [round_])
    # 101 live objects; deletes freed indices that later writes took again.
    assert table.statistics()["objects"] == 101
    assert len(table._objects) <= 102


def test_long_keys() -> None:
    table = CompactTable()
    keys = [b"a" * 254, b"b" * 255, b"c" * 256, b"d" * 1000, b"e" * (CHUNK_BYTES + 10)]
    for i, k in enumerate(keys):
        table.set(k, i)
    # A key that shares a long key's prefix is another key.
    assert table.get(b"d" * 999) is None and table.get(b"d" * 1001) is None
    for i in range(5000):  # through several resizes: records are copied whole
        table.set(key(i), b"v")
    assert [table.get(k) for k in keys] == list(range(5))
    assert set(keys) <= set(table.keys())
    assert table.pop(keys[-1]) == 4 and keys[-1] not in table


def test_same_size_overwrite_is_in_place() -> None:
    table = CompactTable(initial_slots=1024)
    for i in range(100):
        table.set(key(i), b"abc")
    before = table.statistics()["arena_bytes"]
    for i in range(100):
        assert table.swap(key(i), b"xyz") == b"abc"
        table.set(key(i), 7)  # int over bytes: a new record, a hole
        table.set(key(i), 8)  # int over int: in place
    stats = table.statistics()
    # 100 records of 2 + 16 + 8 bytes added; the 21-byte ones are holes.
    assert before == 100 * 21
    assert stats["arena_bytes"] == before + 100 * 26
    assert stats["hole_bytes"] == before
    assert all(table.get(key(i)) == 8 for i in range(100))


def test_holes_are_reclaimed_by_compaction() -> None:
    """Overwrites that change the size leave holes; once they pass half the
    arena (and ``compact_min_hole_bytes``, lowered here) a resize copies the
    live records into a fresh arena."""

    class Table(CompactTable):
        compact_min_hole_bytes = 4096

    table = Table()
    n = 20_000
    for i in range(n):
        table.set(key(i), b"v" * 10)
    settle(table)
    live_bytes = table.statistics()["arena_bytes"]
    largest = 0
    for round_ in range(6):
        for i in range(n):
            table.set(key(i), b"w" * (11 + round_ % 2))
            largest = max(largest, table.statistics()["arena_bytes"])
    settle(table)
    stats = table.statistics()
    assert stats["hole_bytes"] < stats["arena_bytes"] // 2
    # Never much more than twice the live records (plus a chunk's slack).
    assert largest <= 2 * (live_bytes + 2 * n) + 2 * CHUNK_BYTES
    assert stats["releasing"] == 0
    assert all(table.get(key(i)) == b"w" * 12 for i in range(n))


def test_deletes_shrink_and_compact() -> None:
    table = CompactTable()
    for i in range(20_000):
        table.set(key(i), b"v" * 20)
    settle(table)
    full = table.statistics()
    for i in range(19_900):
        table.pop(key(i))
    settle(table)
    stats = table.statistics()
    assert stats["slots"] < full["slots"] // 64
    assert stats["arena_bytes"] <= 2 * CHUNK_BYTES
    assert dict(table.items()) == {key(i): b"v" * 20 for i in range(19_900, 20_000)}


def test_finished_resizes_are_released_over_later_writes() -> None:
    table = CompactTable()
    i = 0
    while table.statistics()["slots"] < 1 << 15:
        table.set(key(i), b"v")
        i += 1
    assert table.statistics()["releasing"] > 0 or table.statistics()["rehashing"]
    # Writes that neither insert nor delete still move the release along.
    for _ in range(2000):
        table.set(key(0), b"w")
        if not table.statistics()["releasing"] and not table.statistics()["rehashing"]:
            break
    assert table.statistics()["releasing"] == 0


def test_rehash_step_finishes_resize_and_release_when_writes_stop() -> None:
    table = CompactTable()
    i = 0
    while not table.statistics()["rehashing"] or table.statistics()["slots"] < 4096:
        table.set(key(i), b"v")
        i += 1
    assert table.rehash_step(16) is True
    settle(table)
    stats = table.statistics()
    assert not stats["rehashing"] and stats["releasing"] == 0
    assert table.rehash_step(16) is False
    assert all(table.get(key(j)) == b"v" for j in range(i))


def test_keys_in_slots_walks_every_key_once() -> None:
    table = CompactTable()
    for i in range(3000):
        table.set(key(i), i)
    for old in (True, False):
        slots = table.slot_counts()[1 if old else 0]
        out: list[bytes] = []
        for start in range(0, slots, 100):
            table.keys_in_slots(old, start, start + 100, out)
        assert len(out) == len(set(out))
    both: list[bytes] = []
    current, old_slots = table.slot_counts()
    table.keys_in_slots(False, 0, current, both)
    table.keys_in_slots(True, 0, old_slots, both)
    assert sorted(both) == sorted(key(i) for i in range(3000))


def test_detach_hands_over_pieces_freed_from_the_end() -> None:
    table = CompactTable()
    for i in range(5000):
        table.set(key(i), b"x" * 300 if i % 2 else b"v")
    held = table.detach()
    assert len(table) == 0 and table.get(key(1)) is None
    table.set(b"new", b"1")
    assert list(table.items()) == [(b"new", b"1")]
    for piece in reversed(held):  # as FreeSlices does
        rounds = 0
        while len(piece):
            del piece[-16384:]
            rounds += 1
            assert rounds < 10_000


def test_arena_limit_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compact_table, "MAX_CHUNKS", 2)
    table = CompactTable()
    stored = 0
    with pytest.raises(MemoryError, match="arena full"):
        for i in range(100_000):
            table.set(key(i), b"x" * 200)
            stored += 1
    assert len(table) == stored
    assert table.get(key(stored)) is None
    assert all(table.get(key(i)) == b"x" * 200 for i in range(stored))


class Clock:
    def __init__(self) -> None:
        self.now = 100

    def fresh(self) -> int:
        self.now += 1
        return self.now

    def touch(self, stamp: int) -> int:
        self.now += 1
        return self.now


def test_access_stamps_follow_keys_through_resizes() -> None:
    table = CompactTable()
    for i in range(10):
        table.set(key(i), b"v")
    clock = Clock()
    table.enable_stamps(clock, touch_reads=True)
    assert table.stamp(key(0)) == 101
    table.get(key(3))
    assert table.stamp(key(3)) == 102
    table.set(key(4), b"w")
    assert table.stamp(key(4)) == 103
    for i in range(10, 5000):
        table.set(key(i), b"v")
    settle(table)
    assert table.stamp(key(3)) == 102 and table.stamp(key(4)) == 103
    assert table.stamp(key(4999)) == clock.now
    assert table.peek(key(3)) == (b"v", 102) and table.stamp(key(3)) == 102
    assert table.peek(b"absent") is None
    sample = table.sample(5)
    assert len(sample) == 5 and all(table.stamp(k) == s for k, _v, s in sample)
    table.disable_stamps()
    assert table.stamp(key(3)) is None
    assert table.get(key(3)) == b"v"


def test_memory_bytes_counts_slots_and_arena() -> None:
    table = CompactTable()
    empty = table.memory_bytes()
    for i in range(100_000):
        table.set(key(i), b"abc")
    settle(table)
    grown = table.memory_bytes() - empty
    # 21-byte records and 5-byte slots at 1.3-2.6 slots a key, chunk slack.
    assert 100_000 * 27 <= grown <= 100_000 * 40
