"""The coordinator: the cluster's data path for every client request.

The dispatcher's ``router`` (set while the cluster runs) sends every job
here instead of straight to the workers. A client's batch is split by
``cluster.batch.plan_batch``: requests for keys this node replicates are
coordinated here, the others are forwarded whole (``TKV.FORWARD``) to
their key's first live member or answered ``-MOVED``; replies go back in
the batch's order. Batching: the local requests of a batch make one job
(one worker hop), the forwards make one ``request_many`` per peer, the
replication of a batch's writes one ``request_many`` per peer.

Writes (``_coordinate``): a write whose preference list has too few live
members is answered ``-NOREPLICAS`` before it runs anywhere
(``AckCounter``'s IMPOSSIBLE). Otherwise it runs here through the normal
dispatcher, which returns only once its log record is durable under this
node's fsync policy (the local ack); the keys its unit changed
(``Job.version_deltas``) go to the other live preference-list members as
``TKV.REPL.PUT key clock`` (each replica acks after its own log flush).
The client waits for W acks (level ONE/QUORUM/ALL) within
``--cluster-write-timeout``: the ``move_on_after`` is around that wait
only, never around a send or receive; the replication itself runs in this
coordinator's own nursery, so it always finishes (late acks still count,
for WAIT). A write not acked in time is answered ``-NOREPLICAS Not
enough good replicas to write.``: it may still have happened (here, and on
the replicas that got it), so a client must treat it as unknown.

With ``--cluster-write-context read`` a write first merges the versions
R members hold of its key into this node's copy (one round trip and one
local merge more), so it supersedes them all: a DEL or INCR on a
coordinator that missed writes then acts on the merged state.

Reads: the clocks of the read keys are asked of R members (this node
first), merged with DVVSet sync; members whose clock does not dominate the
merge are repaired (``TKV.REPL.PUT``, this node's copy first, through the
dispatcher) before the read command runs here on the merged state, so
every read command sees it. Too few replies: ``-NOREPLICAS Not enough good
replicas to read.``

The bus side: ``TKV.FORWARD wire level cmd...`` from a peer is coordinated
here as a client request would be (never forwarded again: no loops), with
a session of its own per bus connection and wire.
"""

from __future__ import annotations

import copy
import logging
import secrets
import weakref
from collections import defaultdict
from collections.abc import Sequence

import trio

from ...cluster import dvvset
from ...cluster.batch import SESSION_COMMANDS, Levels, Segment, plan_batch
from ...cluster.quorum import (
    AckCounter,
    Coordinate,
    Forward,
    Level,
    Moved,
    Operation,
    Outcome,
    RequestPlan,
    merge_replies,
    plan_request,
)
from ...cluster.ring import Member
from ...cluster.slots import key_slot
from ...commands.cluster_session import cmd_wait
from ...commands.control import ServerControl
from ...commands.peer import repl
from ...commands.peer.access import Access, allowed
from ...commands.session import Session
from ...commands.table import CommandSpec, CommandTable, InMulti, Lock
from ...commands.wire import LINE, RESP, WireProtocol
from ...http.wire import HTTP
from ...protocol.integers import parse_int64
from ...protocol.replies import Error
from ...store.engine import Job, Store
from ..client_session import next_client_id
from ..dispatch import Dispatcher
from .link import LinkError
from .node import ClusterNode

log = logging.getLogger(__name__)

NOREPLICAS_WRITE = Error("NOREPLICAS Not enough good replicas to write.")
NOREPLICAS_READ = Error("NOREPLICAS Not enough good replicas to read.")
FORWARD = b"tkv.forward"
# What statistics() counts: write commands acknowledged / refused or not
# acked in time, read keys merged / refused, reads that repaired a member,
# requests forwarded and forwards whose link failed, requests refused
# before running (too few members up).
DATA_PATH_COUNTERS = (
    "writes_ok", "writes_noreplicas", "reads_ok", "reads_noreplicas", "reads_repaired",
    "forwarded", "forward_failed", "refused",
)
FORWARD_FAILED = "TRYAGAIN forwarding to {peer} failed: {reason}"

