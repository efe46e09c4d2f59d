"""Partition moves: after a new ring epoch, this node copies each partition
it is a source of (``cluster.ring_change.partition_moves``: the first old
member that stays, and every member leaving the list) to its targets (the
members the list gained; for a node leaving the cluster, every member of
the new list: it hands its copy off before it stops serving), until the
partition's Tictac roots match on both sides.

Each move is ``pending`` (not started), ``streaming`` (steps under way) or
``done`` (roots matched on its target). A step is one
``AntiEntropy.sync_partition``: roots compared, then at most
``KEYS_PER_STEP`` differing keys merged both ways (``TKV.REPL.GET`` /
``TKV.REPL.PUT`` of each key's state, batched); steps are paced to at most
``MAX_KEYS_PER_SECOND`` keys, and moves run one at a time, so a move is one
more client among the clients. The moves this node is the partition's
primary source of go first: by the time a leaver's run, the primary has
usually copied the partition, and they compare roots and segments and
send only what it lacked. A move is done only once its roots match after every member up has
been at the change's epoch for a node timeout (``_writers_settled``): a
member that has not switched yet writes to the old list only, and such a
write must not land on the source after its copy finished. A target that
cannot be reached (link down, an error reply) is retried after
``RETRY_SECONDS``. A move
whose target no longer receives the partition's writes (a later change)
is dropped.

Moves run while the *staged* ring is in force (commands/peer/ring.py,
``ring_change.staged``): reads ask the old lists, writes go to the union
of the old and new lists with W + k acks, so the writes made during the
move reach the targets by themselves and the copies bring the older ones;
once every move on every member is done (the admin tool polls
``cluster_moves_*``), ``TKV.RING.CHANGE FINISH`` switches to the final
ring, which queues none.

``statistics()`` (INFO cluster ``cluster_moves_*``, ``trio-kv cluster
status``): moves by state, keys copied.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from ...cluster.ring import Member, Ring
from ...cluster.ring_change import partition_moves
from .anti_entropy import ExchangeFailed
from .link import LinkError
from .node import ClusterNode

log = logging.getLogger(__name__)

KEYS_PER_STEP = 1000
MAX_KEYS_PER_SECOND = 20_000
RETRY_SECONDS = 1.0
STATES = ("pending", "streaming", "done")

# AntiEntropy.sync_partition: (target, partition, budget) -> (roots match, keys repaired).
SyncStep = Callable[[Member, int, int], Awaitable[tuple[bool, int]]]


@dataclass
class Move:
    epoch: int
    partition: int
    target: Member
    state: str = "pending"
    keys_copied: int = 0


class PartitionMoves:
    def __init__(self, node: ClusterNode, sync: SyncStep, *, keys_per_step: int = KEYS_PER_STEP,
                 max_keys_per_second: float = MAX_KEYS_PER_SECOND) -> None:
        self.node = node
        self.sync = sync
        self.keys_per_step = keys_per_step
        self.max_keys_per_second = max_keys_per_second
        # Every move this node is the source of, oldest first (done ones kept for the status).
        self.moves: list[Move] = []
        # Epoch -> when every member up was first seen at it (``_writers_settled``).
        self._caught_up_at: dict[int, float] = {}
        self._wake = trio.Event()
        node.on_ring_change(self.ring_changed)

    def ring_changed(self, old: Ring, new: Ring) -> None:
        """The node adopted ``new`` over ``old``: queue the moves this node makes."""
        myself = self.node.myself
        mine = sorted(
            (move for move in partition_moves(old, new) if move.source == myself),
            key=lambda move: (not move.primary, move.partition),
        )
        added = [Move(new.epoch, move.partition, target) for move in mine for target in move.targets]
        if added:
            log.info("ring epoch %d: %d partition copies to make from here", new.epoch, len(added))
            # The primary copies first (the module docstring), after any older change's.
            self.moves.extend(added)
            self._wake.set()

    def statistics(self) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        for move in self.moves:
            counts[move.state] += 1
        counts["keys_copied"] = sum(move.keys_copied for move in self.moves)
        return counts

    async def run(self) -> None:
        """Make the queued moves, one at a time, until cancelled."""
        while True:
            move = next((move for move in self.moves if move.state != "done"), None)
            if move is None:
                self._wake = trio.Event()
                await self._wake.wait()
                continue
            ring = self.node.view().ring
            if move.target not in ring.write_list(move.partition) and move.target not in (
                    self.node.ring.write_list(move.partition)):
                log.info("partition %d: %s left its list again, move dropped", move.partition, move.target.address)
                self.moves.remove(move)
                continue
            await self._step(move)

    def _writers_settled(self, epoch: int) -> bool:
        """Whether every member up has been at ``epoch`` (its pings) for a
        node timeout: a member shows a new ring to its data path at most
        that long after adopting it (node._settle), so from then on every
        write goes to the union and reaches the targets by itself."""
        now = trio.current_time()
        if not self.node.members_caught_up(epoch):
            self._caught_up_at.pop(epoch, None)
            return False
        return now - self._caught_up_at.setdefault(epoch, now) >= self.node.node_timeout_seconds

    async def _step(self, move: Move) -> None:
        if move.state == "pending":
            move.state = "streaming"
        started = trio.current_time()
        try:
            done, repaired = await self.sync(move.target, move.partition, self.keys_per_step)
        except (LinkError, ExchangeFailed, ValueError) as error:
            log.debug("partition %d to %s: %s; retrying", move.partition, move.target.address, error)
            await trio.sleep(RETRY_SECONDS)
            return
        move.keys_copied += repaired
        if done and not self._writers_settled(move.epoch):
            # Roots match, but a member may still write the old ring's way
            # (to the old list only): compare again once none can.
            await trio.sleep(RETRY_SECONDS / 4)
            return
        if done:
            move.state = "done"
            log.info("partition %d copied to %s (%d keys)", move.partition, move.target.address, move.keys_copied)
            return
        # The pace: a step of ``repaired`` keys takes at least repaired / rate.
        await trio.sleep_until(started + repaired / self.max_keys_per_second)
