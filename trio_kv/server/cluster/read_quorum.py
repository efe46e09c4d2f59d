"""Quorum reads and read repair for the coordinator.

A read's key clocks are asked of the other read targets (one
``TKV.REPL.GET`` request_many per peer, within the write timeout), merged
with DVVSet sync with this node's own clock (read in the same hop as the
read), and every member whose clock does not dominate the merge is
repaired with ``TKV.REPL.PUT`` before the read is answered (blocking read
repair; this node's own copy through the dispatcher, then the read runs
again on the merged state).

Spares (Dynamo's "first R healthy of the N"): the plan's targets are the
first R live preference-list members; the others believed up are spares.
A target whose link fails is replaced at once by the next spare (a link
to a member this node believes up that is only reconnecting is waited
for by the link itself, within the spare delay or the read's deadline:
``peer_link`` rule 4, so a read at ALL survives a reset). A target
still silent ``SPARE_AFTER_FRACTION`` of the timeout after the ask began
(a stopped process, a cut link nobody has noticed yet) is joined by the
next spare, and whichever answers counts (the slow one's late answer too,
until the timeout). The ask ends once every key has R answers, or when no
member asked is still pending.

Cost: the usual read (one key; this node and one other member) asks that
member in the asking task itself (``_ask_one``: no nursery, no task per
member; a failed, refusing or silent member falls back to the general
round with the spares), and the coordinator runs the ask in a task of its
own long-lived nursery (``start_remote_clocks``) while the read's job
runs. Nothing here makes a reference cycle (no closures calling each
other): a read's objects are freed by reference counting, never left for
the cyclic collector (``server/collector.py`` says why that matters).

Write context: a write that is not blind (``cluster.write_context``) first
gathers R members' versions of its keys the same way and merges them into
this node's copy (``gather_context``); a key with fewer than R answers
refuses its writes before they run anywhere.
"""

from __future__ import annotations

from collections import defaultdict

import trio

from ...cluster import dvvset
from ...cluster.quorum import RequestPlan, merge_replies
from ...cluster.ring import Member
from ...commands.control import ServerControl
from ...protocol.replies import Error
from ...store.engine import Store
from ..dispatch import Dispatcher
from .internal_jobs import internal_job, internal_session
from .internal_tables import INTERNAL
from .link import LinkError
from .node import ClusterNode

NOREPLICAS_READ = Error("NOREPLICAS Not enough good replicas to read.")


def _dominates(a: dvvset.Clock, b: dvvset.Clock) -> bool:
    return dvvset.equal(a, b) or dvvset.less(b, a)


# A target silent this part of the timeout after it was asked is joined by a spare.
SPARE_AFTER_FRACTION = 0.25
# A link failure: the member did not answer.
_FAILED = object()


class _Asking:
    """One key's ask of its plan's members (this node counts as answered)."""

    def __init__(self, plan: RequestPlan, myself: Member) -> None:
        self.needed = plan.needed
        self.answered: set[Member] = {myself} if myself in plan.targets else set()
        # Asked and not answered yet (slow ones included).
        self.waiting: set[Member] = {member for member in plan.targets if member != myself}
        # Waiting past the spare delay: a spare is asked beside each.
        self.slow: set[Member] = set()
        self.spares = list(plan.spares)

    @property
    def done(self) -> bool:
        return len(self.answered) >= self.needed or not self.waiting

    def next_spares(self) -> list[Member]:
        """Spares to ask now: enough that the members answered plus the ones
        still expected (asked, not failed, not slow) reach ``needed``."""
        asked: list[Member] = []
        while self.spares and len(self.answered) + len(self.waiting - self.slow) < self.needed:
            spare = self.spares.pop(0)
            self.waiting.add(spare)
            asked.append(spare)
        return asked