# Tables that run internal requests (a local read repair).
_INTERNAL = CommandTable(
    repl.SPECS,
    unknown_command=lambda args: Error("ERR unknown command"),
    wrong_arity=lambda spec: Error("ERR wrong number of arguments"),
)


# A read of a key's clock, run in the same hop (and lock hold) as the read
# after it; a per-process random name, in a copy of the client's table
# only the coordinator's jobs use (a client cannot name it).
_CLOCK_NAME = b"tkv.clock-" + secrets.token_hex(8).encode()


def _cmd_clock(session: Session, args: list[bytes]) -> object:
    versions = session.store.versions
    return None if versions is None else versions.clock_of(args[1])


_CLOCK_SPEC = CommandSpec(
    name=_CLOCK_NAME.decode(), arity=2, lock=Lock.READ, flags=("no_auth",), in_multi=InMulti.RUN, since=None,
    group="cluster", handler=_cmd_clock, summary="The coordinator's clock read (internal)",
)
_WITH_CLOCK: dict[int, CommandTable] = {}


def _with_clock(table: CommandTable) -> CommandTable:
    """``table`` plus the clock read (one copy per table, kept)."""
    extended = _WITH_CLOCK.get(id(table))
    if extended is None:
        extended = copy.copy(table)
        extended.specs = {**table.specs, _CLOCK_SPEC.name: _CLOCK_SPEC}
        extended.by_name = {**table.by_name, _CLOCK_NAME: _CLOCK_SPEC}
        _WITH_CLOCK[id(table)] = extended
    return extended


def _dominates(a: dvvset.Clock, b: dvvset.Clock) -> bool:
    return dvvset.equal(a, b) or dvvset.less(b, a)


class _Write:
    """One write command's replication to one preference list: its ack
    counter and the requests each peer still owes an answer for."""

    __slots__ = ("counter", "owed", "failed", "coordinator", "batch")

    def __init__(self, counter: AckCounter, coordinator: Coordinator, batch: _Batch) -> None:
        self.counter = counter
        self.owed: dict[Member, int] = defaultdict(int)
        self.failed: set[Member] = set()
        self.coordinator = coordinator
        # The batch whose client waits for this write (woken when all are decided).
        self.batch = batch

    def answered(self, member: Member, ok: bool) -> None:
        if not ok:
            self.failed.add(member)
        self.owed[member] -= 1
        if self.owed[member] == 0:
            if member in self.failed:
                self.counter.failed(member)
            else:
                self.counter.ok(member)
        self.batch.check()
        self.coordinator.progressed()

    def remote_acks(self, myself: Member) -> int:
        return sum(1 for member in self.counter.replies if member != myself and member not in self.failed
                   and self.owed[member] == 0)


class _Batch:
    """One job's writes: its client waits on ``decided`` (one event per
    batch, so an ack wakes only the client it concerns)."""

    __slots__ = ("writes", "decided")

    def __init__(self) -> None:
        self.writes: list[_Write] = []
        self.decided = trio.Event()

    def check(self) -> None:
        if not self.decided.is_set() and all(w.counter.outcome is not Outcome.PENDING for w in self.writes):
            self.decided.set()


