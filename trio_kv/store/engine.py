"""The engine: the function one worker-thread hop runs.

``run_batch`` is the only code that runs on worker threads. It gets the
requests of many connections at once (group dispatch) and answers each
connection's requests in that connection's order: admission (``_admit``:
lookup, arity, NOAUTH, cluster mode's CROSSSLOT, OOM, MULTI's queue,
refused writes), then execution (``_execute_job``: lock, handler, stats,
SLOWLOG, the end of a write's effects unit), with an inline fast path for
a request outside MULTI that nothing refuses. The rules of MULTI/WATCH are ``commands.transactions``'s;
effects leave through the keyspace's sink (``store.effects``), which the
append-only log subscribes to.
The data it works on is the ``Store`` (store.store; re-exported here, so
``store.engine.Store`` still names it).

Atomicity, as the README states it:

* Every command is atomic: it runs entirely under the lock its spec
  declares (``CommandSpec.lock``, a subcommand's own for a container): the
  read lock or the write lock (SAVE holds none while it waits).
* Consecutive commands of the batch that need the same lock share one
  acquisition; the lock is switched only when the kind changes. A pipeline
  is therefore not atomic as a whole (as in Redis); MULTI/EXEC and the
  multi-key commands (MSET, ...) are, because each is one command.
* A long command (KEYS, a big SCAN, FLUSHALL) returns a
  ``commands.slicing.Sliced`` object: the engine runs it a slice
  (``Store.slice_seconds``) at a time under the lock it names, releasing
  the lock between slices. An unfinished job stops at that command
  (``Job.sliced``) and the dispatcher queues it again; the next hop resumes
  it, then the rest of the job's requests run. Such a command is atomic
  only as ``commands/slicing.py`` states (its writes all happen in its
  first step); inside EXEC it runs unsliced.
* Effects: after each write command (and each write slice) the engine ends
  the effects unit, under the write lock: one log record per write command,
  a whole EXEC, a whole MSET. With the log on, the reply waits for it.
* A handler that raises is a bug: it is logged, the client gets an error, and
  the rest of the batch still runs (the executor, ``_execute``, and its
  inline copy in ``_execute_job``; EXEC's queued commands go through it).
  A command that has started always finishes (the hop is never abandoned), so a reply is never lost for a write
  that happened.

The errors the engine makes itself (NOAUTH, a write refused by a log error,
a handler's crash) and the text errorstats counts are worded by the
session's wire protocol (``session.wire``, ``commands.wire``): this layer
names no protocol.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from ..commands.session import Session
from ..commands.slicing import WRITE, Sliced, finish
from ..commands.slot_check import slot_refusal
from ..commands.table import NO_LOCK, WRITE_LOCK, CommandSpec, CommandTable
from ..commands.transactions import REFUSED_IN_MULTI, ExecQueue
from ..commands.values import WRONGTYPE_ERROR, WrongType
from ..protocol.replies import NO_REPLY, Error
from .eviction_policy import NOEVICTION
from .stats import StatsShard
from .store import Store as Store  # re-exported: store.engine.Store still names it

log = logging.getLogger(__name__)

OUT_OF_MEMORY = Error("OOM command not allowed when used memory > 'maxmemory'.")


@dataclass(slots=True, eq=False)
class Job:
    """One connection's requests for one hop, and then their replies."""

    session: Session
    table: CommandTable
    requests: list[list[bytes]]
    # time.perf_counter() when the requests were read (latency starts here).
    received_at: float
    replies: list[object] = field(default_factory=list)
    # With the append-only log on: the LSN the replies must wait for (0: no
    # write was logged) and which replies belong to logged writes.
    log_lsn: int = 0
    logged: list[int] = field(default_factory=list)
    # RESP: the protocol (2 or 3) when the job started, and where HELLO or
    # RESET changed it: [(reply index, protocol from that reply on)], so
    # each reply is encoded in the protocol in force when it was made.
    protocol: int = 2
    protocol_changes: list[tuple[int, int]] | None = None
    # A sliced command not finished yet (the dispatcher queues the job
    # again), and the index of the request after it, where the job resumes.
    sliced: InProgress | None = None
    resume_at: int = 0
    # Cluster mode, for a coordinator that replicates what its writes did:
    # set it to [] before the hop, and every write command that changed
    # something adds (its reply's index, [(key, packed clock), ...]): the
    # keys its unit changed with their wire clocks, taken under the write
    # lock it ran under (store/versions.py, Versions.unit_delta). None: not
    # collected (the engine pays one test per write unit for it).
    version_deltas: list[tuple[int, list[tuple[bytes, bytes]]]] | None = None


