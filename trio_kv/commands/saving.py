"""Redis persistence commands: SAVE, BGSAVE, BGREWRITEAOF, LASTSAVE.

In trio_kv all three saving commands start the same operation, a
*compaction* of the append-only log (store.durability: switch to a new log
generation, write a snapshot of the keyspace while clients are served,
install it, retire the old files). Redis' RDB save and AOF rewrite are one
thing here, so INFO reports the same compactions under ``rdb_*`` and
``aof_*``. Replies and errors are worded as Redis 7 words them:

    SAVE              -> +OK once a compaction that started after the call
                         has finished; -ERR ... if it failed
    BGSAVE [SCHEDULE] -> +Background saving started
    BGREWRITEAOF      -> +Background append only file rewriting started
    LASTSAVE          -> :<unix time of the last successful compaction>

* SAVE blocks its worker (as Redis' SAVE blocks its server) and holds no
  store lock while it waits (``Lock.NONE``): the compaction needs the
  locks. It is refused inside MULTI (``InMulti.REFUSE``, shown as Redis 7's
  ``no_multi``), where
  EXEC would hold the write lock.
* While a compaction runs, BGSAVE is refused as Redis refuses a second one
  unless ``SCHEDULE`` is given (then ``+Background saving scheduled``: one
  more compaction follows), and BGREWRITEAOF is refused with Redis' "already
  in progress".
* LASTSAVE is the last successful compaction, or the start of the server
  (as Redis reports before its first save).
* With ``--appendonly no`` there is no log: SAVE writes the whole keyspace
  to ``<data-dir>/dump.snapshot`` (store.durability.memory_snapshot; loaded
  at the next start with ``--appendonly no``) and answers ``+OK`` once it is
  fsynced and in place, ``-ERR`` if it could not be written. BGSAVE and
  BGREWRITEAOF answer ``-ERR`` (nothing runs in the background without the
  log; use SAVE). LASTSAVE answers the start of the last successful SAVE,
  or the start time.

Handlers do no IO: the running server does it (``session.control``,
commands.control: ``compact_and_wait``, ``request_compaction``, the log's
state as ``log``); the memory-only snapshot is the store's
(``session.store.save_memory_snapshot``).
"""

from __future__ import annotations

from ..protocol.replies import OK, Error, SimpleString
from .connection import SYNTAX_ERROR
from .session import Session
from .table import CommandSpec, InMulti, Lock

MEMORY_ONLY = Error("ERR the append-only log is off (--appendonly no): use SAVE to write a snapshot")
BGSAVE_STARTED = SimpleString("Background saving started")
BGSAVE_SCHEDULED = SimpleString("Background saving scheduled")
BGSAVE_IN_PROGRESS = Error("ERR Background save already in progress")
REWRITE_STARTED = SimpleString("Background append only file rewriting started")
REWRITE_IN_PROGRESS = Error("ERR Background append only file rewriting already in progress")


def cmd_save(session: Session, args: list[bytes]) -> object:
    persistence = session.control.log
    if persistence is None:
        try:
            session.store.save_memory_snapshot()
        except OSError as error:
            return Error(f"ERR SAVE failed: {error}")
        return OK
    if session.control.compact_and_wait():
        return OK
    reason = persistence.refusal() or "the compaction failed, see the server log"
    return Error(f"ERR SAVE failed: {reason}")


def cmd_bgsave(session: Session, args: list[bytes]) -> object:
    if len(args) > 2 or (len(args) == 2 and args[1].lower() != b"schedule"):
        return SYNTAX_ERROR
    persistence = session.control.log
    if persistence is None:
        return MEMORY_ONLY
    if persistence.rewrite_in_progress:
        if len(args) == 1:
            return BGSAVE_IN_PROGRESS
        session.control.request_compaction()
        return BGSAVE_SCHEDULED
    session.control.request_compaction()
    return BGSAVE_STARTED


def cmd_bgrewriteaof(session: Session, args: list[bytes]) -> object:
    persistence = session.control.log
    if persistence is None:
        return MEMORY_ONLY
    if persistence.rewrite_in_progress:
        return REWRITE_IN_PROGRESS
    session.control.request_compaction()
    return REWRITE_STARTED


def cmd_lastsave(session: Session, args: list[bytes]) -> int:
    persistence = session.control.log
    if persistence is None:
        return session.store.memory_last_save_s or int(session.control.started_at_s)
    return persistence.last_save_time


# since=None: COMMAND DOCS has never shown one for these four (the output
# is pinned byte for byte by tests/integration/test_command_output_pinned.py);
# Redis' is 1.0.0 for each. Adding it is a deliberate change of that output.
SPECS: list[CommandSpec] = [
    CommandSpec(
        name="save", arity=1, lock=Lock.NONE, flags=("admin", "noscript", "no_async_loading", "no_multi"),
        in_multi=InMulti.REFUSE, since=None, group="server", handler=cmd_save,
        summary="Compacts the log into a snapshot and waits for it to finish.",
    ),
    CommandSpec(
        name="bgsave", arity=-1, lock=Lock.READ, flags=("admin", "noscript", "no_async_loading"), since=None,
        group="server", handler=cmd_bgsave, summary="Compacts the log into a snapshot in the background.",
    ),
    CommandSpec(
        name="bgrewriteaof", arity=1, lock=Lock.READ, flags=("admin", "noscript", "no_async_loading"), since=None,
        group="server", handler=cmd_bgrewriteaof,
        summary="Rewrites the append-only log (a compaction) in the background.",
    ),
    CommandSpec(
        name="lastsave", arity=1, lock=Lock.READ, flags=("loading", "stale", "fast"), since=None, group="server",
        handler=cmd_lastsave, summary="Returns the Unix time of the last successful save (compaction).",
    ),
]
