"""The store's hash table: dict-like behaviour, tombstones, incremental
resize in both directions with bounded work per write, reads that never
mutate, SCAN's guarantee across resizes, and random_item's uniformity."""

from __future__ import annotations

import collections
import itertools
from typing import Any

import pytest

from trio_kv.store.compact_table import CompactTable
from trio_kv.store.hashtable import MAX_UPKEEP_CELLS_PER_WRITE, MIN_SLOTS, REHASH_MAX_SLOTS_PER_WRITE, HashTable

from ..recording_table import RecordingCompactTable, RecordingTable

AnyTable = HashTable | CompactTable


@pytest.fixture(params=[HashTable, CompactTable], ids=["objects", "compact"])
def Table(request: pytest.FixtureRequest) -> type[AnyTable]:
    """The tests that hold for any table run against both."""
    return request.param


def recording(table_class: type[AnyTable]) -> Any:
    return RecordingTable() if table_class is HashTable else RecordingCompactTable()


def key(i: int) -> bytes:
    return b"key:%d" % i


def same_home_keys(slots: int, count: int) -> list[bytes]:
    """``count`` keys whose home slot is the same in a table of ``slots``."""
    by_home: dict[int, list[bytes]] = collections.defaultdict(list)
    for i in itertools.count():
        k = b"collide:%d" % i
        group = by_home[(hash(k) >> 1) & (slots - 1)]
        group.append(k)
        if len(group) == count:
            return group
    raise AssertionError("unreachable")


def growing_table(old_slots: int = 1024, Table: type[AnyTable] = HashTable) -> Any:
    """A table in the middle of growing from ``old_slots`` slots."""
    table = Table(initial_slots=old_slots)
    i = 0
    while not table.statistics()["rehashing"]:
        table.set(key(i), i)
        i += 1
    return table


def full_scan(table: Any, count: int = 10) -> list[bytes]:
    seen: list[bytes] = []
    cursor = 0
    while True:
        cursor, items = table.scan(cursor, count)
        seen.extend(k for k, _ in items)
        if cursor == 0:
            return seen


# --- basics -----------------------------------------------------------------


def test_set_get_pop_contains_len(Table: type[AnyTable]) -> None:
    table = Table()
    assert len(table) == 0
    assert table.get(b"a") is None
    assert table.get(b"a", 7) == 7
    assert b"a" not in table
    assert table.set(b"a", 1) is True
    assert table.set(b"a", 2) is False
    assert table.get(b"a") == 2
    assert b"a" in table
    assert len(table) == 1
    assert table.pop(b"a") == 2
    assert b"a" not in table
    assert len(table) == 0
    assert table.pop(b"a", "gone") == "gone"
    with pytest.raises(KeyError):
        table.pop(b"a")


def test_empty_key_and_none_value_are_stored(Table: type[AnyTable]) -> None:
    table = Table()
    table.set(b"", None)
    assert b"" in table
    assert table.get(b"", "default") is None
    assert table.pop(b"") is None
    assert b"" not in table


def test_many_keys_round_trip_through_growth(Table: type[AnyTable]) -> None:
    table = Table()
    for i in range(5000):
        assert table.set(key(i), i)
    assert len(table) == 5000
    assert all(table.get(key(i)) == i for i in range(5000))
    assert dict(table.items()) == {key(i): i for i in range(5000)}
    assert sorted(table.keys()) == sorted(key(i) for i in range(5000))


def test_insert_only_table_stays_at_least_a_third_full(Table: type[AnyTable]) -> None:
    """Memory: 16 bytes per slot and at most 3 slots per key (48 bytes)."""
    table = Table()
    for i in range(20000):
        table.set(key(i), i)
        stats = table.statistics()
        if not stats["rehashing"] and stats["slots"] > MIN_SLOTS:
            assert stats["slots"] <= 3 * len(table)


def test_clear_resets_to_minimum(Table: type[AnyTable]) -> None:
    table = growing_table(Table=Table)
    table.clear()
    assert len(table) == 0
    assert table.statistics() == Table().statistics()
    assert full_scan(table) == []
    table.set(b"x", 1)
    assert table.get(b"x") == 1