@dataclass(slots=True, eq=False)
class InProgress:
    """A sliced command between slices: what the engine needs to finish it."""

    spec: CommandSpec
    args: list[bytes]
    work: Sliced
    # Worker time spent on it so far (its exec time for stats and SLOWLOG).
    exec_seconds: float


class _Hop:
    """What one hop (one ``run_batch``) reads from the store once, and the
    store lock it holds between commands (and between jobs)."""

    __slots__ = (
        "store", "lock", "shard", "slowlog", "persistence", "effects", "monitor",
        "monitor_threshold_us", "maxmemory", "_out_of_memory", "held_write", "cluster",
    )

    def __init__(self, store: Store) -> None:
        self.store = store
        self.lock = store.lock
        # This thread's own counters: no lock per command (see store.stats).
        self.shard: StatsShard = store.stats.shard()
        self.slowlog = store.slowlog
        self.persistence = store.persistence
        self.effects = store.keyspace.effects
        self.monitor = store.latency_monitor
        # Latency monitor threshold in us (0: off), read once per hop.
        self.monitor_threshold_us = self.monitor.threshold_ms * 1000
        # maxmemory (0: off), read once per hop; memory is measured (O(1),
        # store/memory_accounting.py) before each denyoom command.
        self.maxmemory = store.maxmemory_bytes
        self.held_write: bool | None = None  # None: no lock held
        # Cluster mode: admission checks that a request's keys share a slot.
        self.cluster = store.config.cluster_enabled

    def hold(self, want_write: bool | None) -> bool | None:
        """Switch the store lock to what comes next (None: no lock)."""
        held, lock = self.held_write, self.lock
        if held is not want_write:
            if held is not None:
                (lock.release_write if held else lock.release_read)()
                self.held_write = None
            if want_write is not None:
                (lock.acquire_write if want_write else lock.acquire_read)()
                self.held_write = want_write
        return want_write

    def out_of_memory(self, job: Job) -> bool:
        """Whether a denyoom command must be refused (-OOM): used memory is
        over maxmemory and the policy could not evict below it. Evictions
        run here (store/eviction.py), under the write lock, and end as one
        effects unit of their own before the command; with the log on, the
        job's replies wait for that record too."""
        store = self.store
        if store.used_memory_bytes() <= self.maxmemory:
            return False
        if store.evictor.policy == NOEVICTION:
            return True
        self.hold(True)
        made_room = store.make_room()
        if self.effects.pending:
            try:
                self.effects.end_command()
            except ValueError as error:  # a unit of DELs is never too large to log
                log.error("evictions not logged: %s", error)
            if self.persistence is not None:
                job.log_lsn = self.persistence.appended_lsn
        return not made_room


