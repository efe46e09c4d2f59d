"""``RecordingTable``: a ``HashTable`` that records the largest rehash and
the most list cells allocated or freed by a single write, for the unit and
the property tests of the incremental resize (each write must do a bounded
amount of work)."""

from __future__ import annotations

from typing import Any

from trio_kv.store.compact_table import CompactTable
from trio_kv.store.hashtable import MIN_SLOTS, HashTable


class RecordingTable(HashTable):
    """Records the largest rehash (in old slots) and the most cells added to
    or dropped from a list by a single set/pop."""

    def __init__(self, initial_slots: int = MIN_SLOTS) -> None:
        self.largest_write_rehash = 0
        self.largest_write_cells = 0
        self.stepping = False
        super().__init__(initial_slots)

    def rehash_step(self, slots: int) -> bool:
        self.stepping = True
        try:
            return super().rehash_step(slots)
        finally:
            self.stepping = False

    def _rehash(self, slot_count: int) -> None:
        if not self.stepping:
            self.largest_write_rehash = max(self.largest_write_rehash, slot_count)
        super()._rehash(slot_count)

    def _add_cells(self, cells: list[Any], count: int) -> None:
        if not self.stepping:
            self.largest_write_cells = max(self.largest_write_cells, count)
        super()._add_cells(cells, count)

    def _release_cells(self, cells: list[Any], count: int) -> None:
        if not self.stepping:
            self.largest_write_cells = max(self.largest_write_cells, min(count, len(cells)))
        super()._release_cells(cells, count)


class RecordingCompactTable(CompactTable):
    """``CompactTable`` recording the largest rehash by a single set/pop
    (its releases are bounded by construction: ``RELEASE_BYTES_PER_WRITE``).
    Compacts at 256 bytes of holes, so that small tables compact too."""

    compact_min_hole_bytes = 256

    def __init__(self, initial_slots: int = MIN_SLOTS) -> None:
        self.largest_write_rehash = 0
        self.largest_write_cells = 0
        self.stepping = False
        super().__init__(initial_slots)

    def rehash_step(self, slots: int) -> bool:
        self.stepping = True
        try:
            return super().rehash_step(slots)
        finally:
            self.stepping = False

    def _rehash(self, slot_count: int) -> None:
        if not self.stepping:
            self.largest_write_rehash = max(self.largest_write_rehash, slot_count)
        super()._rehash(slot_count)