class _LastWrite:
    """What WAIT counts for a connection: its last batch's writes."""

    __slots__ = ("writes", "known")

    def __init__(self, writes: list[_Write], known: int = 0) -> None:
        self.writes = writes
        # A forwarded write acknowledged OK: at least this many replicas
        # (its coordinator counted them; this node cannot see more).
        self.known = known

    def replicas(self, myself: Member) -> int:
        counts = [write.remote_acks(myself) for write in self.writes]
        if self.known:
            counts.append(self.known)
        return min(counts) if counts else 0


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
        # Dynamo's get-then-put: a write first merges what R members hold of its key.
        self.write_context_read = config.cluster_write_context == "read"
        self._nursery: trio.Nursery | None = None
        self._progress = trio.Event()
        # WAIT commands waiting on _progress now.
        self._waits = 0
        # The session forwarded requests from one bus connection run in, per wire.
        self._forward_sessions: weakref.WeakKeyDictionary[Session, dict[str, Session]] = weakref.WeakKeyDictionary()
        self.counts: dict[str, int] = defaultdict(int)
        self._wires = {RESP.label: RESP, LINE.label: LINE, HTTP.label: HTTP}

    def statistics(self) -> dict[str, int]:
        """Quorum outcomes since start (INFO cluster, /metrics)."""
        return {name: self.counts.get(name, 0) for name in DATA_PATH_COUNTERS}

    def add_wire(self, wire: WireProtocol) -> None:
        """A protocol whose requests may be forwarded (HTTP registers itself)."""
        self._wires[wire.label] = wire

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the replication tasks; route the dispatcher's jobs here until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
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
        if job.session.peer is not None:
            await self._bus_job(job)
        else:
            await self.client_job(job, self.level_of(job.session))

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
            job.replies = [await self._whole_cluster(job, args) for args in job.requests]
            return
        transaction = session.transaction
        filtering = session.reply_off or session.reply_skip or session.reply_skip_next
        view = self.node.view()
        by_name = job.table.by_name

        def key_of(args: Sequence[bytes]) -> bytes | None:
            spec = by_name.get(args[0].lower()) if args else None
            if spec is None or spec.first_key <= 0 or len(args) <= spec.first_key:
                return None
            return args[spec.first_key]

        whole = forwarded or filtering or transaction.queued is not None or bool(transaction.watched)
        segments = plan_batch(
            job.requests, key_of, view.ring, view.myself, view.up, redirect=self.redirect, whole_batch_local=whole
        )
        if len(segments) == 1 and segments[0].barrier_index is None and all(
            type(where) is Coordinate for where in segments[0].routes
        ):
            await self._coordinate(job, level, checks=not (whole and not forwarded) and not self._has_session(job))
            return
        replies: list[object] = [None] * len(job.requests)
        for segment in segments:
            await self._run_segment(job, segment, level, replies)
            if segment.barrier_index is not None:
                replies[segment.barrier_index] = await self._barrier(job, job.requests[segment.barrier_index])
                level = self.level_of(session)
        job.replies = replies

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
        label = job.session.wire.label.encode()
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
            job.session.cluster_last_write = _LastWrite([], known)

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
        myself, up, ring = view.myself, view.up, view.ring
        refused: dict[int, Error] = {}
        reads: dict[int, tuple[bytes, RequestPlan]] = {}
        # --cluster-write-context read: the write keys' versions to gather first.
        gather: dict[int, tuple[bytes, RequestPlan]] = {}
        if checks:
            by_name = job.table.by_name
            for index, args in enumerate(job.requests):
                spec = by_name.get(args[0].lower())
                if spec is None or spec.first_key <= 0 or len(args) <= spec.first_key:
                    continue
                key = args[spec.first_key]
                preference = ring.preference_list(key_slot(key))
                if myself not in preference:
                    continue
                operation = Operation.WRITE if spec.is_write else Operation.READ
                plan = plan_request(
                    preference, myself, up, level.of(operation), operation,
                    write_quorum=self.write_quorum, read_quorum=self.read_quorum,
                )
                if not plan.feasible:
                    refused[index] = NOREPLICAS_WRITE if spec.is_write else NOREPLICAS_READ
                elif operation is Operation.READ and plan.targets != (myself,):
                    reads[index] = (key, plan)
                elif operation is Operation.WRITE and self.write_context_read:
                    gather[index] = (key, plan_request(
                        preference, myself, up, level.read, Operation.READ,
                        write_quorum=self.write_quorum, read_quorum=self.read_quorum,
                    ))
        if gather:
            await self._gather_context(gather, myself)
        if not refused and not reads:
            await self._run_and_replicate(job, level, myself, up, ring)
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
                requests.append([_CLOCK_NAME, reads[index][0]])
            positions[index] = len(requests)
            requests.append(args)
        table = _with_clock(job.table)
        run = Job(job.session, table, requests, job.received_at, protocol=job.protocol)
        remote: dict[bytes, dict[Member, bytes | None]] = {key: {} for key, _ in reads.values()}
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._run_and_replicate, run, level, myself, up, ring)
            if reads:
                nursery.start_soon(self._remote_clocks, reads, myself, remote)
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
            rerun = await self._settle_reads(reads, local, remote, myself, replies)
            if rerun:
                again = Job(job.session, job.table, [job.requests[i] for i in rerun], job.received_at,
                            protocol=job.protocol)
                await self.dispatcher.submit(again)
                for index, reply in zip(rerun, again.replies):
                    replies[index] = reply
        job.replies = replies

    async def _run_and_replicate(self, job: Job, level: Levels, myself: Member, up, ring) -> None:
        if not job.requests:
            return
        job.version_deltas = []
        await self.dispatcher.submit(job)
        deltas = job.version_deltas
        if not deltas:
            return
        # One _Write per (write command, preference list); requests per peer.
        per_peer: dict[Member, list[list[bytes]]] = defaultdict(list)
        per_peer_writes: dict[Member, list[_Write]] = defaultdict(list)
        by_reply: dict[int, list[_Write]] = defaultdict(list)
        batch = _Batch()
        all_writes = batch.writes
        for reply_index, pairs in deltas:
            groups: dict[tuple[Member, ...], _Write] = {}
            for key, clock in pairs:
                preference = ring.preference_list(key_slot(key))
                write = groups.get(preference)
                if write is None:
                    plan = plan_request(
                        preference, myself, up, level.write, Operation.WRITE,
                        write_quorum=self.write_quorum, read_quorum=self.read_quorum,
                    )
                    counter = AckCounter(plan)
                    counter.take_sends()
                    write = groups[preference] = _Write(counter, self, batch)
                    if myself in plan.targets:
                        counter.ok(myself)  # the dispatcher returned: durable here
                    by_reply[reply_index].append(write)
                    all_writes.append(write)
                for member in write.counter.asked:
                    if member != myself:
                        per_peer[member].append([b"TKV.REPL.PUT", key, clock])
                        per_peer_writes[member].append(write)
                        write.owed[member] += 1
        assert self._nursery is not None
        for member, requests in per_peer.items():
            self._nursery.start_soon(self._replicate, member, requests, per_peer_writes[member])
        job.session.cluster_last_write = _LastWrite(all_writes)
        batch.check()
        with trio.move_on_after(self.timeout_seconds):
            await batch.decided.wait()
        for reply_index, writes in by_reply.items():
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

    async def _replicate(self, member: Member, requests: list[list[bytes]], writes: list[_Write]) -> None:
        """Send a batch's states to one peer; record each answer (late ones too)."""
        try:
            answers: list[object] = await self.node.links[member].request_many(requests)
        except LinkError:
            answers = [None] * len(requests)
        for write, answer in zip(writes, answers):
            write.answered(member, answer is not None and type(answer) is not Error)

    # -- reads -------------------------------------------------------------------

    async def _remote_clocks(
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

    async def _gather_context(self, gather: dict[int, tuple[bytes, RequestPlan]], myself: Member) -> None:
        """Before writes (--cluster-write-context read): merge the other read
        targets' versions of each write key into this node's copy, so the
        write supersedes everything they hold (a DEL of a key this node
        missed deletes it everywhere)."""
        remote: dict[bytes, dict[Member, bytes | None]] = {key: {} for key, _ in gather.values()}
        await self._remote_clocks(gather, myself, remote)
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

    async def _settle_reads(
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
        job = Job(session, _INTERNAL, puts, trio.current_time())
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

    # -- HTTP /keys: the whole cluster ---------------------------------------------

    async def _whole_cluster(self, job: Job, args: list[bytes]) -> object:
        """HTTP's SCAN and DBSIZE over every live member, each answering for
        the partitions it is first for. SCAN's cursor is the member's own
        cursor times the member count plus the member's index (in ring
        order): 0 starts at the first member and means "done"."""
        view = self.node.view()
        members = view.ring.members
        count = len(members)
        if args[0].lower() == b"dbsize":
            totals = [await self._run_on(job, member, args) for member in members if member in view.up]
            errors = [total for total in totals if type(total) is Error]
            return errors[0] if errors else sum(total for total in totals if isinstance(total, int))
        if len(args) < 2 or not args[1].isdigit():
            return await self._run_on(job, view.myself, args)
        index, cursor = int(args[1]) % count, int(args[1]) // count
        while True:
            if members[index] not in view.up:
                reply: object = [b"0", []]
            else:
                reply = await self._run_on(job, members[index], [args[0], b"%d" % cursor, *args[2:]])
            if type(reply) is Error or not isinstance(reply, list) or len(reply) != 2:
                return reply
            next_cursor = int(reply[0])
            if next_cursor:
                return [b"%d" % (next_cursor * count + index), reply[1]]
            if index + 1 == count:
                return [b"0", reply[1]]
            if reply[1] or members[index + 1] in view.up:
                return [b"%d" % (index + 1), reply[1]]
            index, cursor = index + 1, 0

    async def _run_on(self, job: Job, member: Member, args: list[bytes]) -> object:
        """One keyless request on ``member`` (here, or forwarded)."""
        if member == self.node.myself:
            sub = Job(job.session, job.table, [args], job.received_at, protocol=job.protocol)
            await self.dispatcher.submit(sub)
            return sub.replies[0] if sub.replies else None
        try:
            return await self.node.links[member].request(
                [FORWARD, job.session.wire.label.encode(), b"QUORUM", *args]
            )
        except LinkError as error:
            return Error(FORWARD_FAILED.format(peer=member.address, reason=error))

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
        if not isinstance(last, _LastWrite):
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

    # -- the bus side --------------------------------------------------------------

    async def _bus_job(self, job: Job) -> None:
        session = job.session
        forwards: dict[tuple[bytes, bytes], list[int]] = defaultdict(list)
        local: list[int] = []
        for index, args in enumerate(job.requests):
            if len(args) >= 4 and args[0].lower() == FORWARD and allowed(session, Access.PEER):
                forwards[(args[1], args[2])].append(index)
            else:
                local.append(index)
        if not forwards:
            await self.dispatcher.submit(job)
            return
        replies: list[object] = [None] * len(job.requests)

        async def run_local() -> None:
            sub = Job(session, job.table, [job.requests[i] for i in local], job.received_at, protocol=job.protocol)
            await self.dispatcher.submit(sub)
            for index, reply in zip(local, sub.replies):
                replies[index] = reply

        async def run_forwarded(label: bytes, level_text: bytes, indexes: list[int]) -> None:
            wire = self._wires.get(label.decode(errors="replace"))
            try:
                level = Levels.parse(level_text.decode(errors="replace"))
            except ValueError:
                wire = None
            if wire is None:
                for index in indexes:
                    replies[index] = Error("ERR TKV.FORWARD: unknown wire or level")
                return
            forward_session = self._forward_session(session, wire)
            sub = Job(forward_session, wire.table, [job.requests[i][3:] for i in indexes], job.received_at)
            await self.client_job(sub, level, forwarded=True)
            for index, reply in zip(indexes, sub.replies):
                replies[index] = wire.reply_to_bus(reply)

        async with trio.open_nursery() as nursery:
            if local:
                nursery.start_soon(run_local)
            for (label, level_text), indexes in forwards.items():
                nursery.start_soon(run_forwarded, label, level_text, indexes)
        job.replies = replies

    def _forward_session(self, bus_session: Session, wire: WireProtocol) -> Session:
        sessions = self._forward_sessions.setdefault(bus_session, {})
        session = sessions.get(wire.label)
        if session is None:
            session = Session(
                next_client_id(), self.store, self.control, wire=wire,
                address=bus_session.address, local_address=bus_session.local_address,
            )
            session.authenticated = True
            sessions[wire.label] = session
        return session


__all__ = ["Coordinator", "NOREPLICAS_WRITE", "NOREPLICAS_READ", "CommandSpec"]
