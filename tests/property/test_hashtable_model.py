"""The hash table against a plain dict: random sets, pops, bulk inserts that
force growth and bulk deletes that force shrinks, rehash steps and clears,
with SCANs interleaved between them. A SCAN must return every key present
from its first call to its last, and each write must rehash a bounded
number of slots."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from trio_kv.store.hashtable import MAX_UPKEEP_CELLS_PER_WRITE, MIN_SLOTS, REHASH_MAX_SLOTS_PER_WRITE

from ..recording_table import RecordingCompactTable, RecordingTable

POINT_KEYS = st.sampled_from([b"k%d" % i for i in range(24)] + [b""])


class Scan:
    def __init__(self, present: set[bytes]) -> None:
        self.cursor = 0
        self.seen: set[bytes] = set()
        # Keys present since the scan started and not removed since.
        self.present_throughout = present


class HashTableAgainstDict(RuleBasedStateMachine):
    # The table under test (the compact table's machine below swaps it).
    make_table: Any = RecordingTable

    def __init__(self) -> None:
        super().__init__()
        self.table = self.make_table()
        self.model: dict[bytes, Any] = {}
        self.scan: Scan | None = None

    def _removed(self, key: bytes) -> None:
        if self.scan is not None:
            self.scan.present_throughout.discard(key)

    # --- writes -------------------------------------------------------------

    @rule(key=POINT_KEYS, value=st.integers() | st.binary(max_size=300) | st.none() | st.lists(st.integers(), max_size=2))
    def set(self, key: bytes, value: Any) -> None:
        assert self.table.set(key, value) is (key not in self.model)
        self.model[key] = value

    @rule(key=POINT_KEYS)
    def pop(self, key: bytes) -> None:
        if key in self.model:
            assert self.table.pop(key) == self.model.pop(key)
            self._removed(key)
        else:
            assert self.table.pop(key, "absent") == "absent"
            with pytest.raises(KeyError):
                self.table.pop(key)

    @rule(start=st.integers(0, 500), count=st.integers(1, 150))
    def set_range(self, start: int, count: int) -> None:
        for i in range(start, start + count):
            key = b"r%d" % i
            assert self.table.set(key, i) is (key not in self.model)
            self.model[key] = i

    @rule(keep=st.integers(0, 8), from_end=st.booleans())
    def pop_most(self, keep: int, from_end: bool) -> None:
        keys = list(self.model)
        doomed = keys[keep:] if not from_end else keys[: max(0, len(keys) - keep)]
        for key in doomed:
            assert self.table.pop(key) == self.model.pop(key)
            self._removed(key)

    @rule(slots=st.integers(1, 64))
    def rehash_step(self, slots: int) -> None:
        self.table.rehash_step(slots)

    @rule()
    def clear(self) -> None:
        self.table.clear()
        for key in self.model:
            self._removed(key)
        self.model.clear()

    # --- reads --------------------------------------------------------------

    @rule(key=POINT_KEYS)
    def get_and_contains(self, key: bytes) -> None:
        assert self.table.get(key, "absent") == self.model.get(key, "absent")
        assert (key in self.table) is (key in self.model)

    @rule()
    def random_item(self) -> None:
        item = self.table.random_item()
        if not self.model:
            assert item is None
        else:
            assert item is not None and self.model[item[0]] == item[1]

    @precondition(lambda self: self.scan is None)
    @rule()
    def start_scan(self) -> None:
        self.scan = Scan(set(self.model))

    @precondition(lambda self: self.scan is not None)
    @rule(count=st.integers(1, 20))
    def scan_step(self, count: int) -> None:
        self._scan_once(count)

    @precondition(lambda self: self.scan is not None)
    @rule(count=st.integers(1, 20))
    def finish_scan(self, count: int) -> None:
        while self.scan is not None:
            self._scan_once(count)

    def _scan_once(self, count: int) -> None:
        scan = self.scan
        assert scan is not None
        scan.cursor, items = self.table.scan(scan.cursor, count)
        for key, value in items:
            assert self.model[key] == value
            scan.seen.add(key)
        if scan.cursor == 0:
            missing = scan.present_throughout - scan.seen
            assert not missing, f"scan missed {sorted(missing)[:5]}"
            self.scan = None

    def teardown(self) -> None:
        while self.scan is not None:
            self._scan_once(10)

    # --- invariants ---------------------------------------------------------

    @invariant()
    def same_contents(self) -> None:
        assert len(self.table) == len(self.model)
        assert dict(self.table.items()) == self.model

    @invariant()
    def table_shape(self) -> None:
        stats = self.table.statistics()
        assert stats["slots"] >= MIN_SLOTS
        assert stats["slots"] & (stats["slots"] - 1) == 0
        assert 0 <= stats["tombstones"] <= stats["fill"] <= stats["slots"] * 2 // 3
        assert stats["old_len"] <= stats["len"]
        assert stats["rehashing"] is (stats["old_slots"] > 0)
        assert self.table.largest_write_rehash <= REHASH_MAX_SLOTS_PER_WRITE
        assert self.table.largest_write_cells <= MAX_UPKEEP_CELLS_PER_WRITE


HashTableAgainstDict.TestCase.settings = settings(max_examples=100, stateful_step_count=50, deadline=None)
TestHashTableAgainstDict = HashTableAgainstDict.TestCase


class CompactTableAgainstDict(HashTableAgainstDict):
    make_table = RecordingCompactTable

    @rule(key=POINT_KEYS, size=st.sampled_from([0, 3, 240, 241, 5000]))
    def set_sized(self, key: bytes, size: int) -> None:
        """Values around the inline limit: in place, moved, or an object."""
        value = b"v" * size
        assert self.table.set(key, value) is (key not in self.model)
        self.model[key] = value


CompactTableAgainstDict.TestCase.settings = settings(max_examples=100, stateful_step_count=50, deadline=None)
TestCompactTableAgainstDict = CompactTableAgainstDict.TestCase