# --- tombstones -------------------------------------------------------------


def test_tombstone_keeps_probe_run_and_is_reused() -> None:
    a, b, c = same_home_keys(MIN_SLOTS, 3)
    table = HashTable()
    for k in (a, b, c):
        table.set(k, k)
    table.pop(b)  # c sits after b in the same run: b must leave a tombstone
    stats = table.statistics()
    assert stats["tombstones"] == 1 and stats["fill"] == 3
    assert table.get(c) == c
    assert table.set(b, b"again") is True  # reuses the tombstone
    assert table.statistics()["tombstones"] == 0
    assert table.statistics()["fill"] == 3


def test_delete_at_end_of_run_clears_tombstones_before_it() -> None:
    a, b, c = same_home_keys(MIN_SLOTS, 3)
    table = HashTable()
    for k in (a, b, c):
        table.set(k, k)
    table.pop(b)
    table.pop(c)  # the run now ends at a: b's tombstone becomes empty too
    stats = table.statistics()
    assert stats["tombstones"] == 0 and stats["fill"] == 1
    assert table.get(a) == a


def test_tombstones_count_toward_fill_so_churn_does_not_grow_the_table(Table: type[AnyTable]) -> None:
    table = Table()
    for i in range(100):
        table.set(key(i), i)
    largest = 0
    for i in range(100, 20000):
        table.set(key(i), i)
        table.pop(key(i - 100))
        stats = table.statistics()
        assert stats["fill"] <= stats["slots"] * 2 // 3
        largest = max(largest, stats["slots"])
    assert len(table) == 100
    assert largest <= 512
    assert dict(table.items()) == {key(i): i for i in range(19900, 20000)}


# --- incremental resize -----------------------------------------------------


def test_lookups_during_growth_see_both_lists(Table: type[AnyTable]) -> None:
    table = growing_table(Table=Table)
    stats = table.statistics()
    assert stats["rehashing"] and stats["old_slots"] == 1024 and stats["slots"] == 2048
    assert 0 < stats["old_len"] <= len(table)
    n = len(table)
    assert all(table.get(key(i)) == i and key(i) in table for i in range(n))
    # Update and delete keys wherever they are; add new ones.
    for i in range(0, n, 3):
        assert table.set(key(i), -i) is False
    for i in range(1, n, 3):
        assert table.pop(key(i)) == i
    for i in range(n, n + 50):
        assert table.set(key(i), i) is True
    expected = {key(i): (-i if i < n and i % 3 == 0 else i) for i in range(n + 50) if i >= n or i % 3 != 1}
    assert dict(table.items()) == expected
    assert len(table) == len(expected)


def test_reads_do_not_move_rehash_slots(Table: type[AnyTable]) -> None:
    table = growing_table(Table=Table)
    table.seed(1)
    before = table.statistics()
    for i in range(len(table)):
        table.get(key(i))
        _ = key(i) in table
    table.random_item()
    table.scan(0, 100)
    list(table.items())
    assert table.statistics() == before


def test_each_write_moves_a_bounded_number_of_slots(Table: type[AnyTable]) -> None:
    table = growing_table(Table=Table)
    stats = table.statistics()
    rate = stats["rehash_slots_per_write"]
    assert 1 <= rate <= REHASH_MAX_SLOTS_PER_WRITE
    writes = 0
    while table.statistics()["rehashing"]:
        before = table.statistics()
        table.set(b"new:%d" % writes, writes)
        after = table.statistics()
        writes += 1
        if after["rehashing"]:
            assert after["rehash_index"] - before["rehash_index"] == rate
        assert before["old_len"] - after["old_len"] <= rate
    # The resize took many writes, not one.
    assert writes == stats["old_slots"] // rate


