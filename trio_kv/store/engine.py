"""The engine: the shared store, and the function one worker-thread hop runs.

``Store`` bundles what every connection shares: the keyspace, the
reader-writer lock that guards it, the counters and the configuration.

``run_batch`` is the only code that runs on worker threads. It gets the
requests of many connections at once (group dispatch) and answers each
connection's requests in that connection's order.

Atomicity, as the README states it:

* Every command is atomic: it runs entirely under the read lock (commands
  without the ``write`` flag) or the write lock (with it).
* Consecutive commands of the batch that need the same lock share one
  acquisition; the lock is switched only when the kind changes. A pipeline
  is therefore not atomic as a whole (as in Redis); MULTI/EXEC and the
  multi-key commands (MSET, ...) are, because each is one command.
* A handler that raises is a bug: it is logged, the client gets an error, and
  the rest of the batch still runs. A command that has started always
  finishes (the hop is never abandoned), so a reply is never lost for a write
  that happened.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any

from ..commands.auth import NOAUTH, TEXT_NOAUTH, password_bytes
from ..commands.session import Session
from ..commands.table import CommandTable
from ..config import Config
from ..protocol.replies import Error, QUEUED
from .keyspace import Keyspace
from .rwlock import ReadWriteLock
from .slowlog import SlowLog
from .stats import Stats

log = logging.getLogger(__name__)

INTERNAL_ERROR = "internal error, see the server log"
NOT_IN_MULTI = Error("ERR Command not allowed inside a transaction")


class SaveRequest:
    """A SAVE waiting (on a worker thread) for the compaction it asked for."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self.ok = False

    def finish(self, ok: bool) -> None:
        self.ok = ok
        self._done.set()

    def wait(self) -> bool:
        self._done.wait()
        return self.ok


class Store:
    def __init__(self, config: Config, keyspace: Keyspace | None = None) -> None:
        self.config = config
        self.keyspace = Keyspace() if keyspace is None else keyspace
        self.lock = ReadWriteLock()
        self.stats = Stats()
        self.slowlog = SlowLog(config.slowlog_log_slower_than_us, config.slowlog_max_len)
        # Filled by the async shell: the sessions of connected clients by id,
        # for CLIENT LIST / INFO clients. Worker threads only read it (copy
        # with list(...) first: the event loop adds and removes entries).
        self.clients: dict[int, Session] = {}
        self.started_at = time.time()
        # Live authentication settings (commands.auth): the default user's
        # password (None: none) and protected mode; CONFIG SET changes both.
        self.requirepass: bytes | None = password_bytes(config.requirepass)
        self.protected_mode = config.protected_mode
        self.info: dict[str, Any] = {}
        # Set by the async shell (server.lifecycle); safe to call from worker
        # threads. The defaults make a Store usable on its own in tests.
        self.max_clients = config.max_clients
        self.request_shutdown: Callable[[], None] = lambda: None
        self.kill_client: Callable[[int], None] = lambda client_id: None
        self.dispatcher_statistics: Callable[[], dict[str, int]] = dict
        # The append-only log (store.durability.persistence.Persistence) when
        # --appendonly yes, set once recovery finished; None: memory only.
        self.persistence: Any = None
        # Ask the shell for a compaction (BGSAVE, BGREWRITEAOF, SAVE); the
        # SaveRequest, if given, is told when it finished.
        self.request_compaction: Callable[[SaveRequest | None], None] = lambda request=None: None

    def save(self) -> bool:
        """SAVE: compact now and wait for it (worker thread, no store lock held)."""
        if self.persistence is None:
            return False
        request = SaveRequest()
        self.request_compaction(request)
        return request.wait()

    def refused_write(self, session: Session, reason: str) -> Error:
        """The reply to a write while the log cannot be written."""
        if session.resp:
            return Error(f"MISCONF Errors writing to the AOF file: {reason}")
        return Error(f"writes refused: error writing the log ({reason})")


def _refuse_exec(store: Store, session: Session, refusal: str) -> Error | None:
    """EXEC while writes are refused, as Redis does it: a transaction
    without writes runs (None); one with writes is discarded, so the client
    is not left inside a MULTI, and answered ``EXECABORT Transaction
    discarded because of: MISCONF ...``. Unwatching needs no store lock."""
    if not any(spec.is_write for spec, _args in session.multi):
        return None
    session.multi = None
    session.multi_failed = False
    session.keyspace.unwatch_all(session)
    return Error(f"EXECABORT Transaction discarded because of: {store.refused_write(session, refusal).message}")


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