def run_batch(store: Store, jobs: list[Job]) -> None:
    """Execute every job's requests, filling ``job.replies`` in order.
    Runs on a worker thread; takes and releases the store's lock itself.

    Each request goes through admission (``_admit``: lookup, arity, NOAUTH,
    OOM, MULTI's queue, refused writes: Redis' processCommand), then
    execution (``_execute_jobs``: the lock, the handler through the executor
    ``_execute``, stats, SLOWLOG, the latency monitor, the end of a write's
    effects unit). ``_execute_job`` runs once per command at every request
    rate, so it reads attributes into locals and keeps an inline fast path:
    one test (table lookup and arity inlined; ``CommandTable.resolve`` says
    the same more slowly) shows that a request is outside MULTI with nothing
    to refuse, and only other requests call ``_admit``.

    Calls and latency of consecutive runs of one command in a job are
    recorded once per run: they are answered together, so they share one
    latency (request read to reply ready), and per-command bookkeeping was
    40% of the engine's time. Errors are counted one by one. A command
    flagged ``stats`` (STATS, LATENCY, INFO, CONFIG) first records the run
    before it, so it sees every earlier command of its own pipeline.
    Statistics are kept under the name the command ran as
    (``session.last_command``: ``client|id`` for a subcommand). A request
    refused before running is a rejected call of its command. With CLIENT
    REPLY OFF or SKIP, replies are replaced by ``NO_REPLY`` (``_answer``)."""
    hop = _Hop(store)
    try:
        _execute_jobs(hop, jobs)
    finally:
        hop.hold(None)


def _admit(hop: _Hop, job: Job, spec: CommandSpec | None, args: list[bytes]) -> CommandSpec | None:
    """Admission, in Redis' processCommand order: the spec to run, or None
    when the request was answered here (refused, or queued inside MULTI).
    A refused request is a rejected call of its command; the rules of MULTI
    are commands.transactions'."""
    session = job.session
    transaction = session.transaction
    if spec is None or not spec.arity_ok(len(args)):
        resolved = job.table.resolve(args)
        if isinstance(resolved, Error):
            _reject(hop, job, spec, transaction.refuse_lookup(spec, resolved))  # an EXEC: EXECABORT, discarded
            return None
        spec = resolved  # an HTTP request line (commands.security) runs below
    if not session.authenticated and hop.store.requirepass is not None and spec.needs_auth:
        transaction.fail()  # an EXEC too: NOAUTH, still inside MULTI (as Redis)
        _reject(hop, job, spec, session.wire.noauth)
        return None
    if hop.cluster and (spec.several_keys or transaction.queued is not None):
        unrouted = slot_refusal(transaction.routed(spec, args))  # CROSSSLOT (commands.slot_check)
        if unrouted is not None:
            _reject(hop, job, spec, transaction.refuse_unrouted(spec, unrouted))
            return None
    if hop.maxmemory and transaction.denies_oom(spec) and hop.out_of_memory(job):  # an EXEC: what it queued
        _reject(hop, job, spec, transaction.refuse(spec, OUT_OF_MEMORY))
        return None
    queued = transaction.admit(spec, args, session.config)
    if queued is not None:
        _answer(session, job.replies, queued)
        if isinstance(queued, Error):  # not QUEUED
            hop.shard.record_error(session.wire.error_text(queued))
            if queued is REFUSED_IN_MULTI:
                hop.shard.record_rejected(spec.name)
        return None
    persistence = hop.persistence
    if persistence is not None and transaction.writes(spec, args):
        refusal = persistence.refusal()
        if refusal is not None:
            _reject(hop, job, spec, transaction.refuse(spec, session.wire.refused_write(refusal)))
            return None
    return spec


def _reject(hop: _Hop, job: Job, spec: CommandSpec | None, error: Error) -> None:
    """Answer a request refused before it ran."""
    _answer(job.session, job.replies, error)
    hop.shard.record_error(job.session.wire.error_text(error))
    if spec is not None:
        hop.shard.record_rejected(spec.name)


def _answer(session: Session, replies: list[object], reply: object) -> None:
    """Append one request's reply. CLIENT REPLY OFF|SKIP: the reply is
    dropped (NO_REPLY: the encoders write nothing) while replies are off or
    for the one request after a SKIP; it still counts as a reply for every
    other purpose."""
    if _filters(session):
        replies.append(NO_REPLY if session.reply_off or session.reply_skip else reply)
        session.reply_skip = session.reply_skip_next
        session.reply_skip_next = False
    else:
        replies.append(reply)


