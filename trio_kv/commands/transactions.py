"""Redis transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.

Rule 1: everything that affects a connection's transaction state (MULTI's
queue, whether EXEC will abort, the watched keys and whether one of them
changed) lives in this file. The state is a ``Transaction``
(``session.transaction``); nothing outside this file writes its fields.
Others only ask and report:

* the engine (``store.engine``) asks ``admit`` what a request gets inside
  MULTI (QUEUED, a refusal, or None: it runs now), reports a request it
  refused with ``fail`` (a lookup error, NOAUTH) or ``refuse`` (OOM,
  MISCONF), asks ``writes`` and ``denies_oom`` how a request (an EXEC:
  what it queued) acts, and runs the
  ``ExecQueue`` an EXEC hands back through its own executor;
* the keyspace keeps only the mechanism of WATCH (who watches which key;
  ``WatchRegistry``) and calls ``key_touched`` when a watched key is
  written, under its watch lock;
* RESET and a closing connection call ``discard``.

The rules:

* MULTI opens the queue. Inside it every request whose spec says
  ``InMulti.QUEUE`` is queued and answered QUEUED; MULTI, EXEC, DISCARD and
  WATCH (``InMulti.RUN``) run at once (as in Redis 7; their errors inside
  MULTI do not abort the transaction), while UNWATCH is queued like any
  command.
* A request refused before it could be queued (unknown command, wrong arity,
  NOAUTH, OOM) fails the transaction, as Redis' flagTransaction: EXEC then
  answers EXECABORT. So does a command refused inside MULTI
  (``InMulti.REFUSE``: Redis' no_multi) and a command past the queue's
  limits: the queue is bounded (Redis' is not) by
  ``--multi-max-queued-commands`` commands and ``--multi-max-queued-bytes``
  argument bytes (the request bytes the client made the server keep), and
  stops growing there.
* An EXEC with arguments, inside MULTI or not, discards the transaction and
  every watch at once and answers ``EXECABORT Transaction discarded because
  of: wrong number of arguments for 'exec' command`` (``refuse_lookup``;
  Redis 7's rejectCommand calls execCommandAbort for any refused EXEC); a
  later EXEC is then ``EXEC without MULTI``.
* In cluster mode a request whose keys span slots (an EXEC: the keys of
  everything it queued) is refused with CROSSSLOT before it is queued or
  run (commands.slot_check): an EXEC so refused discards the transaction,
  any other request fails it (``refuse_unrouted``), as Redis.
* An EXEC that is itself refused (OOM, or MISCONF while writes are refused)
  discards the transaction (but a NOAUTH EXEC only fails it, and the
  connection stays inside MULTI, as in Redis) and answers ``EXECABORT Transaction discarded
  because of: <why>`` (Redis' execCommandAbort). For those checks an EXEC
  acts as what it queued (Redis' ``mstate.cmd_flags``): it writes if a
  queued command takes the write lock (a transaction of reads runs while
  writes are refused), and is denyoom if a queued command is.
* EXEC ends the transaction and forgets every watch, then: EXECABORT if the
  transaction failed; a null array if a watched key changed (EXECABORT wins);
  else the queued commands run, one after the other, under the write lock
  EXEC holds (it declares ``Lock.WRITE``), through the engine's executor, so
  nothing else touches the keyspace in between. A queued command that fails
  does not stop the others. Each is recorded in the per-command stats as if
  it had run alone; a sliced one runs to its end. EXEC's reply has one
  element per queued command: CLIENT REPLY OFF/SKIP inside EXEC changes the
  mode from the next request on, and its own element is OK.
* WATCH registers the transaction with the keyspace for each key. Any write
  that changes a watched key (value, TTL, deletion, flush) marks the
  transaction ``dirty``, except deleting a key that had already expired
  (but was not deleted yet) when it was watched: nothing visible changed.
  A key that was live when watched and whose time ran out before EXEC also
  breaks the watch (Redis' isWatchedKeyExpired). EXEC, DISCARD, UNWATCH,
  RESET and closing forget every watch.
* Threads: a connection has one batch at a time, so its ``Transaction`` is
  written by one thread at a time, except ``watched`` and ``dirty``, which
  other connections' writes mark (``key_touched``, under the store's write
  lock and the keyspace's watch lock, so never while this connection runs a
  command).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from ..protocol.replies import NO_REPLY, OK, QUEUED, Error, NullArray
from .table import ALL_KEYS, WRITE_LOCK, CommandSpec, InMulti, Lock

if TYPE_CHECKING:
    from ..config import Config
    from .session import Session

EXEC_ABORTED = Error("EXECABORT Transaction discarded because of previous errors.")
WATCH_FAILED = NullArray()
REFUSED_IN_MULTI = Error("ERR Command not allowed inside a transaction")


class WatchRegistry(Protocol):
    """What a transaction needs from the keyspace (``store.keyspace``):
    WATCH's mechanism, none of its rules."""

    def watch(self, watcher: Transaction, key: bytes) -> bool:
        """Register ``watcher`` for ``key``; whether the key is stored but
        its time is up (not deleted yet)."""
        ...

    def unwatch(self, watcher: Transaction, keys: Iterable[bytes]) -> None: ...

    def stored_but_expired(self, key: bytes) -> bool: ...