def test_no_write_ever_finishes_a_resize_by_itself(Table: type[AnyTable]) -> None:
    """Growth, shrink and tombstone clean-ups under churn: every rehash done
    inside a set or pop stays within the per-write bound (the safety net that
    would finish a resize at once never runs)."""
    table = recording(Table)
    live: list[bytes] = []
    for round_ in range(3):
        for i in range(3000):
            k = b"%d:%d" % (round_, i)
            table.set(k, i)
            live.append(k)
        for k in live[: len(live) - 10]:
            table.pop(k)
        live = live[-10:]
        for i in range(3000):  # churn: tombstones
            k = b"churn:%d:%d" % (round_, i)
            table.set(k, i)
            table.pop(k)
    assert 0 < table.largest_write_rehash <= REHASH_MAX_SLOTS_PER_WRITE
    assert sorted(table.keys()) == sorted(live)


def test_growth_builds_each_new_list_ahead_in_bounded_chunks() -> None:
    """No write allocates a whole list: every resize to 256K slots finds its
    list already built, and the old lists are freed a chunk at a time."""
    table = RecordingTable()
    sizes = set()
    for i in range(120_000):
        table.set(key(i), i)
        sizes.add(table.statistics()["slots"])
    stats = table.statistics()
    assert max(sizes) == 256 * 1024 and stats["spare_misses"] == 0
    assert 0 < table.largest_write_cells <= MAX_UPKEEP_CELLS_PER_WRITE
    assert 256 * 1024 > 16 * MAX_UPKEEP_CELLS_PER_WRITE  # the bound is well below a list's size
    assert stats["releasing_cells"] == 0
    # 120K keys in 256K slots is outside the growth window: no spare is held.
    assert stats["spare_cells"] == 0


def test_churn_and_mass_delete_allocate_in_bounded_chunks() -> None:
    """Tombstone clean-ups at a steady size, then shrinking all the way down."""
    table = RecordingTable()
    for i in range(12_000):
        table.set(key(i), i)
    resizes, rehashing = 0, False
    for i in range(12_000, 100_000):  # steady 12K keys: tombstones force rehashes
        table.set(key(i), i)
        table.pop(key(i - 12_000))
        resizes += table.statistics()["rehashing"] and not rehashing
        rehashing = table.statistics()["rehashing"]
    assert resizes >= 2 and table.statistics()["slots"] == 32 * 1024
    for i in range(88_000, 100_000):
        table.pop(key(i))
    stats = table.statistics()
    assert stats["slots"] == MIN_SLOTS and len(table) == 0
    assert stats["spare_misses"] == 0
    assert 0 < table.largest_write_cells <= MAX_UPKEEP_CELLS_PER_WRITE


def test_old_list_is_released_over_later_writes() -> None:
    table = growing_table(old_slots=64 * 1024)
    while table.statistics()["rehashing"]:
        table.rehash_step(4096)
    # The idle steps freed some of it already.
    assert 0 < table.statistics()["releasing_cells"] < 2 * 64 * 1024
    for i in range(10_000):
        table.set(b"more:%d" % i, i)
    assert table.statistics()["releasing_cells"] == 0


def test_shrinks_when_sparse_but_not_below_minimum(Table: type[AnyTable]) -> None:
    table = Table()
    for i in range(4000):
        table.set(key(i), i)
    grown = table.statistics()["slots"]
    for i in range(4000):
        table.pop(key(i))
        if i == 3990:
            assert table.statistics()["slots"] < grown
            assert all(table.get(key(j)) == j for j in range(3991, 4000))
    while table.rehash_step(64):
        pass
    assert len(table) == 0
    assert table.statistics()["slots"] == MIN_SLOTS


def test_rehash_step_finishes_a_resize(Table: type[AnyTable]) -> None:
    table = growing_table(Table=Table)
    n = len(table)
    before = table.statistics()["rehash_index"]
    assert table.rehash_step(10) is True
    assert table.statistics()["rehash_index"] == before + 10
    while table.rehash_step(10):
        pass
    stats = table.statistics()
    assert not stats["rehashing"] and stats["old_len"] == 0 and stats["slots"] == 2048
    assert all(table.get(key(i)) == i for i in range(n))
    assert table.rehash_step(10) is False


# --- scan -------------------------------------------------------------------