def _execute_jobs(hop: _Hop, jobs: list[Job]) -> None:
    """Execution: each job's requests in order (see ``run_batch``); a job
    whose sliced command is still unfinished waits for the next hop."""
    for job in jobs:
        if job.sliced is None or _resume_sliced(hop, job):
            _execute_job(hop, job)


def _execute_job(hop: _Hop, job: Job) -> None:
    """One job's requests from ``job.resume_at`` on, until its connection
    closes or a sliced command must wait. An assignment names at most three
    locals: more would build a tuple."""
    shard, effects, received_at = hop.shard, hop.effects, job.received_at
    slowlog, maxmemory, monitor_threshold_us = hop.slowlog, hop.maxmemory, hop.monitor_threshold_us
    held_write, session, replies = hop.held_write, job.session, job.replies
    by_name, transaction, persistence = job.table.by_name, session.transaction, hop.persistence
    cluster = hop.cluster
    filtering = session.reply_off or session.reply_skip or session.reply_skip_next
    append = partial(_answer, session, replies) if filtering else replies.append
    perf_counter, index = time.perf_counter, job.resume_at
    run_spec: CommandSpec | None = None  # the command of the run being counted
    run_name, run_n, run_usec, run_failed = "", 0, 0, 0
    for index, args in enumerate(job.requests[index:] if index else job.requests, index):
        if session.closing:
            break  # QUIT earlier in the batch: nothing after it runs
        spec = by_name.get(args[0].lower())
        if (spec is None or not (len(args) == spec.arity if spec.arity >= 0 else len(args) >= -spec.arity)
                or not session.authenticated or maxmemory or transaction.queued is not None
                or ((spec.is_write or spec.has_subcommands) and persistence is not None
                    and persistence.refusal() is not None)
                or (cluster and spec.several_keys)):
            spec = _admit(hop, job, spec, args)
            held_write = hop.held_write  # eviction may have taken the write lock
            if spec is None:
                continue
        want_write = spec.is_write
        if spec.no_lock or spec.has_subcommands or held_write is not want_write:
            held_write, want_write = _switch_lock(hop, spec, args)
        if run_n and (spec is not run_spec or spec.reads_stats or spec.has_subcommands):
            _record_run(shard, run_spec, run_name, run_n, run_failed, run_usec, received_at)
            run_n = run_usec = run_failed = 0
        started = perf_counter()
        session.last_command = spec.name
        try:
            reply = spec.handler(session, args)  # the executor (_execute), inline
        except WrongType:
            reply = WRONGTYPE_ERROR  # the keyspace's type rule (commands/values.py)
        except Exception:
            reply = _crashed(session, spec)
        if spec.may_slice and isinstance(reply, Sliced):
            held_write = _begin_sliced(hop, job, spec, args, reply, started, index)
            if job.sliced is not None:
                break  # the rest of the job waits for the next hop
            continue
        if spec.may_change_reply_mode and type(reply) is ExecQueue:
            reply = reply.reply(session, [_execute_queued(shard, session, *queued) for queued in reply.commands])
        exec_us = int((perf_counter() - started) * 1_000_000)
        run_spec, run_name = spec, session.last_command
        run_n, run_usec = run_n + 1, run_usec + exec_us
        append(reply)
        if filtering or spec.may_change_reply_mode or spec.switches_protocol:
            filtering, append = _modes_changed(job, spec, filtering, append)
        if want_write and effects.pending:  # a unit per write command (store/effects.py)
            _end_unit(hop, job, len(replies) - 1)
        if type(reply) is Error:
            run_failed += _count_error(shard, session, reply)
        if exec_us >= slowlog.threshold_us >= 0 or (monitor_threshold_us and exec_us >= monitor_threshold_us):
            _record_slow(hop, session, spec, args, exec_us)
    if run_n:
        _record_run(shard, run_spec, run_name, run_n, run_failed, run_usec, received_at)


