"""Redis transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.

How a transaction runs here:

* MULTI opens ``session.multi``; the engine (``store.engine.run_batch``) then
  queues every command whose spec says ``InMulti.QUEUE``
  (``queue_command``) and answers QUEUED, and marks ``session.multi_failed``
  when a command is rejected before queueing (unknown name, wrong arity), as
  Redis' flagTransaction.
* The queue is bounded (Redis' is not): a command past
  ``--multi-max-queued-commands`` commands or ``--multi-max-queued-bytes``
  argument bytes is not queued; it gets an error and marks the transaction
  failed, so EXEC answers ``-EXECABORT`` (like any queue-time error) and
  the queue stops growing. The byte count is the arguments' lengths, the
  request bytes the client made the server keep.
* EXEC declares ``Lock.WRITE``, so the engine holds the write lock for the
  whole transaction: the queued handlers run here, one after the other, and
  nothing else touches the keyspace in between. A queued command that fails
  does not stop the others (Redis). Each queued command is recorded in the
  per-command stats as if it had run alone.
* WATCH registers the session on the keyspace (``Keyspace.watch``); any write
  to a watched key marks the session ``dirty_cas``, and EXEC then answers a
  null array. EXEC, DISCARD and UNWATCH forget every watch; the connection
  shell calls ``Keyspace.unwatch_all`` when a connection closes.
* As in Redis 7, MULTI, EXEC, DISCARD and WATCH run at once inside MULTI
  (``InMulti.RUN``) while UNWATCH is queued like any command; errors of
  MULTI and WATCH inside MULTI do not abort the transaction.
"""

from __future__ import annotations

import logging
import time

from ..protocol.replies import NO_REPLY, OK, QUEUED, Error, NullArray
from .session import Session
from .slicing import finish
from .table import ALL_KEYS, CommandSpec, InMulti, Lock
from .values import WRONGTYPE_ERROR, WrongType

log = logging.getLogger(__name__)

EXEC_ABORTED = Error("EXECABORT Transaction discarded because of previous errors.")
WATCH_FAILED = NullArray()
INTERNAL_ERROR = Error("ERR internal error, see the server log")


def cmd_multi(session: Session, args: list[bytes]) -> object:
    if session.multi is not None:
        return Error("ERR MULTI calls can not be nested")
    session.multi = []
    session.multi_failed = False
    session.multi_queued_bytes = 0
    return OK


def queue_command(session: Session, spec: CommandSpec, args: list[bytes]) -> object:
    """Queue a command inside MULTI: QUEUED, or an error past the queue's
    limits (the transaction is then failed: EXEC answers EXECABORT)."""
    queued = session.multi
    config = session.config
    if len(queued) >= config.multi_max_queued_commands:
        session.multi_failed = True
        return Error(
            "ERR Transaction queue is full "
            f"(multi-max-queued-commands {config.multi_max_queued_commands}); EXEC will abort"
        )
    size = sum(map(len, args))
    if session.multi_queued_bytes + size > config.multi_max_queued_bytes:
        session.multi_failed = True
        return Error(
            "ERR Transaction queue is full "
            f"(multi-max-queued-bytes {config.multi_max_queued_bytes}); EXEC will abort"
        )
    session.multi_queued_bytes += size
    queued.append((spec, args))
    return QUEUED


def cmd_exec(session: Session, args: list[bytes]) -> object:
    queued = session.multi
    if queued is None:
        return Error("ERR EXEC without MULTI")
    failed = session.multi_failed
    session.multi = None
    session.multi_failed = False
    keyspace = session.keyspace
    broken = keyspace.watch_broken(session)
    keyspace.unwatch_all(session)
    if failed:
        return EXEC_ABORTED
    if broken:
        return WATCH_FAILED
    replies = [_run_queued(session, spec, queued_args) for spec, queued_args in queued]
    session.last_command = "exec"  # CLIENT LIST cmd=, as Redis shows after EXEC
    return replies


def _run_queued(session: Session, spec: CommandSpec, args: list[bytes]) -> object:
    session.last_command = spec.name
    started = time.perf_counter()
    try:
        # A sliced command (KEYS, FLUSHALL...) runs to its end here: the
        # transaction stays atomic (commands/slicing.py).
        reply = finish(spec.handler(session, args))
    except WrongType:
        reply = WRONGTYPE_ERROR
    except Exception:
        log.exception("client %d: command %s in EXEC failed", session.id, spec.name)
        reply = INTERNAL_ERROR
    elapsed_us = int((time.perf_counter() - started) * 1_000_000)
    failed = isinstance(reply, Error)
    # Under the name it ran as (client|id), with its error's code for errorstats.
    session.stats.record_command(
        session.last_command, spec.counter, failed, elapsed_us, elapsed_us, reply.message if failed else "ERR"
    )
    if reply is NO_REPLY:
        # CLIENT REPLY OFF|SKIP inside EXEC: the mode changes from the next
        # request on, but EXEC's array keeps one element per command.
        return OK
    return reply


def cmd_discard(session: Session, args: list[bytes]) -> object:
    if session.multi is None:
        return Error("ERR DISCARD without MULTI")
    session.multi = None
    session.multi_failed = False
    session.keyspace.unwatch_all(session)
    return OK


def cmd_watch(session: Session, args: list[bytes]) -> object:
    if session.multi is not None:
        return Error("ERR WATCH inside MULTI is not allowed")
    watch = session.keyspace.watch
    for key in args[1:]:
        watch(session, key)
    return OK


def cmd_unwatch(session: Session, args: list[bytes]) -> object:
    session.keyspace.unwatch_all(session)
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
