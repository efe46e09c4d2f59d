"""The tombstone reaper: a delete's tombstone is purged once every one of
the key's N replicas holds exactly it and it is older than
``--cluster-tombstone-grace`` seconds (Cassandra's ``gc_grace_seconds``;
default 10 days). Runs beside anti-entropy (server/cluster/anti_entropy.py),
every ``--cluster-aae-interval`` seconds.

One round, for each partition whose preference list this node heads (so
one node reaps a partition, never two at once). "Every replica" is every
member a write of the partition goes to: while a ring change is staged,
the old list's members and the ones the change adds (``Ring.write_list``;
a newcomer being copied to may not hold the tombstone yet, and must not
be handed the old value after the others purged it):

1. **Every replica up.** If any member of the preference list is not up in
   this node's view, the partition waits (``partitions_waiting``): a
   replica that is down or cut off may hold the key's older value, and
   only the tombstone, on every replica, can make it lose. This and step
   3 (each replica must answer with exactly the tombstone), not the
   grace, keep a replica that missed the delete from resurrecting the
   key: its old value is never alone, because no tombstone is purged
   until it holds the tombstone too (anti-entropy or read repair gives
   it).
2. **Candidates here**: ``TKV.AAE.TOMBSTONES`` (store/versions.py
   ``purgeable``): keys of the partition whose versions are one tombstone
   older than the grace, with their clocks, at most
   ``REAP_BATCH_KEYS``.
3. **Confirm**: ``TKV.REPL.GET`` of each on every other replica; a key
   stays a candidate only if each answers exactly the same clock.
4. **Reap**: ``TKV.AAE.REAP key clock ...`` on every other replica, then
   here. Each replica drops the key's versions only if they are still
   exactly that clock (a write since the confirm wins: the replicas
   that did purge get the new value back from anti-entropy, which
   descends from the tombstone anyway). The key leaves each replica's
   Tictac tree, so the trees stay equal. A replica that missed the reap
   (the link dropped) still holds the tombstone: anti-entropy copies it
   back to the others (a tombstone, never a value) and a later round
   purges it everywhere.

What the grace protects against: writes older than the delete that are
still on their way when the tombstone goes (a replication request
delayed in a queue, a hint held by a node outside the preference list, a
partition move's stream): the grace must be longer than any of those can
take; 10 days, as Cassandra, is far beyond. Tests use seconds.

Counters (``AntiEntropy.statistics``: INFO ``cluster_aae_*``, /metrics,
``trio-kv cluster status``): ``reap_rounds``, ``partitions_waiting``,
``tombstones_confirmed``, ``tombstones_purged`` (here), ``reap_failed``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ...cluster.ring import Member
from ...protocol.replies import Error
from .link import LinkError
from .node import ClusterNode

# Keys one partition's step confirms and reaps at most (per round).
REAP_BATCH_KEYS = 200
# Partitions whose candidates one local job lists (one worker hop, the read
# lock for at most this many ``purgeable`` scans of PURGE_SCAN_KEYS keys:
# a few ms in the worst case, nothing when there are no tombstones).
PARTITIONS_PER_LOOKUP = 4

COUNTERS = ("reap_rounds", "partitions_waiting", "tombstones_confirmed", "tombstones_purged", "reap_failed")

LocalRequests = Callable[[list[list[bytes]]], Awaitable[list[object]]]


class TombstoneReaper:
    """See the module docstring. ``local`` runs requests on this node's
    store (anti-entropy's local side: the same commands a peer runs)."""

    def __init__(self, node: ClusterNode, local: LocalRequests, counts: dict[str, int], *, grace_seconds: float) -> None:
        self.node = node
        self.local = local
        self.grace_ms = int(grace_seconds * 1000)
        # Shared with anti-entropy's counters (one statistics()).
        self.counts = counts
        for name in COUNTERS:
            counts.setdefault(name, 0)

    async def reap_round(self) -> int:
        """One round over the partitions this node heads; the tombstones purged here."""
        view = self.node.view()
        self.counts["reap_rounds"] += 1
        heads: list[tuple[int, list[Member]]] = []
        for partition, members in enumerate(view.ring.preference_lists):
            if not members or members[0] != view.myself:
                continue
            # While a change is staged, the members it adds hold the key too (or will).
            others = list(view.ring.write_list(partition)[1:])
            if any(member not in view.up for member in others):
                self.counts["partitions_waiting"] += 1
                continue
            heads.append((partition, others))
        if not heads:
            return 0
        purged = 0
        for first in range(0, len(heads), PARTITIONS_PER_LOOKUP):
            chunk = heads[first : first + PARTITIONS_PER_LOOKUP]
            asks = [
                [b"TKV.AAE.TOMBSTONES", b"%d" % partition, b"%d" % self.grace_ms, b"%d" % REAP_BATCH_KEYS]
                for partition, _ in chunk
            ]
            for (_, others), reply in zip(chunk, await self.local(asks)):
                if not isinstance(reply, list) or not reply:
                    continue
                candidates = [(reply[i], reply[i + 1]) for i in range(0, len(reply) - 1, 2)]
                try:
                    purged += await self._reap_partition(candidates, others)
                except LinkError:
                    self.counts["reap_failed"] += 1
        return purged

    async def _reap_partition(self, candidates: list[tuple[bytes, bytes]], others: list[Member]) -> int:
        """Confirm ``candidates`` (key, clock) on ``others``, then reap them everywhere."""
        for member in others:
            answers = await self.node.links[member].request_many([[b"TKV.REPL.GET", key] for key, _ in candidates])
            candidates = [pair for pair, answer in zip(candidates, answers) if answer == pair[1]]
            if not candidates:
                return 0
        self.counts["tombstones_confirmed"] += len(candidates)
        reap = [b"TKV.AAE.REAP", *(part for pair in candidates for part in pair)]
        for member in others:
            answer = (await self.node.links[member].request_many([reap]))[0]
            if isinstance(answer, Error) or not isinstance(answer, list):
                self.counts["reap_failed"] += 1
        mine = (await self.local([reap]))[0]
        purged = sum(1 for flag in mine if flag == 1) if isinstance(mine, list) else 0
        self.counts["tombstones_purged"] += purged
        return purged
