"""Anti-entropy: every ``--cluster-aae-interval`` seconds, this node
compares its Tictac trees (store/key_trees.py) with each peer's, for the
partitions both replicate, and repairs the keys that differ. Riak 3's
tictac AAE and Dynamo 4.7 are the models; design/cluster.md "permanent
repair".

One exchange (``exchange``, a task per peer, ``run``):

1. **Roots.** ``TKV.AAE.ROOTS p...`` for every partition whose preference
   list holds both nodes, here (through the dispatcher, as any store
   read) and on the peer: one request each. A converged pair stops here.
   Roots that differ are read again ``ROOT_RECHECK_SECONDS`` later, as
   Riak's exchange does: only a partition whose roots differ both times
   goes on (``partitions_differing``; the others are
   ``partitions_settled``: a write that had reached one side first), so
   writes in flight cause no needless repair.
2. **Segments.** For each partition whose roots differ (starting after
   the one the last round stopped at, so every partition gets its turn):
   ``TKV.AAE.SEGMENTS p`` on both sides, compared.
3. **Keys.** ``TKV.AAE.KEYS p s...`` of the differing segments (at most
   ``SEGMENTS_PER_KEYS_REQUEST`` a request) on both sides: the keys held
   on one side only or with another version digest.
4. **Repair**, ``REPAIR_BATCH_KEYS`` keys at a time: the peer's clocks
   (``TKV.REPL.GET``), merged here (``TKV.REPL.PUT`` of each, then
   ``TKV.REPL.GET`` of the merge, one local job), and the merged clocks
   sent to the peer (``TKV.REPL.PUT``). Both sides then hold the DVVSet
   sync of both (sync is commutative and idempotent: a repair racing a
   write, a read repair or the peer's own exchange loses nothing).

Rate limit, so repair never starves clients: at most
``--cluster-aae-max-keys-per-second`` keys a second on this node, every
peer's exchange together (one ``RepairRate``, cluster/repair_rate.py, of
one second's keys: a repair batch waits for its turn), and at most ``MAX_REPAIR_KEYS_PER_ROUND``
keys per peer per round; a round starts an interval after the last one
ended. Every step is a slice: a request reads at most
``SEGMENTS_PER_KEYS_REQUEST`` segments' keys, and each repair batch is one
ordinary job among the clients' (one worker hop; here the merges and
reads alternate, so the write lock is taken one merge at a time; the
peer runs at most ``REPAIR_BATCH_KEYS`` merges in a row under it, about
1 ms), so the store lock is never held for long. A round that fails (the link drops, the
peer answers an error) is counted and the next round starts afresh.

Tombstones: a loop beside the exchanges runs the tombstone reaper
(server/cluster/tombstone_reaper.py) every interval; its counters are
these statistics' too. Partitions are compared only between nodes the
current ring lists together.

``statistics()`` (INFO cluster ``cluster_aae_*``, ``trio-kv cluster
status``, /metrics): rounds, what was compared, keys repaired, and the
requests each step sent to peers (``roots_requests`` ... ``repair_requests``:
a converged cluster sends only roots requests), the repair rate's waits,
the reaper's counts. ``peer_progress()`` (INFO ``cluster_aae_peer<i>``,
``trio-kv cluster status``): per peer, when the last round ended (unix
ms), its outcome, the keys it repaired, and the totals.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import trio

from ...cluster.repair_rate import RepairRate
from ...cluster.ring import Member, Ring
from ...cluster.tictac import SEGMENT_COUNT, differing_keys, differing_segments, unpack_hashes
from ...commands.control import ServerControl
from ...commands.peer import aae, repl
from ...commands.table import CommandTable
from ...protocol.replies import Error
from ...store.engine import Store
from ..dispatch import Dispatcher
from .internal_jobs import internal_job, internal_session
from .link import LinkError
from .node import ClusterNode
from .tombstone_reaper import TombstoneReaper

log = logging.getLogger(__name__)

# Keys repaired with one peer in one round at most (the rate limit).
MAX_REPAIR_KEYS_PER_ROUND = 1000
# Keys per repair step (one REPL.GET batch, one local job, one REPL.PUT
# batch): the peer runs the step's REPL.PUTs as one job under its write
# lock. Measured in-process at load average 18 (new keys, one job each):
# 100 PUTs held it 12.9 ms median (p99 293 ms), 25 PUTs 0.9 ms (p99 32 ms).
REPAIR_BATCH_KEYS = 25
# Keys per batch when a partition move copies (sync_partition), which is
# not held to the exchanges' repair rate either: a move paces itself
# (moves.py). With the exchanges' 25 keys and 1,000 keys/s, adding a node
# to a cluster of 20,000 keys took 45 s.
MOVE_BATCH_KEYS = 100
# The pause before the roots that differed are read again (a write's
# replication to the peer takes well under this).
ROOT_RECHECK_SECONDS = 0.2
# Segments one TKV.AAE.KEYS asks for at most.
SEGMENTS_PER_KEYS_REQUEST = 128

# The local side's table: the same commands the peer runs.
AAE_TABLE = CommandTable(
    [*repl.SPECS, *aae.SPECS],
    unknown_command=lambda args: Error("ERR unknown command"),
    wrong_arity=lambda spec: Error("ERR wrong number of arguments"),
)

COUNTERS = (
    "rounds", "rounds_failed", "rounds_limited", "partitions_compared", "partitions_differing", "partitions_settled",
    "segments_compared", "segments_differing", "keys_compared", "keys_differing", "keys_repaired",
    "roots_requests", "segments_requests", "keys_requests", "repair_requests", "rate_waits",
)


@dataclass
class PeerProgress:
    """Anti-entropy with one peer, for status."""

    peer: str
    rounds: int = 0
    failed: int = 0
    keys_repaired: int = 0
    # When the last round ended (unix ms; 0: none yet), and what it did.
    last_exchange_unix_ms: int = 0
    last_ok: int = 0
    last_repaired: int = 0
    last_partitions_differing: int = 0


class ExchangeFailed(Exception):
    """A round cannot go on (an error reply, a malformed one)."""


def shared_partitions(ring: Ring, myself: Member, peer: Member) -> list[int]:
    """The partitions whose preference lists hold both nodes."""
    return [
        partition for partition, members in enumerate(ring.preference_lists) if myself in members and peer in members
    ]


def _bytes_reply(reply: object, what: str) -> bytes:
    if not isinstance(reply, bytes):
        raise ExchangeFailed(f"{what} answered {str(reply)[:80]}")
    return reply


def _entries(reply: object, what: str) -> list[tuple[bytes, int]]:
    if not isinstance(reply, list) or len(reply) % 2 or not all(isinstance(item, bytes) for item in reply):
        raise ExchangeFailed(f"{what} answered {str(reply)[:80]}")
    return [(reply[i], int.from_bytes(reply[i + 1], "little")) for i in range(0, len(reply), 2)]


class AntiEntropy:
    def __init__(
        self, node: ClusterNode, store: Store, control: ServerControl, dispatcher: Dispatcher,
        *, interval_seconds: float, max_repair_keys_per_round: int = MAX_REPAIR_KEYS_PER_ROUND,
        max_repair_keys_per_second: int = 0, tombstone_grace_seconds: float | None = None,
    ) -> None:
        self.node = node
        self.store = store
        self.control = control
        self.dispatcher = dispatcher
        self.interval_seconds = interval_seconds
        self.max_repair_keys_per_round = max_repair_keys_per_round
        # Shared by every peer's loop: the node's repair rate, a bucket of one
        # second's keys (rounds are bursty: the steps before a repair and the
        # interval between rounds leave it idle, and a smaller bucket would
        # waste that time; over any T seconds at most rate x (T + 1) keys).
        self.rate = RepairRate(max_repair_keys_per_second, max(1, max_repair_keys_per_second))
        self.counts: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        # Per peer: the partition the next round starts its segment walk at.
        self._next_partition: dict[Member, int] = {}
        # Per peer with an exchange loop (``run`` adds each as it starts its loop).
        self.peers: dict[Member, PeerProgress] = {}
        # None: tombstones are kept (no reaper loop).
        self.reaper = None if tombstone_grace_seconds is None else TombstoneReaper(
            node, self._local, self.counts, grace_seconds=tombstone_grace_seconds,
        )

    def statistics(self) -> dict[str, int]:
        return dict(self.counts)

    def peer_progress(self) -> list[dict[str, object]]:
        return [asdict(progress) for progress in self.peers.values()]

    async def run(self) -> None:
        """An exchange loop per peer, until cancelled; a member a new ring
        brings (its link appears in ``node.links``) gets its loop when the
        view changes. A bug in one loop ends that loop, logged; the node and
        the other loops go on (repair is never worth the node)."""
        async with trio.open_nursery() as nursery:
            if self.reaper is not None:
                nursery.start_soon(self._guarded_reaper)
            looping: set[Member] = set()
            while True:
                for member in list(self.node.links):
                    if member not in looping:
                        looping.add(member)
                        self.peers[member] = PeerProgress(member.address)
                        nursery.start_soon(self._guarded_loop, member)
                await self.node.view_changed.wait()

    async def _guarded_reaper(self) -> None:
        assert self.reaper is not None
        try:
            while True:
                await trio.sleep(self.interval_seconds)
                await self.reaper.reap_round()
        except Exception:
            log.exception("the tombstone reaper failed; tombstones are kept from now on")

    async def _guarded_loop(self, member: Member) -> None:
        try:
            await self._peer_loop(member)
        except Exception:
            log.exception("anti-entropy with %s failed; it stays off for that peer", member.address)

    async def _peer_loop(self, member: Member) -> None:
        while True:
            await trio.sleep(self.interval_seconds)
            view = self.node.view()
            if member not in view.up or not shared_partitions(view.ring, view.myself, member):
                continue  # no exchange this time: nothing to report for the peer
            progress = self.peers[member]
            progress.last_partitions_differing = 0  # exchange sets it once the roots are compared
            try:
                repaired = await self.exchange(member)
            except (LinkError, ExchangeFailed, ValueError) as error:
                # The link dropped, or the peer answered an error or
                # malformed hashes (ValueError from unpack_hashes): next round.
                self.counts["rounds_failed"] += 1
                progress.failed += 1
                progress.last_ok, progress.last_repaired = 0, 0
                log.debug("anti-entropy with %s: round failed: %s", member.address, error)
            else:
                progress.rounds += 1
                progress.keys_repaired += repaired
                progress.last_ok, progress.last_repaired = 1, repaired
            progress.last_exchange_unix_ms = int(time.time() * 1000)

    # -- one round -----------------------------------------------------------

    async def exchange(self, member: Member) -> int:
        """One round with ``member``; returns the keys repaired."""
        view = self.node.view()
        if member not in view.up:
            return 0
        partitions = shared_partitions(view.ring, view.myself, member)
        if not partitions:
            return 0
        differing = await self._differing_roots(member, partitions)
        self.counts["rounds"] += 1
        self.counts["partitions_compared"] += len(partitions)
        if differing:
            # Seen twice (Riak's exchange does the same): a root that differed
            # only because a write had reached one side first is equal by now.
            await trio.sleep(ROOT_RECHECK_SECONDS)
            again = set(await self._differing_roots(member, differing))
            self.counts["partitions_settled"] += len(differing) - len(again)
            differing = [partition for partition in differing if partition in again]
        self.counts["partitions_differing"] += len(differing)
        if member in self.peers:
            self.peers[member].last_partitions_differing = len(differing)
        if not differing:
            return 0
        # Every partition gets its turn: start after the one the last round stopped at.
        start = self._next_partition.get(member, 0)
        differing.sort(key=lambda partition: (partition < start, partition))
        budget = self.max_repair_keys_per_round
        repaired = 0
        for partition in differing:
            keys = await self._differing_keys(member, partition, budget)
            keys = keys[:budget]
            repaired += await self._repair(member, keys)
            budget -= len(keys)
            if budget <= 0:
                self.counts["rounds_limited"] += 1
                self._next_partition[member] = partition  # unfinished: first next time
                break
        else:
            self._next_partition[member] = 0
        return repaired

    async def _differing_roots(self, member: Member, partitions: list[int]) -> list[int]:
        """The partitions of ``partitions`` whose roots differ here and on the peer."""
        ask = [b"TKV.AAE.ROOTS", *(b"%d" % partition for partition in partitions)]
        self.counts["roots_requests"] += 1
        theirs, mine = await self._both(member, [ask])
        their_roots = unpack_hashes(_bytes_reply(theirs[0], "TKV.AAE.ROOTS"))
        my_roots = unpack_hashes(_bytes_reply(mine[0], "TKV.AAE.ROOTS (here)"))
        if len(their_roots) != len(partitions) or len(my_roots) != len(partitions):
            raise ExchangeFailed("TKV.AAE.ROOTS answered the wrong number of roots")
        return [p for p, a, b in zip(partitions, my_roots, their_roots) if a != b]

    async def _differing_keys(self, member: Member, partition: int, budget: int) -> list[bytes]:
        """The keys of ``partition`` whose entries differ, until at least ``budget`` are found."""
        ask = [b"TKV.AAE.SEGMENTS", b"%d" % partition]
        self.counts["segments_requests"] += 1
        theirs, mine = await self._both(member, [ask])
        segments = differing_segments(
            unpack_hashes(_bytes_reply(mine[0], "TKV.AAE.SEGMENTS (here)")),
            unpack_hashes(_bytes_reply(theirs[0], "TKV.AAE.SEGMENTS")),
        )
        self.counts["segments_compared"] += SEGMENT_COUNT
        self.counts["segments_differing"] += len(segments)
        found: list[bytes] = []
        for first in range(0, len(segments), SEGMENTS_PER_KEYS_REQUEST):
            chunk = segments[first : first + SEGMENTS_PER_KEYS_REQUEST]
            ask = [b"TKV.AAE.KEYS", b"%d" % partition, *(b"%d" % segment for segment in chunk)]
            self.counts["keys_requests"] += 1
            theirs, mine = await self._both(member, [ask])
            my_entries = _entries(mine[0], "TKV.AAE.KEYS (here)")
            their_entries = _entries(theirs[0], "TKV.AAE.KEYS")
            self.counts["keys_compared"] += len(my_entries) + len(their_entries)
            keys = differing_keys(my_entries, their_entries)
            self.counts["keys_differing"] += len(keys)
            found += keys
            if len(found) >= budget:
                break
        return found

    async def _repair(self, member: Member, keys: Sequence[bytes], *, batch_keys: int = REPAIR_BATCH_KEYS,
                      paced: bool = True) -> int:
        """Merge ``keys`` both ways (module docstring, step 4), ``batch_keys``
        at a time, within the repair rate when ``paced``; the keys that
        changed somewhere."""
        repaired = 0
        link = self.node.links[member]
        if paced:
            batch_keys = min(batch_keys, self.rate.burst_keys)  # a batch never waits for more than the bucket
        for first in range(0, len(keys), batch_keys):
            batch = keys[first : first + batch_keys]
            wait_seconds = self.rate.reserve(trio.current_time(), len(batch)) if paced else 0.0
            if wait_seconds > 0:
                self.counts["rate_waits"] += 1
                await trio.sleep(wait_seconds)
            self.counts["repair_requests"] += 2
            theirs = await link.request_many([[b"TKV.REPL.GET", key] for key in batch])
            local: list[list[bytes]] = []
            pulled: list[int] = []  # indexes into local of the PUTs
            for key, clock in zip(batch, theirs):
                if isinstance(clock, bytes):
                    pulled.append(len(local))
                    local.append([b"TKV.REPL.PUT", key, clock])
                local.append([b"TKV.REPL.GET", key])
            replies = await self._local(local)
            changed = {local[index][1] for index in pulled if replies[index] == 1}
            pushes = []
            for request, reply in zip(local, replies):
                if request[0] == b"TKV.REPL.GET" and isinstance(reply, bytes):
                    pushes.append([b"TKV.REPL.PUT", request[1], reply])
            their_clocks = dict(zip(batch, theirs))
            pushes = [push for push in pushes if their_clocks.get(push[1]) != push[2]]
            if pushes:
                answers = await link.request_many(pushes)
                changed.update(push[1] for push, answer in zip(pushes, answers) if answer == 1)
            repaired += len(changed)
            self.counts["keys_repaired"] += len(changed)  # per batch: status follows a long repair
        return repaired

    # -- the two sides -------------------------------------------------------

    async def _both(self, member: Member, requests: list[list[bytes]]) -> tuple[list[object], list[object]]:
        """``requests`` on the peer and here, at the same time: (theirs, mine)."""
        theirs: list[object] = []
        failed: list[LinkError] = []

        async def remote() -> None:
            try:
                theirs.extend(await self.node.links[member].request_many(requests))
            except LinkError as error:
                failed.append(error)  # raised below, not as an exception group

        async with trio.open_nursery() as nursery:
            nursery.start_soon(remote)
            mine = await self._local(requests)
        if failed:
            raise failed[0]
        return theirs, mine

    async def _local(self, requests: list[list[bytes]]) -> list[object]:
        session = internal_session(self.store, self.control, address="anti-entropy")
        job = internal_job(session, AAE_TABLE, requests)
        await self.dispatcher.submit(job)
        return job.replies

    # -- partition moves (server/cluster/moves.py) ---------------------------

    async def sync_partition(self, member: Member, partition: int, budget: int) -> tuple[bool, int]:
        """One step of moving ``partition`` to ``member``: (whether its Tictac
        roots here and there match, keys repaired). Unlike ``exchange`` it
        ignores the up/down opinion and the round's limit: the caller paces it."""
        ask = [b"TKV.AAE.ROOTS", b"%d" % partition]
        theirs, mine = await self._both(member, [ask])
        if _bytes_reply(theirs[0], "TKV.AAE.ROOTS") == _bytes_reply(mine[0], "TKV.AAE.ROOTS (here)"):
            return True, 0
        keys = (await self._differing_keys(member, partition, budget))[:budget]
        # The move paces itself (moves.py): not the exchanges' repair rate,
        # and bigger batches, or a move of 100,000 keys takes minutes.
        return False, await self._repair(member, keys, batch_keys=MOVE_BATCH_KEYS, paced=False)
