"""``KeyTrees``: one Tictac tree (cluster/tictac.py) per partition, over
the versions a cluster-mode store holds, for anti-entropy
(server/cluster/anti_entropy.py, TKV.AAE.*).

How they stay right:

* **Every change of a key's clock is a VERSION effect** (store/effects.py,
  store/versions.py): a local write's new dot, a replica's state merged
  by TKV.REPL.PUT (replication, read repair, anti-entropy's own repairs),
  a delete's tombstone, FLUSHALL's tombstones. ``observe`` is an effects
  subscriber after the versions' stamper and puts each such key's new
  entry in its partition's tree (its old entry XORed out): O(1) per key.
  Expiry by time changes no clock (every replica expires a key at the
  same absolute time), so it changes no tree.
* **Loading changes clocks without effects** (``Versions.load``, while the
  stamper is paused): ``Versions.paused`` stops the trees too and
  ``rebuild`` makes them again from every stored clock when loading ends
  (O(keys), once, before any client or peer is served).
* **A purged tombstone** (store/versions.py ``purge``) is a VERSION
  effect with an empty clock (``PURGED``): the key leaves its tree, as on
  every replica that purges it, so the replicas' trees stay equal.
* **The purge's candidates**: ``tombstones[partition]`` lists, in the
  order they became so (oldest first, near enough), the keys whose stored
  clock is one sibling the keyspace does not hold (header byte 1: a lone
  tombstone, or a lone winner that had expired when it arrived);
  ``Versions.purgeable`` checks each. One header test and one dict
  operation per VERSION effect.

Rules kept here: as every effects subscriber, ``observe`` runs under the
write lock, does no IO and never raises for a well-formed unit; readers
(TKV.AAE.*) hold the store's read lock. Without cluster mode there is no
``Versions`` and none of this exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from zlib import crc32

from ..cluster.slots import SLOT_COUNT, key_slot
from ..cluster.tictac import SEGMENT_MASK, TictacTree, stored_entry_hash
from .durability.records import VERSION, Effect

# The header byte of a stored clock of one sibling, not held (versions_stored.py).
LONE_UNHELD = 1

if TYPE_CHECKING:
    from .versions import Versions


class KeyTrees:
    """See the module docstring. Owned by ``Versions`` (``versions.trees``)."""

    def __init__(self, versions: Versions, partitions: int) -> None:
        if partitions < 1 or SLOT_COUNT % partitions:
            raise ValueError(f"{partitions} partitions do not divide {SLOT_COUNT} slots")
        self._versions = versions
        self.partition_count = partitions
        self._slots_per_partition = SLOT_COUNT // partitions
        # Index: partition.
        self.trees: list[TictacTree] = [TictacTree() for _ in range(partitions)]
        # Index: partition; key -> None, insertion ordered (module docstring).
        self.tombstones: list[dict[bytes, None]] = [{} for _ in range(partitions)]
        self._subscribed = False
        self.start()

    def partition_of(self, key: bytes) -> int:
        return key_slot(key) // self._slots_per_partition

    def observe(self, unit: list[Effect]) -> None:
        """The effects subscriber: each VERSION effect's key gets its new
        entry (a purge's empty clock: leaves its tree)."""
        trees = self.trees
        per_partition = self._slots_per_partition
        for effect in unit:
            if effect[0] == VERSION:
                key = effect[1]
                stored = effect[2]
                partition = key_slot(key) // per_partition
                tombstones = self.tombstones[partition]
                if not stored:
                    trees[partition].remove(key, crc32(key) & SEGMENT_MASK)
                    tombstones.pop(key, None)
                    continue
                trees[partition].put(key, crc32(key) & SEGMENT_MASK, stored_entry_hash(key, stored, 1))
                if stored[0] == LONE_UNHELD:
                    tombstones[key] = None
                elif tombstones:
                    tombstones.pop(key, None)

    def put_stored(self, key: bytes, stored: bytes) -> None:
        """Put one key whose stored clock (header byte + packed clock) is ``stored``."""
        self.observe([(VERSION, key, stored)])

    def start(self) -> None:
        """Subscribe to the keyspace's effects (nothing writing)."""
        if not self._subscribed:
            self._versions.keyspace.effects.subscribe(self.observe)
            self._subscribed = True

    def stop(self) -> None:
        """Unsubscribe (loading: see the module docstring)."""
        if self._subscribed:
            self._versions.keyspace.effects.unsubscribe(self.observe)
            self._subscribed = False

    def rebuild(self) -> None:
        """Every tree again from every stored clock (nothing writing)."""
        for tree in self.trees:
            tree.clear()
        for tombstones in self.tombstones:
            tombstones.clear()
        versions = self._versions
        for key in versions.keys():
            stored = versions.stored(key)
            if stored is not None:
                self.put_stored(key, stored)

    def statistics(self) -> dict[str, int]:
        """INFO cluster: keys in the trees, partitions holding any."""
        return {
            "aae_tree_keys": sum(tree.key_count for tree in self.trees),
            "aae_tree_partitions": sum(1 for tree in self.trees if tree.key_count),
            "aae_purge_candidates": sum(len(tombstones) for tombstones in self.tombstones),
        }
