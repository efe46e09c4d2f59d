"""``RecordingTable``: a ``HashTable`` that records the largest rehash a
single write did, for the unit and the property tests of the incremental
rehash (each write must move a bounded number of slots)."""

from __future__ import annotations

from trio_kv.store.hashtable import MIN_SLOTS, HashTable


class RecordingTable(HashTable):
    """Records the largest rehash a single set/pop did (in old slots)."""

    def __init__(self, initial_slots: int = MIN_SLOTS) -> None:
        super().__init__(initial_slots)
        self.largest_write_rehash = 0
        self.stepping = False

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
