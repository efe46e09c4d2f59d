"""The coordinator: the cluster's data path for every client request.

The dispatcher's ``router`` (set while the cluster runs) sends every job
here instead of straight to the workers. A client's batch is split by
``cluster.batch.plan_batch``: requests for keys this node replicates are
coordinated here, the others are forwarded whole (``TKV.FORWARD``) to
their key's first live member or answered ``-MOVED``; replies go back in
the batch's order. Batching: the local requests of a batch make one job
(one worker hop), the forwards make one ``request_many`` per peer, the
replication of a batch's writes one ``request_many`` per peer. A forward
keeps the client's RESP version (``forwarding.forward_label``).

Connection commands (MULTI, WATCH, HELLO, CLIENT...) cut a batch
(``_connection_batch``): they and MULTI's queueing run here, the keyed
requests between them are routed as above. An EXEC runs here when this
node replicates its queued commands' slot, else whole on the slot's first
live member (``TKV.FORWARD.EXEC``, ``cluster.forwarded_exec``), with the
clocks of the watched keys this node does not replicate, read at WATCH
time (``_exec``); nothing of it is applied here.

Writes (``_coordinate``): a write whose preference list has too few live
members is answered ``-NOREPLICAS`` before it runs anywhere
(``AckCounter``'s IMPOSSIBLE). Otherwise it runs here through the normal
dispatcher, which returns only once its log record is durable under this
node's fsync policy (the local ack); the keys its unit changed
(``Job.version_deltas``) go to the other live preference-list members as
``TKV.REPL.PUT key clock`` pairs (each replica acks after its own log flush)
as soon as the hop ends (the dispatcher's ``on_applied``: the replicas'
log flushes overlap this node's; the local ack still counts only once
this node's flush returned),
each peer's share of a job joining the multi-key put queued on its link
for the next send (``replicator.py``: no task waits for it; the link's reader records the
acks, so the replication always finishes and late acks still count, for
WAIT; a member that was believed down, refused the batch, failed
or answered an error gets the write as a hint instead, ``hints.py``;
with ``--cluster-sloppy-quorum yes`` a member believed down, refusing or
failing has its share sent to a fallback instead, a healthy node past the
preference list that holds it as a hint and whose ack counts as the
member's: ``cluster/fallbacks.py`` chooses, ``fallback_sender.py`` sends,
``_divert`` places the refused and failed ones). The client waits for W
acks (level ONE/QUORUM/ALL) within ``--cluster-write-timeout``: its
batch's deadline is kept by the one ``WriteDeadlines`` task
(``write_acks.py``), which bounds that wait only, never a send or
receive. A write not acked in time is answered ``-NOREPLICAS Not enough
good replicas to write.``: it may still have happened (here, and on the
replicas that got it), so a client must treat it as unknown.

Per request the coordinator's own work is kept small: plans come from a
``PlanCache`` per view (``plan_request`` once per partition, level and
operation until the ring or the up set changes), a connection's levels
are parsed once, and a job of one request for a key this node replicates
skips the batch planning (``_one_local``).

A write that is not blind (``cluster.write_context``: all but plain
SET/SETEX/PSETEX/MSET; every write with ``--cluster-write-context read``)
first merges the versions R members hold of its keys into this node's copy
(one round trip and one local hop more; spares asked as for reads), so it
supersedes them all: a DEL or INCR on a coordinator that missed writes
acts on the merged state. Fewer than R answers: ``-NOREPLICAS`` before it
runs anywhere.

Reads (``read_quorum.py``): the clocks of the read keys are asked of R
members (this node first; the others in a task of this coordinator's
nursery while the read's job runs), merged with DVVSet sync; members whose clock
does not dominate the merge are repaired before the read command runs
here on the merged state. Too few replies: ``-NOREPLICAS Not enough good
replicas to read.``

The other parts: ``write_acks.py`` (ack bookkeeping, WAIT's counts, the
write deadlines), ``replicator.py`` (a job's requests to a peer, one batch),
``forwarding.py`` (``TKV.FORWARD`` jobs from peers), ``whole_cluster.py``
(HTTP's SCAN/DBSIZE over every member), ``internal_tables.py``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence

import trio

from ...cluster.batch import LOCAL, SESSION_COMMANDS, Levels, Segment, plan_batch
from ...cluster.fallbacks import choose_fallbacks
from ...cluster.forwarded_exec import ForwardedExec
from ...cluster.quorum import (
    AckCounter,
    Coordinate,
    Forward,
    Level,
    Moved,
    Operation,
    Outcome,
    PlanCache,
    RequestPlan,
    route,
)
from ...cluster.ring import Member
from ...cluster.slots import key_slot
from ...cluster.view import ClusterView
from ...cluster.write_context import gathers_context
from ...commands.cluster_session import cmd_wait
from ...commands.control import ServerControl
from ...commands.session import Session
from ...commands.slot_check import first_key, request_keys
from ...commands.table import CommandSpec
from ...commands.wire import WireProtocol
from ...http.wire import HTTP
from ...protocol.integers import parse_int64
from ...protocol.replies import NO_REPLY, Error, NullArray
from ...store.engine import Job, Store
from ..dispatch import Dispatcher
from .forwarding import FORWARD, FORWARD_FAILED, BusSide, forward_label
from .hints import HintedHandoff
from .internal_tables import CLOCK_NAME, with_clock
from .link import LinkError
from .node import ClusterNode
from .read_quorum import NOREPLICAS_READ, ReadQuorum
from .fallback_sender import FallbackSender
from .replicator import PeerReplicator, SendNowait, repl_put
from .whole_cluster import whole_cluster
from .write_acks import LastWrite, Write, WriteBatch, WriteDeadlines

log = logging.getLogger(__name__)

# A watched key's clock when its first live member could not be asked:
# equal to no clock, so the transaction's EXEC answers a null array.
UNKNOWN_CLOCK = b"\x00unknown"

NOREPLICAS_WRITE = Error("NOREPLICAS Not enough good replicas to write.")
# What statistics() counts: write commands acknowledged / refused or not
# acked in time, read keys merged / refused, reads that repaired a member,
# requests forwarded and forwards whose link failed, requests refused
# before running (too few members up), (key, clock) pairs sent to a
# fallback under sloppy quorum and those it did not hold.
DATA_PATH_COUNTERS = (
    "writes_ok", "writes_noreplicas", "reads_ok", "reads_noreplicas", "reads_repaired",
    "forwarded", "forward_failed", "refused", "fallback_pairs", "fallback_failed",
)

class Coordinator:
    def __init__(self, node: ClusterNode, store: Store, control: ServerControl, dispatcher: Dispatcher) -> None:
        self.node = node
        self.store = store
        self.control = control
        self.dispatcher = dispatcher
        config = store.config
        self.write_quorum = config.cluster_write_quorum
        self.read_quorum = config.cluster_read_quorum
        self.timeout_seconds = config.cluster_write_timeout_seconds
        self.redirect = config.cluster_redirect
        # Sloppy quorum: a down preference-list member's share of a write goes
        # to a fallback that holds it as a hint and counts toward W.
        self.sloppy_quorum = config.cluster_sloppy_quorum
        self._fallback_sender: FallbackSender | None = None
        # Dynamo's get-then-put: a write first merges what R members hold of its key.
        self.write_context_read = config.cluster_write_context == "read"
        # The nursery of ``run``: reads ask their remote clocks in its tasks.
        self._nursery: trio.Nursery | None = None
        self._progress = trio.Event()
        # WAIT commands waiting on _progress now.
        self._waits = 0
        self.counts: dict[str, int] = defaultdict(int)
        self.reads = ReadQuorum(node, store, control, dispatcher, self.counts, self.timeout_seconds)
        self.bus_side = BusSide(store, control, dispatcher, self.client_job)
        # The plans of the last view seen (a new view, a new cache).
        self._plans_view: ClusterView | None = None
        self._plans: PlanCache | None = None
        # A session's level settings -> its Levels (parsed once).
        self._levels: dict[tuple[str | None, str | None, str | None], Levels] = {}
        # One replicator per peer, made on first use.
        self._replicators: dict[Member, PeerReplicator] = {}
        self._deadlines = WriteDeadlines(self.timeout_seconds)
        # Hinted handoff (serve.py sets it when it runs): the writes a
        # preference-list member missed, replayed when it is seen up.
        self.hints: HintedHandoff | None = None

    def statistics(self) -> dict[str, int]:
        """Quorum outcomes since start (INFO cluster, /metrics)."""
        return {name: self.counts.get(name, 0) for name in DATA_PATH_COUNTERS}

    def add_wire(self, wire: WireProtocol) -> None:
        """A protocol whose requests may be forwarded (HTTP registers itself)."""
        self.bus_side.add_wire(wire)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the write deadlines and the reads' remote asks; route the
        dispatcher's jobs here until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._deadlines.run)
            self.dispatcher.router = self.route
            self.node.data_path_statistics = self.statistics
            try:
                task_status.started()
                await trio.sleep_forever()
            finally:
                self.dispatcher.router = None

    def progressed(self) -> None:
        """An ack arrived: wake the WAITs (only they wait on this)."""
        if self._waits:
            event, self._progress = self._progress, trio.Event()
            event.set()

    # -- entry ---------------------------------------------------------------

    async def route(self, job: Job) -> None:
        """The dispatcher's router: a job from any connection."""
        session = job.session
        if session.peer is not None:
            await self.bus_side.bus_job(job)
            return
        settings = (session.cluster_consistency, session.cluster_write_level, session.cluster_read_level)
        level = self._levels.get(settings)
        if level is None:
            level = self.level_of(session)
            if len(self._levels) < 64:
                self._levels[settings] = level
        if len(job.requests) == 1 and await self._one_local(job, level):
            return
        await self.client_job(job, level)

    def plans(self, view: ClusterView) -> PlanCache:
        """The plan cache of ``view`` (made when the view changes)."""
        if view is not self._plans_view or self._plans is None:
            self._plans = PlanCache(view.ring, view.myself, view.up, write_quorum=self.write_quorum,
                                    read_quorum=self.read_quorum, sloppy=self.sloppy_quorum)
            self._plans_view = view
        return self._plans

    async def _one_local(self, job: Job, level: Levels) -> bool:
        """The common job, one request of one key this node replicates, from
        a plain connection: coordinated here without the batch planning
        (``client_job`` would come to the same). False: not that job."""
        session = job.session
        args = job.requests[0]
        if (not args or session.wire is HTTP or session.transaction.queued is not None
                or session.transaction.watched or session.reply_off or session.reply_skip
                or session.reply_skip_next):
            return False
        name = args[0].lower()
        spec = job.table.by_name.get(name)
        key = None if spec is None or name in SESSION_COMMANDS else first_key(spec, args)
        if key is None:
            return False
        plans = self.plans(self.node.view())
        slot = key_slot(key)
        if not plans.replicates(slot):
            return False
        if (spec is not None and spec.is_write and plans.plan(slot, level.write, Operation.WRITE).feasible
                and not gathers_context(args, write_context_read=self.write_context_read)):
            # A blind write that can reach its quorum: what _coordinate's
            # checks would conclude, without making them again.
            await self._run_and_replicate(job, level, plans)
            return True
        await self._coordinate(job, level, checks=True)
        return True

    @staticmethod
    def level_of(session: Session) -> Levels:
        """The connection's levels; an HTTP request's ``?w=&r=`` override them."""
        both = session.cluster_consistency or "QUORUM"
        return Levels(Level.parse(session.cluster_write_level or both), Level.parse(session.cluster_read_level or both))

    async def client_job(self, job: Job, level: Levels, *, forwarded: bool = False) -> None:
        session = job.session
        if not forwarded and session.wire is HTTP and all(
            args and args[0].lower() in (b"scan", b"dbsize") for args in job.requests
        ):
            job.replies = [await whole_cluster(self.node, self.dispatcher, job, args) for args in job.requests]
            return
        if forwarded:
            # A peer's forwarded requests run here whole (never forwarded again).
            await self._coordinate(job, level, checks=not self._has_session(job))
            return
        transaction = session.transaction
        if (transaction.queued is not None or transaction.watched or session.reply_off or session.reply_skip
                or self._has_session(job)):
            await self._connection_batch(job, level)
            return
        await self._routed(job, level)

    @staticmethod
    def _first_key(by_name: dict[bytes, CommandSpec], args: Sequence[bytes]) -> bytes | None:
        spec = by_name.get(args[0].lower()) if args else None
        return None if spec is None else first_key(spec, args)

    async def _routed(self, job: Job, level: Levels) -> Levels:
        """Run a batch without connection commands where each request's key
        says (``plan_batch``); the levels in force after its barriers."""
        view = self.node.view()
        by_name = job.table.by_name
        segments = plan_batch(
            job.requests, lambda args: self._first_key(by_name, args), view.ring, view.myself, view.up,
            redirect=self.redirect, whole_batch_local=False,
        )
        if len(segments) == 1 and segments[0].barrier_index is None and all(
            type(where) is Coordinate for where in segments[0].routes
        ):
            await self._coordinate(job, level, checks=True)
            return level
        replies: list[object] = [None] * len(job.requests)
        for segment in segments:
            await self._run_segment(job, segment, level, replies)
            if segment.barrier_index is not None:
                replies[segment.barrier_index] = await self._barrier(job, job.requests[segment.barrier_index])
                level = self.level_of(job.session)
        job.replies = replies
        return level

    # -- batches that touch the connection's state -----------------------------

    async def _connection_batch(self, job: Job, level: Levels) -> None:
        """A batch with a connection command (MULTI, WATCH, HELLO, CLIENT...)
        or while a transaction or a watch is open, in order: connection
        commands and MULTI's queueing run here (they touch no key); an EXEC
        runs here if this node replicates its slot, else goes whole to the
        slot's first live member (``_exec``); the other requests are routed
        by key as any batch's. CLIENT REPLY OFF/SKIP: the engine drops the
        replies of what runs here; ``_drop_filtered`` those of what ran
        elsewhere (a SKIP's request is routed alone, to know which it was)."""
        session = job.session
        requests = job.requests
        count = len(requests)
        replies: list[object] = [None] * count
        # HELLO/RESET in the batch: (batch index, RESP version from there on).
        changes: list[tuple[int, int]] = []
        position = 0
        while position < count:
            name = _name(requests[position])
            if session.transaction.queued is not None:
                if _is_exec(requests[position]):
                    replies[position] = await self._exec(job, position, level, changes)
                    position += 1
                    continue
                # Queued (QUEUED answers): up to EXEC, or the end of MULTI
                # (an EXEC with arguments is the engine's to refuse: it
                # discards the transaction, as DISCARD and RESET end it).
                end = position
                while end < count and not _is_exec(requests[end]):
                    end += 1
                    if _name(requests[end - 1]) in (b"discard", b"reset", b"exec"):
                        break
                await self._here(job, list(range(position, end)), level, replies, changes)
                position = end
                continue
            end = position
            while end < count and _name(requests[end]) not in SESSION_COMMANDS:
                end += 1
                if session.reply_skip:
                    break
            if end > position:
                sub = Job(session, job.table, requests[position:end], job.received_at, protocol=session.protocol)
                level = await self._routed(sub, level)
                replies[position:end] = sub.replies
                if session.reply_off or session.reply_skip:
                    for index in range(position, end):
                        replies[index] = self._drop_filtered(session, replies[index])
                position = end
                continue
            if name == b"watch":
                self._forget_unwatched(session)
            await self._here(job, [position], level, replies, changes)
            if name == b"watch" and type(replies[position]) is not Error:
                await self._watch_clocks(session, requests[position][1:])
            position += 1
        job.replies = replies
        if changes:
            job.protocol_changes = (job.protocol_changes or []) + changes

    async def _here(
        self, job: Job, indexes: list[int], level: Levels, replies: list[object], changes: list[tuple[int, int]],
    ) -> None:
        """Run ``indexes`` of ``job`` here as one job, unchecked (as a whole-local batch ran)."""
        sub = Job(job.session, job.table, [job.requests[i] for i in indexes], job.received_at,
                  protocol=job.session.protocol)
        await self._coordinate(sub, level, checks=False)
        for index, reply in zip(indexes, sub.replies):
            replies[index] = reply
        if sub.protocol_changes:
            changes += [(indexes[at], protocol) for at, protocol in sub.protocol_changes]

    @staticmethod
    def _drop_filtered(session: Session, reply: object) -> object:
        """CLIENT REPLY OFF/SKIP for a reply made elsewhere (forwarded, WAIT):
        the engine's rule (``store.engine._answer``); a reply the engine
        already dropped stays dropped (its SKIP is spent)."""
        if reply is NO_REPLY:
            return reply
        if session.reply_off:
            return NO_REPLY
        if session.reply_skip:
            session.reply_skip = False
            return NO_REPLY
        return reply

    @staticmethod
    def _forget_unwatched(session: Session) -> None:
        """Drop clocks of keys no longer watched (EXEC, DISCARD, UNWATCH, RESET since)."""
        clocks = session.cluster_watch_clocks
        if clocks:
            watched = session.transaction.watched
            for key in [key for key in clocks if key not in watched]:
                del clocks[key]

    async def _watch_clocks(self, session: Session, keys: Sequence[bytes]) -> None:
        """After WATCH: the clocks of the keys this node does not replicate,
        read from their first live member (where their EXEC will run)."""
        clocks = session.cluster_watch_clocks
        view = self.node.view()
        wanted = [
            key for key in keys
            if key not in clocks and view.myself not in view.ring.preference_list(key_slot(key))
        ]
        clocks.update(await self._first_member_clocks(wanted))

    async def _first_member_clocks(self, keys: Sequence[bytes]) -> dict[bytes, bytes | None]:
        """Each key's clock at its first live member; ``UNKNOWN_CLOCK`` where
        none answered (matches no clock: such a watch always breaks)."""
        view = self.node.view()
        per_member: dict[Member, list[bytes]] = defaultdict(list)
        found: dict[bytes, bytes | None] = {}
        for key in keys:
            live = [member for member in view.ring.preference_list(key_slot(key)) if member in view.up]
            if live:
                per_member[live[0]].append(key)
            else:
                found[key] = UNKNOWN_CLOCK
        for member, asked in per_member.items():
            try:
                answers: list[object] = await self.node.links[member].request_many(
                    [[b"TKV.REPL.GET", key] for key in asked]
                )
            except LinkError:
                answers = [UNKNOWN_CLOCK] * len(asked)
            for key, answer in zip(asked, answers):
                found[key] = answer if answer is None or type(answer) is bytes else UNKNOWN_CLOCK
        return found

    async def _exec(self, job: Job, index: int, level: Levels, changes: list[tuple[int, int]]) -> object:
        """EXEC of an open transaction: here when this node replicates the
        slot of its queued commands (or they have none, span slots, or the
        transaction failed: the engine answers), its writes replicated as
        every coordinated write; else whole to the slot's first live member
        as ``TKV.FORWARD.EXEC`` with the clocks of the watched keys this
        node does not replicate (or ``-MOVED``, the transaction discarded,
        with ``--cluster-redirect moved``)."""
        session = job.session
        transaction = session.transaction
        queued = transaction.queued or []
        self._forget_unwatched(session)
        clocks = dict(session.cluster_watch_clocks)
        session.cluster_watch_clocks.clear()
        view = self.node.view()
        slots = set()
        for spec, args in queued:
            key = self._first_key(job.table.by_name, args)
            if key is not None:
                slots.add(key_slot(key))
        where: object = LOCAL
        # A queued connection command (CLIENT REPLY, SELECT...) acts on this
        # connection: such a transaction runs here, as before forwarding.
        if len(slots) == 1 and not transaction.failed and not transaction.dirty and not any(
            _name(args) in SESSION_COMMANDS for _spec, args in queued
        ):
            slot = slots.pop()
            where = route(slot, view.ring.preference_list(slot), view.myself, view.up, redirect=self.redirect)
        if type(where) is Coordinate:
            if clocks and not transaction.dirty and await self._first_member_clocks(list(clocks)) != clocks:
                await self._discard_here(job)  # a watched key another node replicates changed
                return self._drop_filtered(session, NullArray())
            replies: list[object] = [None] * len(job.requests)
            await self._here(job, [index], level, replies, changes)
            return replies[index]
        if isinstance(where, Moved):
            await self._discard_here(job)
            return self._drop_filtered(session, Error(where.error))
        assert isinstance(where, Forward)
        forwarded = ForwardedExec(
            forward_label(session), level.encode(), tuple(clocks.items()), tuple(tuple(args) for _spec, args in queued),
        )
        self.counts["forwarded"] += 1
        try:
            answer = await self.node.links[where.to].request(forwarded.encode())
        except LinkError as error:
            self.counts["forward_failed"] += 1
            answer = Error(FORWARD_FAILED.format(peer=where.to.address, reason=error))
        await self._discard_here(job)  # it ran there (or is unknown): end it here
        if type(answer) is list and any(spec.is_write for spec, _args in queued):
            session.cluster_last_write = LastWrite([], self._known_replicas(level.write))
        return self._drop_filtered(session, answer)

    async def _discard_here(self, job: Job) -> None:
        """End this connection's transaction here (its queue ran elsewhere or
        not at all). Not a request of the client's: a CLIENT REPLY SKIP
        stays for EXEC's reply."""
        session = job.session
        skip = session.reply_skip, session.reply_skip_next
        await self.dispatcher.submit(Job(session, job.table, [[b"discard"]], job.received_at))
        session.reply_skip, session.reply_skip_next = skip

    @staticmethod
    def _has_session(job: Job) -> bool:
        return any(args and args[0].lower() in SESSION_COMMANDS for args in job.requests)

    async def _run_segment(self, job: Job, segment: Segment, level: Levels, replies: list[object]) -> None:
        local: list[int] = []
        forwards: dict[Member, list[int]] = defaultdict(list)
        for index, where in zip(segment.indexes, segment.routes):
            if isinstance(where, Moved):
                replies[index] = Error(where.error)
            elif isinstance(where, Forward):
                forwards[where.to].append(index)
            else:
                local.append(index)
        async with trio.open_nursery() as nursery:
            if local:
                nursery.start_soon(self._run_local, job, local, level, replies)
            for member, indexes in forwards.items():
                nursery.start_soon(self._forward, job, member, indexes, level, replies)

    async def _run_local(self, job: Job, indexes: list[int], level: Levels, replies: list[object]) -> None:
        sub = Job(job.session, job.table, [job.requests[i] for i in indexes], job.received_at, protocol=job.protocol)
        await self._coordinate(sub, level, checks=True)
        for index, reply in zip(indexes, sub.replies):
            replies[index] = reply

    async def _forward(self, job: Job, member: Member, indexes: list[int], level: Levels, replies: list[object]) -> None:
        label = forward_label(job.session)
        requests = [[FORWARD, label, level.encode(), *job.requests[i]] for i in indexes]
        self.counts["forwarded"] += len(requests)
        try:
            answers = await self.node.links[member].request_many(requests)
        except LinkError as error:
            self.counts["forward_failed"] += len(requests)
            failed = Error(FORWARD_FAILED.format(peer=member.address, reason=error))
            answers = [failed] * len(requests)
        known = 0
        from_bus = job.session.wire.reply_from_bus
        for index, answer in zip(indexes, answers):
            answer = replies[index] = from_bus(answer)
            spec = job.table.by_name.get(job.requests[index][0].lower())
            if spec is not None and spec.is_write and type(answer) is not Error:
                known = max(known, self._known_replicas(level.write))
        if known:
            job.session.cluster_last_write = LastWrite([], known)

    def _known_replicas(self, level: Level) -> int:
        needed = {Level.ONE: 1, Level.QUORUM: self.write_quorum, Level.ALL: len(self.node.ring.members)}[level]
        return max(0, min(needed, len(self.node.ring.members)) - 1)

    # -- coordinating here -----------------------------------------------------

    async def _coordinate(self, job: Job, level: Levels, *, checks: bool) -> None:
        """Run ``job`` here as the coordinator of its keys: refuse requests
        that cannot reach their quorum, run the rest in one hop (each read
        of a key other members must confirm preceded by a read of the key's
        clock, under the same lock hold) while the other members' clocks
        are asked, repair stale members, replicate the writes and wait for
        their acks."""
        view = self.node.view()
        myself = view.myself
        plans = self.plans(view)
        refused: dict[int, Error] = {}
        reads: dict[int, tuple[bytes, RequestPlan]] = {}
        # Non-blind writes (every write with --cluster-write-context read): the keys' versions to gather first.
        gather: dict[int, list[tuple[bytes, RequestPlan]]] = {}
        if checks:
            by_name = job.table.by_name
            for index, args in enumerate(job.requests):
                spec = by_name.get(args[0].lower())
                if spec is None:
                    continue
                key = first_key(spec, args)
                if key is None:
                    continue
                slot = key_slot(key)
                if not plans.replicates(slot):
                    continue
                if spec.is_write:
                    plan = plans.plan(slot, level.write, Operation.WRITE)
                    if not plan.feasible:
                        refused[index] = NOREPLICAS_WRITE
                    elif gathers_context(args, write_context_read=self.write_context_read):
                        context = plans.plan(slot, level.read, Operation.READ)
                        if not context.feasible:
                            refused[index] = NOREPLICAS_WRITE
                        elif context.targets != (myself,):
                            gather[index] = [(each, context) for each in request_keys(spec, args)]
                else:
                    plan = plans.plan(slot, level.read, Operation.READ)
                    if not plan.feasible:
                        refused[index] = NOREPLICAS_READ
                    elif plan.targets != (myself,):
                        reads[index] = (key, plan)
        if gather:
            for index in await self.reads.gather_context(gather, myself):
                refused[index] = NOREPLICAS_WRITE
        if not refused and not reads:
            await self._run_and_replicate(job, level, plans)
            return
        self.counts["refused"] += len(refused)
        # The job that runs: refused requests left out, a clock read before each quorum read.
        requests: list[list[bytes]] = []
        positions: dict[int, int] = {}
        clock_positions: dict[int, int] = {}
        for index, args in enumerate(job.requests):
            if index in refused:
                continue
            if index in reads:
                clock_positions[index] = len(requests)
                requests.append([CLOCK_NAME, reads[index][0]])
            positions[index] = len(requests)
            requests.append(args)
        table = with_clock(job.table)
        run = Job(job.session, table, requests, job.received_at, protocol=job.protocol)
        remote: dict[bytes, dict[Member, bytes | None]] = {key: {} for key, _ in reads.values()}
        # The other members are asked in a task of this coordinator's nursery
        # while the job runs here (no nursery of its own per read).
        assert self._nursery is not None
        asked = self.reads.start_remote_clocks(self._nursery, reads, myself, remote) if reads else None
        await self._run_and_replicate(run, level, plans)
        if asked is not None:
            await asked.wait()
        replies: list[object] = [None] * len(job.requests)
        for index, error in refused.items():
            replies[index] = error
        for index, position in positions.items():
            replies[index] = run.replies[position] if position < len(run.replies) else None
        if reads:
            local = {
                index: run.replies[position] for index, position in clock_positions.items()
                if position < len(run.replies)
            }
            rerun = await self.reads.settle_reads(reads, local, remote, myself, replies)
            if rerun:
                again = Job(job.session, job.table, [job.requests[i] for i in rerun], job.received_at,
                            protocol=job.protocol)
                await self.dispatcher.submit(again)
                for index, reply in zip(rerun, again.replies):
                    replies[index] = reply
        job.replies = replies

    async def _run_and_replicate(self, job: Job, level: Levels, plans: PlanCache) -> None:
        if not job.requests:
            return
        job.version_deltas = []
        # The batch and (reply index, its Writes), once the writes are sent.
        sent: tuple[WriteBatch, list[tuple[int, list[Write]]]] | None = None
        # Whether hold() ran: the local ack is counted.
        counted = False

        def applied() -> None:
            # The hop ended and the log flushes here: send now, so the
            # replicas' flushes overlap this node's (unless hold, called
            # when a flush that ended meanwhile was seen, sent them first).
            nonlocal sent
            if sent is None:
                sent = self._replicate(job, level.write, plans)

        def hold(wake: Callable[[], None]) -> bool:
            # The writes are durable here (or refused): count the local ack,
            # and keep this task parked in the dispatcher until the batch is
            # decided (one wakeup per write: no second wait of our own).
            nonlocal sent, counted
            if sent is None:
                # No log wait here (memory only, or already durable): send now.
                sent = self._replicate(job, level.write, plans)
            counted = True
            batch = self._acked_here(job, sent, plans.local)
            if batch is None or batch.is_decided:
                return False
            self._deadlines.add(batch)
            batch.on_decided = wake
            return True

        await self.dispatcher.submit(job, on_applied=applied, hold=hold)
        if not counted:
            # The dispatcher did not call hold (this task was cancelled
            # while its job ran): the job ran, so its writes are replicated
            # all the same; then the cancellation ends the wait.
            if sent is None:
                sent = self._replicate(job, level.write, plans)
            batch = self._acked_here(job, sent, plans.local)
            if batch is not None and not batch.is_decided:
                self._deadlines.add(batch)
                await batch.decided.wait()
        assert sent is not None  # hold() or the lines above sent it
        _batch, by_reply = sent
        for reply_index, writes in by_reply:
            ok = True
            for write in writes:
                if write.counter.outcome is Outcome.PENDING:
                    write.counter.deadline_passed()
                ok = ok and write.counter.outcome is Outcome.SUCCESS
            if ok:
                self.counts["writes_ok"] += 1
            else:
                self.counts["writes_noreplicas"] += 1
                if reply_index < len(job.replies):
                    job.replies[reply_index] = NOREPLICAS_WRITE

    @staticmethod
    def _acked_here(job: Job, sent: tuple[WriteBatch, list[tuple[int, list[Write]]]],
                    myself: Member) -> WriteBatch | None:
        """The dispatcher's hop and log wait ended: the writes are durable
        here (the local ack); the batch to wait for (None: no writes)."""
        batch, by_reply = sent
        if not by_reply:
            return None
        for _reply_index, writes in by_reply:
            for write in writes:
                if write.here:
                    write.acked_here(myself)
        job.session.cluster_last_write = LastWrite(batch.writes)
        batch.check()
        return batch

    def _replicate(self, job: Job, write_level: Level,
                   plans: PlanCache) -> tuple[WriteBatch, list[tuple[int, list[Write]]]]:
        """Send the keys ``job``'s writes changed (``Job.version_deltas``)
        to the other members of their preference lists: one Write per
        (write command, preference list), each peer's requests as one batch
        (replicator.py); the batch of those Writes and (reply index, its
        Writes). This node's own ack is the caller's to record."""
        batch = WriteBatch()
        myself = plans.local
        by_reply: list[tuple[int, list[Write]]] = []
        # Per peer: the (key, clock) pairs this job owes it, and the Write of each.
        outgoing: dict[Member, tuple[list[tuple[bytes, bytes]], list[Write]]] = {}
        # Per preference-list member believed down: the requests to hint for it.
        hinted: dict[Member, list[bytes]] | None = None
        # Sloppy quorum, per (fallback, down member): the pairs and their Writes.
        diverted: dict[tuple[Member, Member], tuple[list[tuple[bytes, bytes]], list[Write]]] | None = None
        hints = self.hints
        progressed = self.progressed
        for reply_index, pairs in job.version_deltas or ():
            groups: dict[int, Write] = {}
            writes: list[Write] = []
            for key, clock in pairs:
                plan = plans.plan(key_slot(key), write_level, Operation.WRITE)
                write = groups.get(id(plan))
                if write is None:
                    counter = AckCounter(plan)
                    counter.take_sends()
                    write = groups[id(plan)] = Write(counter, progressed, batch, here=myself in plan.targets)
                    writes.append(write)
                    if plan.fallbacks:
                        write.stand_ins = dict(plan.fallbacks)
                pair = (key, clock)
                owed = write.owed
                for member in plan.targets:
                    if member != myself:
                        owed[member] = owed.get(member, 0) + 1
                        sending = outgoing.get(member)
                        if sending is None:
                            sending = outgoing[member] = ([], [])
                        sending[0].append(pair)
                        sending[1].append(write)
                if plan.fallbacks:
                    # Sloppy quorum: a down member's share goes to its fallback, as a hint for it.
                    if diverted is None:
                        diverted = {}
                    for member, fallback in plan.fallbacks:
                        owed[member] = owed.get(member, 0) + 1
                        sending = diverted.get((fallback, member))
                        if sending is None:
                            sending = diverted[(fallback, member)] = ([], [])
                        sending[0].append(pair)
                        sending[1].append(write)
                if plan.skipped and hints is not None:
                    if hinted is None:
                        hinted = defaultdict(list)
                    request = repl_put(key, clock)
                    for member in plan.skipped:
                        hinted[member].append(request)
            by_reply.append((reply_index, writes))
        if hinted is not None and hints is not None:
            for member, requests in hinted.items():
                hints.hint(member, requests)
        # Sent once every Write is counted in the batch (a refusal decides at once).
        sloppy = self.sloppy_quorum
        for member, (pairs, writes) in outgoing.items():
            if not self._replicator(member).send(pairs, writes, hint_refused=not sloppy):
                if sloppy:
                    # Refused (not connected, queue full): its share goes to fallbacks instead.
                    if diverted is None:
                        diverted = {}
                    self._divert(member, pairs, writes, plans, diverted)
                else:
                    for write in writes:
                        write.answered(member, False)
        if diverted is not None:
            sender = self._fallbacks()
            for (fallback, member), (pairs, writes) in diverted.items():
                sender.send(fallback, member, pairs, writes)
        return batch, by_reply

    def _divert(
        self, member: Member, pairs: list[tuple[bytes, bytes]], writes: list[Write], plans: PlanCache,
        diverted: dict[tuple[Member, Member], tuple[list[tuple[bytes, bytes]], list[Write]]],
    ) -> None:
        """Sloppy quorum: ``member`` refused or failed ``pairs``; give each to
        its write's fallback for ``member`` (``Write.stand_ins``; chosen on
        first need by ``fallbacks.choose_fallbacks``: the next healthy node
        of the partition's walk that stands in for no other member of that
        write), adding to ``diverted``; a pair with none counts failed and
        is hinted here."""
        unplaced: list[tuple[bytes, bytes]] = []
        for pair, write in zip(pairs, writes):
            stand_ins = write.stand_ins
            if stand_ins is None:
                stand_ins = write.stand_ins = {}
            fallback = stand_ins.get(member)
            if fallback is None:
                slot = key_slot(pair[0])
                chosen = choose_fallbacks(plans.fallback_walk(slot), (member,), plans.up, plans.local,
                                          taken=set(stand_ins.values()))
                if not chosen:
                    write.answered(member, False)
                    unplaced.append(pair)
                    continue
                fallback = stand_ins[member] = chosen[0][1]
            sending = diverted.get((fallback, member))
            if sending is None:
                sending = diverted[(fallback, member)] = ([], [])
            sending[0].append(pair)
            sending[1].append(write)
        if unplaced:
            self._replicator(member).hint(unplaced)

    def _divert_failed(self, member: Member, pairs: list[tuple[bytes, bytes]], writes: list[Write]) -> None:
        """Sloppy quorum: ``member``'s link failed with ``pairs`` queued or in
        flight (the replicator's ``divert``): to fallbacks, under the current view."""
        diverted: dict[tuple[Member, Member], tuple[list[tuple[bytes, bytes]], list[Write]]] = {}
        self._divert(member, pairs, writes, self.plans(self.node.view()), diverted)
        sender = self._fallbacks()
        for (fallback, target), (fallback_pairs, fallback_writes) in diverted.items():
            sender.send(fallback, target, fallback_pairs, fallback_writes)

    def _fallbacks(self) -> FallbackSender:
        """The sloppy quorum's sender (made on first use)."""
        if self._fallback_sender is None:
            links = self.node.links

            def send_nowait(member: Member) -> SendNowait | None:
                link = links.get(member)
                return None if link is None else link.send_nowait

            self._fallback_sender = FallbackSender(
                send_nowait, None if self.hints is None else self.hints.hint, self.counts
            )
        return self._fallback_sender

    def _replicator(self, member: Member) -> PeerReplicator:
        """``member``'s replicator (made on first use)."""
        replicator = self._replicators.get(member)
        if replicator is None:
            hint = None if self.hints is None else self.hints.hint
            divert = self._divert_failed if self.sloppy_quorum else None
            replicator = self._replicators[member] = PeerReplicator(
                member, self.node.links[member].send_nowait, hint, divert
            )
        return replicator

    # -- barriers ---------------------------------------------------------------

    async def _barrier(self, job: Job, args: list[bytes]) -> object:
        if args[0].lower() == b"wait":
            return await self._wait(job.session, args)
        sub = Job(job.session, job.table, [args], job.received_at, protocol=job.protocol)
        await self.dispatcher.submit(sub)  # TKV.CONSISTENCY: its handler sets the level
        return sub.replies[0] if sub.replies else None

    async def _wait(self, session: Session, args: list[bytes]) -> object:
        checked = cmd_wait(session, args)
        if type(checked) is Error or len(args) != 3:
            return checked
        wanted = parse_int64(args[1]) or 0
        timeout_ms = parse_int64(args[2]) or 0
        last = session.cluster_last_write
        myself = self.node.myself
        if not isinstance(last, LastWrite):
            return 0
        deadline = trio.current_time() + timeout_ms / 1000 if timeout_ms else float("inf")
        self._waits += 1
        try:
            with trio.move_on_at(deadline):
                while last.replicas(myself) < wanted:
                    await self._progress.wait()
        finally:
            self._waits -= 1
        return last.replicas(myself)

def _name(args: Sequence[bytes]) -> bytes:
    return args[0].lower() if args else b""


def _is_exec(args: Sequence[bytes]) -> bool:
    return len(args) == 1 and args[0].lower() == b"exec"


__all__ = ["Coordinator", "NOREPLICAS_WRITE", "NOREPLICAS_READ", "CommandSpec"]