class ExecQueue:
    """What EXEC hands the engine: the queued commands, to run one after the
    other through the engine's executor under the write lock EXEC holds;
    ``reply`` turns their replies into EXEC's."""

    __slots__ = ("commands",)

    def __init__(self, commands: list[tuple[CommandSpec, list[bytes]]]) -> None:
        self.commands = commands

    def reply(self, session: Session, replies: list[object]) -> list[object]:
        session.last_command = "exec"  # CLIENT LIST cmd=, as Redis shows after EXEC
        # CLIENT REPLY OFF|SKIP inside EXEC: the array keeps its element.
        return [OK if reply is NO_REPLY else reply for reply in replies]


class Transaction:
    """One connection's MULTI/WATCH state; see the module docstring."""

    __slots__ = ("_keyspace", "queued", "failed", "queued_bytes", "watched", "dirty")

    def __init__(self, keyspace: WatchRegistry) -> None:
        self._keyspace = keyspace
        # The queued (spec, args) inside MULTI; None outside a transaction.
        self.queued: list[tuple[CommandSpec, list[bytes]]] | None = None
        # A request was refused while queueing: EXEC answers EXECABORT
        # (Redis' CLIENT_DIRTY_EXEC).
        self.failed = False
        # Argument bytes queued so far (for --multi-max-queued-bytes).
        self.queued_bytes = 0
        # WATCH: key -> True if it had already expired (not yet deleted)
        # when watched.
        self.watched: dict[bytes, bool] = {}
        # A watched key changed: EXEC answers a null array (Redis' CLIENT_DIRTY_CAS).
        self.dirty = False

    # --- MULTI's queue ----------------------------------------------------------

    def begin(self) -> object:
        if self.queued is not None:
            return Error("ERR MULTI calls can not be nested")
        self.queued = []
        self.failed = False
        self.queued_bytes = 0
        return OK

    def admit(self, spec: CommandSpec, args: list[bytes], config: Config) -> object | None:
        """Inside MULTI: what the request gets instead of running (QUEUED, or
        an error that fails the transaction), or None if it runs now."""
        queued = self.queued
        if queued is None or spec.runs_in_multi:
            return None
        if spec.refused_in_multi:
            self.failed = True
            return REFUSED_IN_MULTI
        if len(queued) >= config.multi_max_queued_commands:
            self.failed = True
            return Error(
                "ERR Transaction queue is full "
                f"(multi-max-queued-commands {config.multi_max_queued_commands}); EXEC will abort"
            )
        size = sum(map(len, args))
        if self.queued_bytes + size > config.multi_max_queued_bytes:
            self.failed = True
            return Error(
                "ERR Transaction queue is full "
                f"(multi-max-queued-bytes {config.multi_max_queued_bytes}); EXEC will abort"
            )
        self.queued_bytes += size
        queued.append((spec, args))
        return QUEUED

    def fail(self) -> None:
        """A request was refused before it could be queued (Redis'
        flagTransaction): an open transaction will answer EXECABORT."""
        if self.queued is not None:
            self.failed = True

    def refuse_lookup(self, spec: CommandSpec | None, error: Error) -> Error:
        """The reply to a request the command table refused (unknown
        command, wrong arity; Redis' rejectCommand): an EXEC, inside MULTI
        or not, discards the transaction and every watch and answers
        EXECABORT naming ``error`` (execCommandAbort); any other request
        fails an open transaction and gets ``error``."""
        if spec is not None and spec.handler is cmd_exec:
            self.discard()
            # Redis formats these refusals without the ERR code (rejectCommandFormat).
            return Error(f"EXECABORT Transaction discarded because of: {error.message.removeprefix('ERR ')}")
        self.fail()
        return error

    def refuse(self, spec: CommandSpec, error: Error) -> Error:
        """The reply to a request refused before it ran (Redis'
        rejectCommand): an EXEC of an open transaction discards it and
        answers EXECABORT naming ``error``; any other request fails an open
        transaction and gets ``error``."""
        if self.queued is not None and spec.handler is cmd_exec:
            self.discard()
            return Error(f"EXECABORT Transaction discarded because of: {error.message}")
        self.fail()
        return error

    def routed(self, spec: CommandSpec, args: list[bytes]) -> list[tuple[CommandSpec, list[bytes]]]:
        """The requests whose keys decide where a request may run (cluster
        mode, commands.slot_check): an EXEC of an open transaction, every
        command it queued; any other request, itself."""
        if self.queued is not None and spec.handler is cmd_exec:
            return self.queued
        return [(spec, args)]

    def refuse_unrouted(self, spec: CommandSpec, error: Error) -> Error:
        """The reply to a request refused because its keys cannot run here
        (CROSSSLOT; Redis' processCommand): an EXEC of an open transaction
        discards it, any other request fails an open transaction (EXEC will
        abort); either way the reply is ``error`` itself."""
        if self.queued is not None and spec.handler is cmd_exec:
            self.discard()
        else:
            self.fail()
        return error

    def writes(self, spec: CommandSpec, args: list[bytes]) -> bool:
        """Whether a request counts as a write for admission (MISCONF): an
        EXEC of an open transaction if a queued command takes the write lock;
        any other request if it does."""
        if self.queued is not None and spec.handler is cmd_exec:
            return any(queued.lock_for(queued_args) is WRITE_LOCK for queued, queued_args in self.queued)
        return spec.lock_for(args) is WRITE_LOCK

    def denies_oom(self, spec: CommandSpec) -> bool:
        """Whether maxmemory may refuse a request (denyoom): an EXEC of an
        open transaction if a queued command is denyoom; any other if it is."""
        if self.queued is not None and spec.handler is cmd_exec:
            return any(queued.denies_oom for queued, _args in self.queued)
        return spec.denies_oom

    def commit(self) -> object:
        """EXEC: end the transaction; EXECABORT, a null array, or the
        ``ExecQueue`` to run (see the module docstring)."""
        queued = self.queued
        if queued is None:
            return Error("ERR EXEC without MULTI")
        failed = self.failed
        broken = self._watch_broken()
        self.discard()
        if failed:
            return EXEC_ABORTED
        if broken:
            return WATCH_FAILED
        return ExecQueue(queued)

    def discard(self) -> None:
        """Leave MULTI (if in it) and forget every watch: DISCARD, EXEC,
        RESET, a closing connection. Needs no store lock."""
        self.queued = None
        self.failed = False
        self.queued_bytes = 0
        self.unwatch()

    # --- WATCH ------------------------------------------------------------------

    def watch(self, keys: Iterable[bytes]) -> object:
        if self.queued is not None:
            return Error("ERR WATCH inside MULTI is not allowed")
        for key in keys:
            if key not in self.watched:
                self.watched[key] = self._keyspace.watch(self, key)
        return OK

    def unwatch(self) -> None:
        if self.watched:
            self._keyspace.unwatch(self, self.watched)
            self.watched.clear()
        self.dirty = False

    def key_touched(self, key: bytes, present: bool) -> None:
        """A watched key was just written or deleted (the keyspace calls
        this under its watch lock; ``present``: the key exists now)."""
        if self.watched.get(key) and not present:
            # Watched while already expired, now deleted: nothing visible changed.
            self.watched[key] = False
        else:
            self.dirty = True

    def _watch_broken(self) -> bool:
        """Whether EXEC must fail: a watched key changed, or was live when
        watched and its time is up now. Write lock (EXEC's)."""
        if self.dirty:
            return True
        stored_but_expired = self._keyspace.stored_but_expired
        return any(
            not expired_when_watched and stored_but_expired(key)
            for key, expired_when_watched in self.watched.items()
        )