def test_scan_of_a_stable_table_returns_every_key_once(Table: type[AnyTable]) -> None:
    table = Table()
    for i in range(1000):
        table.set(key(i), i)
    seen = full_scan(table, count=7)
    assert sorted(seen) == sorted(key(i) for i in range(1000))
    assert full_scan(Table()) == []


def test_scan_makes_progress_with_tiny_count(Table: type[AnyTable]) -> None:
    table = Table()
    for i in range(100):
        table.set(key(i), i)
    cursor, calls = 0, 0
    while True:
        cursor, _ = table.scan(cursor, 1)
        calls += 1
        if cursor == 0:
            break
        assert calls <= table.statistics()["slots"]


def test_scan_returns_current_values(Table: type[AnyTable]) -> None:
    table = growing_table(Table=Table)
    for k, v in table.scan(0, 10_000)[1]:
        assert table.get(k) == v


def test_scan_during_growth_returns_keys_present_throughout(Table: type[AnyTable]) -> None:
    table = Table()
    stable = [key(i) for i in range(40)]
    for k in stable:
        table.set(k, 0)
    seen: set[bytes] = set()
    cursor, added, sizes = 0, 0, set()
    while True:
        cursor, items = table.scan(cursor, 2)
        seen.update(k for k, _ in items)
        if cursor == 0:
            break
        # Grow several times, often mid-resize between calls; then stop so
        # the scan can catch up with the table.
        for _ in range(25 if added < 2000 else 0):
            table.set(b"grow:%d" % added, added)
            added += 1
        sizes.add(table.statistics()["slots"])
    assert set(stable) <= seen
    assert len(sizes) >= 3


def test_scan_during_shrink_returns_keys_present_throughout(Table: type[AnyTable]) -> None:
    table = Table()
    for i in range(4000):
        table.set(key(i), i)
    stable = [key(i) for i in range(0, 4000, 400)]
    doomed = [key(i) for i in range(4000) if i % 400]
    seen: set[bytes] = set()
    cursor, sizes = 0, set()
    while True:
        cursor, items = table.scan(cursor, 3)
        seen.update(k for k, _ in items)
        if cursor == 0:
            break
        for _ in range(60):
            if doomed:
                table.pop(doomed.pop())
        sizes.add(table.statistics()["slots"])
    assert set(stable) <= seen
    assert len(sizes) >= 3


def test_scan_while_mid_resize_between_calls(Table: type[AnyTable]) -> None:
    table = growing_table(old_slots=256, Table=Table)
    stable = set(table.keys())
    seen: set[bytes] = set()
    cursor = 0
    while True:
        cursor, items = table.scan(cursor, 4)
        seen.update(k for k, _ in items)
        if cursor == 0:
            break
        table.rehash_step(3)
    assert stable <= seen


# --- random_item ------------------------------------------------------------


def test_random_item_on_empty_table(Table: type[AnyTable]) -> None:
    assert Table().random_item() is None


def test_random_item_is_roughly_uniform(Table: type[AnyTable]) -> None:
    table = Table()
    for i in range(20):
        table.set(key(i), i)
    table.seed(12345)
    counts = collections.Counter(table.random_item() for _ in range(20000))
    assert set(counts) == {(key(i), i) for i in range(20)}
    assert all(800 <= c <= 1200 for c in counts.values()), counts


def test_random_item_during_resize_covers_both_lists(Table: type[AnyTable]) -> None:
    table = growing_table(old_slots=64, Table=Table)
    table.set(b"one more", -1)  # moves a few keys to the new list
    table.seed(7)
    stats = table.statistics()
    assert stats["rehashing"] and 0 < stats["old_len"] < len(table)
    drawn = collections.Counter(table.random_item()[0] for _ in range(20000))
    assert set(drawn) == set(table.keys())
    expected = 20000 / len(table)
    assert all(0.6 * expected <= c <= 1.4 * expected for c in drawn.values())


def test_random_item_in_a_sparse_table_still_finds_the_key(Table: type[AnyTable]) -> None:
    table = Table(initial_slots=4096)
    table.set(b"only", 1)
    assert all(table.random_item() == (b"only", 1) for _ in range(50))