class _Round:
    """The general ask: the keys' waiting members and the spares they need,
    one ``request_many`` per member, each in a task of this round's nursery;
    a spare joins every member still silent after ``spare_after_seconds``.
    Ends once every key is done (slow members' asks are cancelled then).
    Methods, not closures that call each other: a closure pair is a
    reference cycle, garbage only the cyclic collector frees (one per read
    once, which made the collector's passes long)."""

    def __init__(
        self, node: ClusterNode, asks: dict[bytes, _Asking], clocks: dict[bytes, dict[Member, bytes | None]],
        spare_after_seconds: float,
    ) -> None:
        self.node = node
        self.asks = asks
        self.clocks = clocks
        self.spare_after_seconds = spare_after_seconds
        self.finished = trio.Event()
        self.in_flight = 0

    async def run(self) -> None:
        first: dict[Member, list[bytes]] = defaultdict(list)
        for key, asking in self.asks.items():
            # The members waited for (a slow one asked again), and the spares
            # that replace the failed or slow ones.
            members = list(asking.waiting)
            members += asking.next_spares()
            for member in members:
                first[member].append(key)
        async with trio.open_nursery() as nursery:
            self._send(nursery, first)
            if any(asking.spares for asking in self.asks.values()):
                with trio.move_on_after(self.spare_after_seconds):
                    await self.finished.wait()
                if not self.finished.is_set():
                    # Every member still silent is slow: a spare joins each.
                    sends: dict[Member, list[bytes]] = defaultdict(list)
                    for key, asking in self.asks.items():
                        asking.slow |= asking.waiting
                        for spare in asking.next_spares():
                            sends[spare].append(key)
                    self._send(nursery, sends)

    def _send(self, nursery: trio.Nursery, sends: dict[Member, list[bytes]]) -> None:
        for member, keys in sends.items():
            self.in_flight += 1
            nursery.start_soon(self._ask, nursery, member, keys)

    async def _ask(self, nursery: trio.Nursery, member: Member, keys: list[bytes]) -> None:
        try:
            answers: list[object] = await self.node.links[member].request_many(
                [[b"TKV.REPL.GET", key] for key in keys]
            )
        except LinkError:
            answers = [_FAILED] * len(keys)
        finally:
            self.in_flight -= 1
        sends: dict[Member, list[bytes]] = defaultdict(list)
        for key, answer in zip(keys, answers):
            asking = self.asks[key]
            if answer is None or isinstance(answer, bytes):
                self.clocks[key][member] = answer
                asking.answered.add(member)
            asking.waiting.discard(member)
            for spare in asking.next_spares():
                sends[spare].append(key)
        self._send(nursery, sends)
        if all(asking.done for asking in self.asks.values()):
            self.finished.set()
            if self.in_flight:
                nursery.cancel_scope.cancel()  # slow members: their answers are not needed


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
        """Ask the read keys' clocks of their targets other than this node
        (one request_many per peer and round), asking spares for targets
        that fail or stay silent, within the timeout."""
        plans = {key: plan for key, plan in reads.values()}
        await self._ask_quorum(plans, myself, clocks)

    def start_remote_clocks(
        self, nursery: trio.Nursery, reads: dict[int, tuple[bytes, RequestPlan]], myself: Member,
        clocks: dict[bytes, dict[Member, bytes | None]],
    ) -> trio.Event:
        """``remote_clocks`` in a task of ``nursery`` (the coordinator's own,
        long-lived: no nursery opened per read); the event is set once it
        ended, however it ended. A caller that stops waiting leaves it to
        end by itself (within the timeout)."""
        asked = trio.Event()
        nursery.start_soon(self._remote_clocks_then_set, reads, myself, clocks, asked)
        return asked

    async def _remote_clocks_then_set(
        self, reads: dict[int, tuple[bytes, RequestPlan]], myself: Member,
        clocks: dict[bytes, dict[Member, bytes | None]], asked: trio.Event,
    ) -> None:
        try:
            await self.remote_clocks(reads, myself, clocks)
        finally:
            asked.set()

    async def gather_context(
        self, gather: dict[int, list[tuple[bytes, RequestPlan]]], myself: Member,
    ) -> set[int]:
        """Before non-blind writes (and every write with --cluster-write-context
        read): merge R members' versions of each write key into this node's
        copy, so the write acts on them and supersedes them all (a DEL of a
        key this node missed deletes it everywhere). Returns the requests to
        refuse: one of their keys got fewer than R answers (this node counts
        as one)."""
        plans = {key: plan for pairs in gather.values() for key, plan in pairs}
        remote: dict[bytes, dict[Member, bytes | None]] = {key: {} for key in plans}
        await self._ask_quorum(plans, myself, remote)
        puts: list[list[bytes]] = []
        short: set[bytes] = set()
        for key, answers in remote.items():
            plan = plans[key]
            if len(answers) + (myself in plan.targets) < plan.needed:
                short.add(key)
                continue
            clocks = [dvvset.decode(clock) for clock in answers.values() if clock is not None]
            if clocks:
                puts.append([b"TKV.REPL.PUT", key, dvvset.encode(dvvset.sync(clocks))])
        if puts:
            await self._repair_here(puts)
        return {index for index, pairs in gather.items() if any(key in short for key, _ in pairs)}

    async def _ask_quorum(
        self, plans: dict[bytes, RequestPlan], myself: Member, clocks: dict[bytes, dict[Member, bytes | None]],
    ) -> None:
        deadline = trio.current_time() + self.timeout_seconds
        asks: dict[bytes, _Asking] | None = None
        if len(plans) == 1:
            ((key, plan),) = plans.items()
            targets = plan.targets
            if plan.needed == 2 and len(targets) == 2 and myself in targets:
                # The usual read: one key, this node and one member to hear from.
                asking = _Asking(plan, myself) if plan.spares else None
                member = targets[1] if targets[0] == myself else targets[0]
                if await self._ask_one(key, member, asking, clocks, deadline):
                    return
                assert asking is not None  # else _ask_one ended the read
                asks = {key: asking}  # its spares are asked now
        if asks is None:
            asks = {key: _Asking(plan, myself) for key, plan in plans.items()}
            if all(asking.done for asking in asks.values()):
                return
        round_ = _Round(self.node, asks, clocks, self.timeout_seconds * SPARE_AFTER_FRACTION)
        with trio.move_on_at(deadline):
            await round_.run()

    async def _ask_one(
        self, key: bytes, member: Member, asking: _Asking | None, clocks: dict[bytes, dict[Member, bytes | None]],
        deadline: float,
    ) -> bool:
        """Ask ``member``, the one member a key still needs, in this task (no
        nursery, no task: most reads end here). ``asking``: the key's ask
        when it has spares, else None. False if the member failed, answered
        an error or stayed silent past the spare delay while spares are
        left: ``asking`` then says so (the member no longer waited for, or
        slow) and the caller's round asks the spares."""
        if asking is not None:
            deadline = min(deadline, trio.current_time() + self.timeout_seconds * SPARE_AFTER_FRACTION)
        answer: object = _FAILED
        with trio.move_on_at(deadline):
            try:
                (answer,) = await self.node.links[member].request_many([[b"TKV.REPL.GET", key]])
            except LinkError:
                pass
            if answer is None or isinstance(answer, bytes):
                clocks[key][member] = answer
                return True
            if asking is None:
                return True  # no spare to ask: the read has its answers
            asking.waiting.discard(member)  # failed or refused: a spare replaces it
            return False
        if asking is None:
            return True  # the read's deadline passed
        # Silent: asked again beside a spare (its late answer counts too).
        asking.slow.add(member)
        return False

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
            merged_keys[key] = False
            if len(set(answers.values())) == 1:
                continue  # the usual read: every member holds the same bytes, nothing to merge or repair
            decoded = {member: None if clock is None else dvvset.decode(clock) for member, clock in answers.items()}
            merge = merge_replies(decoded, dvvset.sync2, _dominates)
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
        session = internal_session(self.store, self.control, address="cluster")
        await self.dispatcher.submit(internal_job(session, INTERNAL, puts))

    async def _repair_there(self, member: Member, puts: list[list[bytes]]) -> None:
        try:
            await self.node.links[member].request_many(puts)
        except LinkError:
            pass  # the next read (or anti-entropy, issue 11) repairs it