def _record_run(
    shard: StatsShard, spec: CommandSpec | None, name: str, calls: int, failed: int, exec_us: int, received_at: float,
) -> None:
    """Count a run of one command in a job once: its calls, failures and
    summed exec time, and one latency (request read to now) for all."""
    assert spec is not None
    shard.record_calls(name, spec.counter, calls, failed, exec_us, int((time.perf_counter() - received_at) * 1_000_000))


def _switch_lock(hop: _Hop, spec: CommandSpec, args: list[bytes]) -> tuple[bool | None, bool]:
    """Hold the lock a request runs under (a container's subcommand declares
    its own: CONFIG GET read, FUNCTION FLUSH write); the lock held, and
    whether it is the write lock."""
    lock = spec.lock_for(args) if spec.has_subcommands else spec.lock
    want_write = lock is WRITE_LOCK
    return hop.hold(None if lock is NO_LOCK else want_write), want_write


def _count_error(shard: StatsShard, session: Session, error: Error) -> int:
    """Count an error reply (errorstats); 1, for the run's failed calls."""
    shard.record_error(session.wire.error_text(error))
    return 1


def _record_slow(hop: _Hop, session: Session, spec: CommandSpec, args: list[bytes], exec_us: int) -> None:
    """A command that took long enough for SLOWLOG or the latency monitor."""
    slowlog = hop.slowlog
    if exec_us >= slowlog.threshold_us >= 0:
        slowlog.maybe_record(exec_us, args, session.address, session.name)
    if hop.monitor_threshold_us and exec_us >= hop.monitor_threshold_us:
        hop.monitor.add_sample("fast-command" if spec.is_fast else "command", exec_us // 1000)


def _filters(session: Session) -> bool:
    """Whether CLIENT REPLY OFF or SKIP replaces this request's reply."""
    return session.reply_off or session.reply_skip or session.reply_skip_next


def _modes_changed(
    job: Job, spec: CommandSpec, filtering: bool, append: Callable[[object], None]
) -> tuple[bool, Callable[[object], None]]:
    """After a command that may have changed the reply mode (CLIENT REPLY,
    from the next request on) or the protocol (HELLO, RESET: noted for the
    encoder), or while replies are filtered: whether replies are filtered
    now, and how to append them."""
    session, replies = job.session, job.replies
    if spec.switches_protocol:
        job.protocol_changes = (job.protocol_changes or []) + [(len(replies) - 1, session.protocol)]
    if filtering is _filters(session):
        return filtering, append
    if filtering:
        return False, replies.append
    # OFF or SKIP just answered NO_REPLY through the plain append: end its
    # request as _answer would.
    session.reply_skip = session.reply_skip_next
    session.reply_skip_next = False
    return True, partial(_answer, session, replies)


def _execute(session: Session, spec: CommandSpec, args: list[bytes]) -> object:
    """The executor: run one admitted command's handler, the store lock it
    needs held (``_execute_job`` has the same three lines inline). A
    handler that raises is a bug: it is logged and answered with an internal
    error, and the batch goes on."""
    session.last_command = spec.name
    try:
        return spec.handler(session, args)
    except WrongType:
        return WRONGTYPE_ERROR  # the keyspace's type rule (commands/values.py)
    except Exception:
        return _crashed(session, spec)


def _crashed(session: Session, spec: CommandSpec) -> Error:
    log.exception("client %d: command %s failed", session.id, spec.name)
    return session.wire.internal_error


def _execute_queued(shard: StatsShard, session: Session, spec: CommandSpec, args: list[bytes]) -> object:
    """One command of an EXEC, through the executor, under EXEC's write
    lock: a sliced one runs to its end (the transaction stays atomic), and
    its stats are recorded as if it had run alone."""
    started = time.perf_counter()
    reply = _execute(session, spec, args)
    if spec.may_slice and isinstance(reply, Sliced):
        reply = _finish(session, spec, reply)
    elapsed_us = int((time.perf_counter() - started) * 1_000_000)
    failed = type(reply) is Error
    # Under the name it ran as (client|id), with its error's code for errorstats.
    shard.record_command(
        session.last_command, spec.counter, failed, elapsed_us, elapsed_us,
        reply.message if failed else "ERR",  # type: ignore[attr-defined]
    )
    return reply


def _finish(session: Session, spec: CommandSpec, work: Sliced) -> object:
    try:
        return finish(work)
    except WrongType:
        return WRONGTYPE_ERROR
    except Exception:
        return _crashed(session, spec)


def _end_unit(hop: _Hop, job: Job, reply_index: int) -> None:
    """A write command (or a write slice of a sliced command) ended: deliver
    its effects as one unit (store/effects.py), write lock held, so in apply
    order; with the log on, reply ``reply_index`` waits for its record."""
    persistence = hop.persistence
    try:
        hop.effects.end_command()
    except ValueError as error:
        _not_logged(hop, job, reply_index, error)
        return
    if persistence is not None:
        job.log_lsn = persistence.appended_lsn
        job.logged.append(reply_index)
    deltas = job.version_deltas
    if deltas is not None:
        versions = hop.store.versions
        if versions is not None:
            deltas.append((reply_index, versions.unit_delta()))


def _not_logged(hop: _Hop, job: Job, reply_index: int, error: ValueError) -> None:
    """A unit the log refused: a record over the format's 2 GiB (a MULTI of
    huge values). Applied in memory but not loggable, so it is not
    acknowledged (and is lost on restart)."""
    session = job.session
    log.error("client %d: %s not logged: %s", session.id, session.last_command, error)
    if reply_index < len(job.replies):
        job.replies[reply_index] = session.wire.refused_write(f"record too large to log ({error})")


def _begin_sliced(
    hop: _Hop, job: Job, spec: CommandSpec, args: list[bytes], work: Sliced, started: float, index: int
) -> bool | None:
    """A handler returned ``work``: end the unit of what the handler wrote
    (FLUSHALL's clear, in the same lock hold), then run the first slice at
    once. Returns the lock held."""
    if spec.is_write and hop.effects.pending:
        _end_unit(hop, job, len(job.replies))
    job.sliced = InProgress(spec, args, work, time.perf_counter() - started)
    job.resume_at = index + 1
    return _continue_sliced(hop, job)


def _resume_sliced(hop: _Hop, job: Job) -> bool:
    """At the start of a job: run the next slice of its sliced command;
    whether it finished (the rest of the job may run)."""
    _continue_sliced(hop, job)
    return job.sliced is None


def _continue_sliced(hop: _Hop, job: Job) -> bool | None:
    """Run one slice of the job's sliced command; when it finishes, append
    its reply and record its stats (one call, with the summed slice time).
    Returns the lock held."""
    progress = job.sliced
    assert progress is not None
    work, spec, session = progress.work, progress.spec, job.session
    held_write = hop.hold(None if work.lock is None else work.lock == WRITE)
    session.last_command = spec.name
    started = time.perf_counter()
    try:
        done = work.step(started + hop.store.slice_seconds)
        reply = work.reply() if done else None
    except Exception:
        done, reply = True, _crashed(session, spec)
    finished = time.perf_counter()
    progress.exec_seconds += finished - started
    if work.lock == WRITE and hop.effects.pending:
        _end_unit(hop, job, len(job.replies))
    if not done:
        return held_write
    job.sliced = None
    job.replies.append(reply)
    exec_us = int(progress.exec_seconds * 1_000_000)
    failed = type(reply) is Error
    if failed:
        hop.shard.counts["errors"] += 1
    hop.shard.record_calls(
        spec.name, spec.counter, 1, int(failed), exec_us, int((finished - job.received_at) * 1_000_000)
    )
    slowlog = hop.slowlog
    if exec_us >= slowlog.threshold_us >= 0:
        slowlog.maybe_record(exec_us, progress.args, session.address, session.name)
    return held_write
