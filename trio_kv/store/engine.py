"""The engine: the function one worker-thread hop runs.

``run_batch`` is the only code that runs on worker threads. It gets the
requests of many connections at once (group dispatch) and answers each
connection's requests in that connection's order. The data it works on is
the ``Store`` (store.store; imported here too, so ``store.engine.Store``
still names it).

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
* A handler that raises is a bug: it is logged, the client gets an error, and
  the rest of the batch still runs. A command that has started always
  finishes (the hop is never abandoned), so a reply is never lost for a write
  that happened.

The errors the engine makes itself (NOAUTH, a write refused by a log error,
a handler's crash) and the text errorstats counts are worded by the
session's wire protocol (``session.wire``, ``commands.wire``): this layer
names no protocol.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from ..commands.session import Session
from ..commands.slicing import WRITE, Sliced
from ..commands.table import NO_LOCK, WRITE_LOCK, CommandSpec, CommandTable
from ..commands.transactions import queue_command
from ..commands.values import WRONGTYPE_ERROR, WrongType
from ..protocol.replies import NO_REPLY, Error, QUEUED
from .rwlock import ReadWriteLock
from .store import Store as Store  # re-exported: store.engine.Store still names it

log = logging.getLogger(__name__)

NOT_IN_MULTI = Error("ERR Command not allowed inside a transaction")
OUT_OF_MEMORY = Error("OOM command not allowed when used memory > 'maxmemory'.")


def _refuse_exec(store: Store, session: Session, refusal: str) -> Error | None:
    """EXEC while writes are refused, as Redis does it: a transaction
    without writes runs (None); one with writes is discarded, so the client
    is not left inside a MULTI, and answered ``EXECABORT Transaction
    discarded because of: MISCONF ...``. Unwatching needs no store lock."""
    if not any(spec.lock_for(args) is WRITE_LOCK for spec, args in session.multi):
        return None
    return _abort_exec(session, session.wire.refused_write(refusal))


def _abort_exec(session: Session, error: Error) -> Error:
    """EXEC refused as a whole (Redis' execCommandAbort): the transaction is
    discarded and the reply names why."""
    session.multi = None
    session.multi_failed = False
    session.keyspace.unwatch_all(session)
    return Error(f"EXECABORT Transaction discarded because of: {error.message}")


def _denies_oom(spec: CommandSpec, session: Session) -> bool:
    """Whether maxmemory refuses this request: a denyoom command, or an EXEC
    whose transaction queued one (Redis' processCommand)."""
    if spec.denies_oom:
        return True
    return spec.name == "exec" and session.multi is not None and any(
        queued.denies_oom for queued, _args in session.multi
    )


def _append_filtered(session: Session, replies: list[object], reply: object) -> None:
    """CLIENT REPLY OFF|SKIP: the reply is dropped (NO_REPLY: the encoders
    write nothing) while replies are off or for the one request after a
    SKIP; it still counts as a reply for every other purpose."""
    replies.append(NO_REPLY if session.reply_off or session.reply_skip else reply)
    session.reply_skip = session.reply_skip_next
    session.reply_skip_next = False


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


@dataclass(slots=True, eq=False)
class InProgress:
    """A sliced command between slices: what the engine needs to finish it."""

    spec: Any
    args: list[bytes]
    work: Sliced
    # Worker time spent on it so far (its exec time for stats and SLOWLOG).
    exec_seconds: float


def run_batch(store: Store, jobs: list[Job]) -> None:
    """Execute every job's requests, filling ``job.replies`` in order.
    Runs on a worker thread; takes and releases the store's lock itself.

    This loop runs once per command at every request rate, so it reads
    attributes into locals and inlines the table lookup
    (``CommandTable.resolve`` says the same thing more slowly). Calls and
    latency of consecutive runs of one command in a job are recorded once per
    run: they are answered together, so they share one latency (request read
    to reply ready), and per-command bookkeeping was 40% of the engine's
    time. Errors are counted one by one. A command that ``reads_stats`` (STATS,
    LATENCY, INFO, CONFIG) first records the run before it, so it sees every
    earlier command of its own pipeline. Statistics are kept under the name
    the command ran as (``session.last_command``: ``client|id`` for a
    subcommand). A request refused before running (wrong arity, refused in
    MULTI, a write refused by MISCONF) is a rejected call of its command.
    With CLIENT REPLY OFF or SKIP, replies are replaced by ``NO_REPLY``
    (``_append_filtered``)."""
    lock = store.lock
    # This thread's own counters: no lock per command (see store.stats).
    shard = store.stats.shard()
    slowlog = store.slowlog
    persistence = store.persistence
    keyspace = store.keyspace
    monitor = store.latency_monitor
    # Latency monitor threshold in us (0: off), read once per batch.
    monitor_threshold_us = monitor.threshold_ms * 1000
    # maxmemory (0: off); memory is measured at most once per batch, when a
    # denyoom command first needs it.
    maxmemory = store.maxmemory_bytes
    out_of_memory: bool | None = None
    perf_counter = time.perf_counter
    held_write: bool | None = None  # None: no lock held
    try:
        for job in jobs:
            session = job.session
            table = job.table
            by_name = table.by_name
            replies = job.replies
            # CLIENT REPLY OFF|SKIP in force: replies go through the filter.
            filtering = session.reply_off or session.reply_skip or session.reply_skip_next
            append = replies.append
            if filtering:
                append = lambda reply: _append_filtered(session, replies, reply)  # noqa: E731
            received_at = job.received_at
            # Counters for a run of the same fast command are recorded once
            # per run (StatsShard.record_calls), not once per command.
            run_spec = None
            run_name = ""
            run_n = run_usec = run_failed = 0
            requests = job.requests
            index = job.resume_at
            if job.sliced is not None:
                held_write = _continue_sliced(store, job, shard, held_write)
                if job.sliced is not None:
                    continue  # still unfinished: the dispatcher queues it again
                index = job.resume_at
            for index, args in enumerate(requests[index:] if index else requests, index):
                if session.closing:
                    break  # QUIT earlier in the batch: nothing after it runs
                spec = by_name.get(args[0].lower())
                if spec is None or not (  # commands.table.arity_accepts, inlined
                    len(args) == spec.arity if spec.arity >= 0 else len(args) >= -spec.arity
                ):
                    resolved = table.resolve(args)
                    if type(resolved) is Error:
                        if session.multi is not None:
                            session.multi_failed = True
                        append(resolved)
                        shard.record_error(session.wire.error_text(resolved))
                        if spec is not None:
                            shard.record_rejected(spec.name)
                        continue
                    spec = resolved  # an HTTP request line (commands.security) runs below
                if not session.authenticated and store.requirepass is not None and spec.needs_auth:
                    # Redis' processCommand: after the name and arity checks.
                    if session.multi is not None:
                        session.multi_failed = True
                    refused = session.wire.noauth
                    append(refused)
                    shard.record_error(session.wire.error_text(refused))
                    shard.record_rejected(spec.name)
                    continue
                if maxmemory and _denies_oom(spec, session):
                    if out_of_memory is None:
                        out_of_memory = store.used_memory_bytes() > maxmemory
                    if out_of_memory:
                        if session.multi is not None and spec.name == "exec":
                            refused = _abort_exec(session, OUT_OF_MEMORY)
                        else:
                            if session.multi is not None:
                                session.multi_failed = True  # EXEC will abort
                            refused = OUT_OF_MEMORY
                        append(refused)
                        shard.record_error(session.wire.error_text(refused))
                        shard.record_rejected(spec.name)
                        continue
                if session.multi is not None and not spec.runs_in_multi:
                    if spec.refused_in_multi:
                        # Redis: refused, and EXEC will abort the transaction.
                        session.multi_failed = True
                        append(NOT_IN_MULTI)
                        shard.record_error(session.wire.error_text(NOT_IN_MULTI))
                        shard.record_rejected(spec.name)
                        continue
                    queued = queue_command(session, spec, args)
                    append(queued)
                    if queued is not QUEUED:  # over the queue's limits
                        shard.record_error(session.wire.error_text(queued))
                    continue
                want_write = spec.is_write
                no_lock = spec.no_lock
                if spec.has_subcommands:  # a subcommand declares its own lock (CONFIG GET: read)
                    lock_kind = spec.lock_for(args)
                    want_write, no_lock = lock_kind is WRITE_LOCK, lock_kind is NO_LOCK
                if want_write and persistence is not None:
                    refusal = persistence.refusal()
                    if refusal is not None:
                        if session.multi is not None and spec.name == "exec":
                            refused = _refuse_exec(store, session, refusal)
                        else:
                            refused = session.wire.refused_write(refusal)
                        if refused is not None:
                            append(refused)
                            shard.record_error(session.wire.error_text(refused))
                            shard.record_rejected(spec.name)
                            continue
                if no_lock:
                    # Waits for something else that needs the lock (SAVE).
                    if held_write is not None:
                        (lock.release_write if held_write else lock.release_read)()
                        held_write = None
                elif held_write is not want_write:
                    if held_write is not None:
                        (lock.release_write if held_write else lock.release_read)()
                        held_write = None
                    (lock.acquire_write if want_write else lock.acquire_read)()
                    held_write = want_write
                if run_n and (spec is not run_spec or spec.reads_stats):
                    shard.record_calls(
                        run_name, run_spec.counter, run_n, run_failed, run_usec,
                        int((perf_counter() - received_at) * 1_000_000),
                    )
                    run_n = run_usec = run_failed = 0
                started = perf_counter()
                session.last_command = name = spec.name
                try:
                    reply = spec.handler(session, args)
                except WrongType:
                    reply = WRONGTYPE_ERROR  # the keyspace's type rule (commands/values.py)
                except Exception:
                    log.exception("client %d: command %s failed", session.id, name)
                    reply = session.wire.internal_error
                if spec.may_slice and isinstance(reply, Sliced):
                    held_write = _begin_sliced(store, job, spec, args, reply, started, index, shard, held_write)
                    if job.sliced is not None:
                        break  # the rest of the job waits for the next hop
                    continue
                finished = perf_counter()
                if spec.has_subcommands:
                    # The subcommand it ran (client|id) names the stats; a
                    # run of CLIENT ID ends at a CLIENT LIST.
                    name = session.last_command
                    if run_n and name != run_name:
                        shard.record_calls(
                            run_name, run_spec.counter, run_n, run_failed, run_usec,
                            int((perf_counter() - received_at) * 1_000_000),
                        )
                        run_n = run_usec = run_failed = 0
                run_spec = spec
                run_name = name
                append(reply)
                if (filtering or spec.may_change_reply_mode) and filtering is not (
                    session.reply_off or session.reply_skip or session.reply_skip_next
                ):
                    # CLIENT REPLY changed the mode, from the next request on.
                    filtering = not filtering
                    if filtering:
                        # OFF or SKIP just answered NO_REPLY through the plain
                        # append: end its request as _append_filtered would.
                        session.reply_skip = session.reply_skip_next
                        session.reply_skip_next = False
                        append = lambda reply: _append_filtered(session, replies, reply)  # noqa: E731
                    else:
                        append = replies.append
                if spec.switches_protocol:
                    if job.protocol_changes is None:
                        job.protocol_changes = []
                    job.protocol_changes.append((len(replies) - 1, session.protocol))
                if want_write and persistence is not None and keyspace.journal:
                    # One record per write command (a whole EXEC, a whole
                    # MSET): appended under the write lock, so in apply order.
                    try:
                        job.log_lsn = persistence.log(keyspace.take_journal())
                        job.logged.append(len(replies) - 1)
                    except ValueError as error:
                        # A record over the format's 2 GiB (a MULTI of huge
                        # values): applied in memory but not loggable, so it
                        # is not acknowledged (and is lost on restart).
                        log.error("client %d: %s not logged: %s", session.id, name, error)
                        replies[-1] = session.wire.refused_write(f"record too large to log ({error})")
                exec_us = int((finished - started) * 1_000_000)
                run_n += 1
                run_usec += exec_us
                if type(reply) is Error:
                    shard.record_error(session.wire.error_text(reply))
                    run_failed += 1
                if exec_us >= slowlog.threshold_us >= 0:
                    slowlog.maybe_record(exec_us, args, session.address, session.name)
                if monitor_threshold_us and exec_us >= monitor_threshold_us:
                    monitor.add_sample("fast-command" if spec.is_fast else "command", exec_us // 1000)
            if run_n:
                shard.record_calls(
                    run_name, run_spec.counter, run_n, run_failed, run_usec,
                    int((perf_counter() - received_at) * 1_000_000),
                )
    finally:
        if held_write is not None:
            (lock.release_write if held_write else lock.release_read)()


def _hold(lock: ReadWriteLock, held_write: bool | None, want: str | None) -> bool | None:
    """Switch the store lock to what a slice wants; returns what is held."""
    want_write = None if want is None else want == WRITE
    if held_write is not want_write:
        if held_write is not None:
            (lock.release_write if held_write else lock.release_read)()
        if want_write is not None:
            (lock.acquire_write if want_write else lock.acquire_read)()
    return want_write


def _log_journal(store: Store, job: Job) -> None:
    """Log the keyspace's journal as one record for the reply the job's
    sliced command will get (the next one appended); write lock held."""
    persistence, keyspace = store.persistence, store.keyspace
    if persistence is None or not keyspace.journal:
        return
    try:
        job.log_lsn = persistence.log(keyspace.take_journal())
        job.logged.append(len(job.replies))
    except ValueError as error:
        # Over the format's 2 GiB (see run_batch): cannot happen for the
        # sliced commands there are (FLUSHALL logs one CLEAR effect).
        log.error("client %d: %s not logged: %s", job.session.id, job.session.last_command, error)


def _begin_sliced(
    store: Store, job: Job, spec: Any, args: list[bytes], work: Sliced, started: float, index: int,
    shard: Any, held_write: bool | None,
) -> bool | None:
    """A handler returned ``work``: log what the handler wrote (FLUSHALL's
    clear, in the same lock hold), then run the first slice at once."""
    if spec.is_write:
        _log_journal(store, job)
    job.sliced = InProgress(spec, args, work, time.perf_counter() - started)
    job.resume_at = index + 1
    return _continue_sliced(store, job, shard, held_write)


def _continue_sliced(store: Store, job: Job, shard: Any, held_write: bool | None) -> bool | None:
    """Run one slice of the job's sliced command; when it finishes, append
    its reply and record its stats (one call, with the summed slice time)."""
    progress = job.sliced
    assert progress is not None
    work, spec, session = progress.work, progress.spec, job.session
    held_write = _hold(store.lock, held_write, work.lock)
    session.last_command = spec.name
    started = time.perf_counter()
    try:
        done = work.step(started + store.slice_seconds)
        reply = work.reply() if done else None
    except Exception:
        log.exception("client %d: command %s failed", session.id, spec.name)
        done, reply = True, session.wire.internal_error
    finished = time.perf_counter()
    progress.exec_seconds += finished - started
    if work.lock == WRITE:
        _log_journal(store, job)
    if not done:
        return held_write
    job.sliced = None
    job.replies.append(reply)
    exec_us = int(progress.exec_seconds * 1_000_000)
    failed = type(reply) is Error
    if failed:
        shard.counts["errors"] += 1
    shard.record_calls(
        spec.name, spec.counter, 1, int(failed), exec_us, int((finished - job.received_at) * 1_000_000)
    )
    slowlog = store.slowlog
    if exec_us >= slowlog.threshold_us >= 0:
        slowlog.maybe_record(exec_us, progress.args, session.address, session.name)
    return held_write
