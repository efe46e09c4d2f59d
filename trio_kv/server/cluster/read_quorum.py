"""Quorum reads and read repair for the coordinator.

A read's key clocks are asked of the other read targets (one
``TKV.REPL.GET`` request_many per peer, within the write timeout), merged
with DVVSet sync with this node's own clock (read in the same hop as the
read), and every member whose clock does not dominate the merge is
repaired with ``TKV.REPL.PUT`` before the read is answered (blocking read
repair; this node's own copy through the dispatcher, then the read runs
again on the merged state). ``--cluster-write-context read`` uses the same
gathering before a write.
"""

from __future__ import annotations

from collections import defaultdict

import trio

from ...cluster import dvvset
from ...cluster.quorum import RequestPlan, merge_replies
from ...cluster.ring import Member
from ...commands.control import ServerControl
from ...commands.session import Session
from ...commands.wire import RESP
from ...protocol.replies import Error
from ...store.engine import Job, Store
from ..client_session import next_client_id
from ..dispatch import Dispatcher
from .internal_tables import INTERNAL
from .link import LinkError
from .node import ClusterNode

NOREPLICAS_READ = Error("NOREPLICAS Not enough good replicas to read.")


def _dominates(a: dvvset.Clock, b: dvvset.Clock) -> bool:
    return dvvset.equal(a, b) or dvvset.less(b, a)


class ReadQuorum:
    """The read side of one coordinator (``counts`` are the coordinator's)."""

    def __init__(
        self, node: ClusterNode, store: Store, control: ServerControl, dispatcher: Dispatcher,
        counts: dict[str, int], timeout_seconds: float,
    ) -> None:
        self.node = node
        self.store = store
        self.control = control
        self.dispatcher = dispatcher
        self.counts = counts
        self.timeout_seconds = timeout_seconds

    async def remote_clocks(
        self, reads: dict[int, tuple[bytes, RequestPlan]], myself: Member,
        clocks: dict[bytes, dict[Member, bytes | None]],
    ) -> None:
        """Ask the other read targets for the read keys' clocks (one
        request_many per peer), within the timeout."""
        asks: dict[Member, list[bytes]] = defaultdict(list)
        for key, plan in reads.values():
            for member in plan.targets:
                if member != myself and key not in asks[member]:
                    asks[member].append(key)
        with trio.move_on_after(self.timeout_seconds):
            async with trio.open_nursery() as nursery:
                for member, keys in asks.items():
                    nursery.start_soon(self._ask_clocks, member, keys, clocks)

    async def gather_context(self, gather: dict[int, tuple[bytes, RequestPlan]], myself: Member) -> None:
        """Before writes (--cluster-write-context read): merge the other read
        targets' versions of each write key into this node's copy, so the
        write supersedes everything they hold (a DEL of a key this node
        missed deletes it everywhere)."""
        remote: dict[bytes, dict[Member, bytes | None]] = {key: {} for key, _ in gather.values()}
        await self.remote_clocks(gather, myself, remote)
        puts: list[list[bytes]] = []
        for key, answers in remote.items():
            clocks = [dvvset.decode(clock) for clock in answers.values() if clock is not None]
            if clocks:
                puts.append([b"TKV.REPL.PUT", key, dvvset.encode(dvvset.sync(clocks))])
        if puts:
            await self._repair_here(puts)

    async def _ask_clocks(self, member: Member, keys: list[bytes], clocks: dict[bytes, dict[Member, bytes | None]]) -> None:
        try:
            answers = await self.node.links[member].request_many([[b"TKV.REPL.GET", key] for key in keys])
        except LinkError:
            return
        for key, answer in zip(keys, answers):
            if answer is None or isinstance(answer, bytes):
                clocks[key][member] = answer

    async def settle_reads(
        self,
        reads: dict[int, tuple[bytes, RequestPlan]],
        local: dict[int, object],
        remote: dict[bytes, dict[Member, bytes | None]],
        myself: Member,
        replies: list[object],
    ) -> list[int]:
        """Merge each read key's clocks; refuse reads with too few replies;
        repair stale members (blocking); the reads to run again because
        this node's copy was stale (repaired first)."""
        local_puts: list[list[bytes]] = []
        remote_puts: dict[Member, list[list[bytes]]] = defaultdict(list)
        rerun: list[int] = []
        merged_keys: dict[bytes, bool] = {}  # key -> this node was stale
        for index, (key, plan) in reads.items():
            answer = local.get(index)
            if key in merged_keys:
                if merged_keys[key]:
                    rerun.append(index)
                continue
            answers = dict(remote[key])
            if answer is None or isinstance(answer, bytes):
                answers[myself] = answer
            if len(answers) < plan.needed:
                replies[index] = NOREPLICAS_READ
                self.counts["reads_noreplicas"] += 1
                continue
            self.counts["reads_ok"] += 1
            decoded = {member: None if clock is None else dvvset.decode(clock) for member, clock in answers.items()}
            merge = merge_replies(decoded, dvvset.sync2, _dominates)
            merged_keys[key] = False
            if merge.state is None or not merge.stale:
                continue
            self.counts["reads_repaired"] += 1
            packed = dvvset.encode(merge.state)
            for member in merge.stale:
                put = [b"TKV.REPL.PUT", key, packed]
                if member == myself:
                    local_puts.append(put)
                    merged_keys[key] = True
                    rerun.append(index)
                else:
                    remote_puts[member].append(put)
        if local_puts or remote_puts:
            with trio.move_on_after(self.timeout_seconds):
                async with trio.open_nursery() as nursery:
                    if local_puts:
                        nursery.start_soon(self._repair_here, local_puts)
                    for member, puts in remote_puts.items():
                        nursery.start_soon(self._repair_there, member, puts)
        return sorted(rerun)

    async def _repair_here(self, puts: list[list[bytes]]) -> None:
        session = self._internal_session()
        job = Job(session, INTERNAL, puts, trio.current_time())
        await self.dispatcher.submit(job)

    async def _repair_there(self, member: Member, puts: list[list[bytes]]) -> None:
        try:
            await self.node.links[member].request_many(puts)
        except LinkError:
            pass  # the next read (or anti-entropy, issue 11) repairs it

    def _internal_session(self) -> Session:
        session = Session(next_client_id(), self.store, self.control, wire=RESP, address="cluster", local_address="")
        session.authenticated = True
        return session