def run_batch(store: Store, jobs: list[Job]) -> None:
    """Execute every job's requests, filling ``job.replies`` in order.
    Runs on a worker thread; takes and releases the store's lock itself.

    This loop runs once per command at every request rate, so it reads
    attributes into locals and inlines the table lookup
    (``CommandTable.resolve`` says the same thing more slowly). Calls and
    latency of consecutive runs of one command in a job are recorded once per
    run: they are answered together, so they share one latency (request read
    to reply ready), and per-command bookkeeping was 40% of the engine's
    time. Errors are counted one by one. A command flagged ``stats`` (STATS,
    LATENCY, INFO, CONFIG) first records the run before it, so it sees every
    earlier command of its own pipeline."""
    lock = store.lock
    # This thread's own counters: no lock per command (see store.stats).
    shard = store.stats.shard()
    counts = shard.counts
    slowlog = store.slowlog
    persistence = store.persistence
    keyspace = store.keyspace
    perf_counter = time.perf_counter
    held_write: bool | None = None  # None: no lock held
    try:
        for job in jobs:
            session = job.session
            table = job.table
            by_name = table.by_name
            replies = job.replies
            append = replies.append
            received_at = job.received_at
            # Counters for a run of the same fast command are recorded once
            # per run (StatsShard.record_calls), not once per command.
            run_spec = None
            run_n = run_usec = run_failed = 0
            for args in job.requests:
                if session.closing:
                    break  # QUIT earlier in the batch: nothing after it runs
                spec = by_name.get(args[0].lower())
                if spec is None or not (
                    len(args) == spec.arity if spec.arity >= 0 else len(args) >= -spec.arity
                ):
                    error = table.resolve(args)
                    if session.multi is not None:
                        session.multi_failed = True
                    append(error)
                    counts["errors"] += 1
                    continue
                if not session.authenticated and store.requirepass is not None and "no_auth" not in spec.flags:
                    # Redis' processCommand: after the name and arity checks.
                    if session.multi is not None:
                        session.multi_failed = True
                    append(NOAUTH if session.resp else TEXT_NOAUTH)
                    counts["errors"] += 1
                    continue
                if session.multi is not None and "multi-control" not in spec.flags:
                    if "no_multi" in spec.flags:
                        # Redis: refused, and EXEC will abort the transaction.
                        session.multi_failed = True
                        append(NOT_IN_MULTI)
                        counts["errors"] += 1
                        continue
                    session.multi.append((spec, args))
                    append(QUEUED)
                    continue
                want_write = spec.is_write
                if want_write and persistence is not None:
                    refusal = persistence.refusal()
                    if refusal is not None:
                        if session.multi is not None and spec.name == "exec":
                            refused = _refuse_exec(store, session, refusal)
                        else:
                            refused = store.refused_write(session, refusal)
                        if refused is not None:
                            append(refused)
                            counts["errors"] += 1
                            continue
                if spec.no_lock:
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
                        run_spec.name, run_spec.counter, run_n, run_failed, run_usec,
                        int((perf_counter() - received_at) * 1_000_000),
                    )
                    run_n = run_usec = run_failed = 0
                run_spec = spec
                started = perf_counter()
                session.last_command = name = spec.name
                try:
                    reply = spec.handler(session, args)
                except Exception:
                    log.exception("client %d: command %s failed", session.id, name)
                    reply = Error(("ERR " if session.resp else "") + INTERNAL_ERROR)
                finished = perf_counter()
                append(reply)
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
                        replies[-1] = store.refused_write(session, f"record too large to log ({error})")
                exec_us = int((finished - started) * 1_000_000)
                run_n += 1
                run_usec += exec_us
                if type(reply) is Error:
                    counts["errors"] += 1
                    run_failed += 1
                if exec_us >= slowlog.threshold_us >= 0:
                    slowlog.maybe_record(exec_us, args, session.address, session.name)
            if run_n:
                shard.record_calls(
                    run_spec.name, run_spec.counter, run_n, run_failed, run_usec,
                    int((perf_counter() - received_at) * 1_000_000),
                )
    finally:
        if held_write is not None:
            (lock.release_write if held_write else lock.release_read)()