def cmd_multi(session: Session, args: list[bytes]) -> object:
    return session.transaction.begin()


def cmd_exec(session: Session, args: list[bytes]) -> object:
    return session.transaction.commit()


def cmd_discard(session: Session, args: list[bytes]) -> object:
    transaction = session.transaction
    if transaction.queued is None:
        return Error("ERR DISCARD without MULTI")
    transaction.discard()
    return OK


def cmd_watch(session: Session, args: list[bytes]) -> object:
    return session.transaction.watch(args[1:])


def cmd_unwatch(session: Session, args: list[bytes]) -> object:
    session.transaction.unwatch()
    return OK


SPECS: list[CommandSpec] = [
    CommandSpec(
        name="multi", arity=1, lock=Lock.READ, flags=("fast",), in_multi=InMulti.RUN, since="1.2.0",
        group="transactions", handler=cmd_multi, summary="Mark the start of a transaction block",
    ),
    CommandSpec(
        name="exec", arity=1, lock=Lock.WRITE, flags=("write",), in_multi=InMulti.RUN, since="1.2.0",
        group="transactions", handler=cmd_exec, summary="Execute all commands issued after MULTI",
    ),
    CommandSpec(
        name="discard", arity=1, lock=Lock.READ, flags=("fast",), in_multi=InMulti.RUN, since="2.0.0",
        group="transactions", handler=cmd_discard, summary="Discard all commands issued after MULTI",
    ),
    CommandSpec(
        name="watch", arity=-2, lock=Lock.READ, flags=("fast",), in_multi=InMulti.RUN, keys=ALL_KEYS, since="2.2.0",
        group="transactions", handler=cmd_watch,
        summary="Watch the given keys to determine execution of the MULTI/EXEC block",
    ),
    CommandSpec(
        name="unwatch", arity=1, lock=Lock.READ, flags=("fast",), since="2.2.0", group="transactions",
        handler=cmd_unwatch, summary="Forget about all watched keys",
    ),
]
