"""A cluster client's per-connection commands: READONLY, READWRITE, ASKING,
and WAIT.

* READONLY / READWRITE set and clear the connection's ``cluster_readonly``
  flag (Redis' CLIENT_READONLY: CLIENT LIST shows ``r``); ASKING is
  accepted (``OK``) and changes nothing: trio_kv never migrates a slot,
  so it never answers ``-ASK``. With cluster mode off, all three answer
  ``-ERR This instance has cluster support disabled``, as redis-server
  7.0 with ``cluster-enabled no``.
* TKV.CONSISTENCY ONE|QUORUM|ALL sets the connection's consistency level
  (``session.cluster_consistency``): its reads and writes then wait for 1,
  the configured quorum, or every preference-list replica (the
  coordinator, server/cluster/coordinator.py, reads it). Without an
  argument it answers the level. With cluster mode off:
  ``-ERR This instance has cluster support disabled``.
* WAIT numreplicas timeout answers the number of replicas that hold this
  connection's writes: 0 on a node that replicates nothing (one node, or
  cluster mode off), at once, whatever ``numreplicas`` asks for (redis-server
  without replicas would block for ``timeout``). Its arguments are checked
  with Redis' wording in both modes. The cluster's coordinator will count
  replica acks here.
"""

from __future__ import annotations

from ..protocol.integers import parse_int64
from ..protocol.replies import OK, Error
from .arguments import NOT_AN_INTEGER
from .cluster import CLUSTER_DISABLED
from .session import Session
from .table import CommandSpec, Lock

TIMEOUT_NOT_AN_INTEGER = Error("ERR timeout is not an integer or out of range")
TIMEOUT_NEGATIVE = Error("ERR timeout is negative")


def cmd_readonly(session: Session, args: list[bytes]) -> object:
    if session.control.cluster_view() is None:
        return CLUSTER_DISABLED
    session.cluster_readonly = True
    return OK


def cmd_readwrite(session: Session, args: list[bytes]) -> object:
    if session.control.cluster_view() is None:
        return CLUSTER_DISABLED
    session.cluster_readonly = False
    return OK


def cmd_asking(session: Session, args: list[bytes]) -> object:
    if session.control.cluster_view() is None:
        return CLUSTER_DISABLED
    return OK


LEVELS = ("ONE", "QUORUM", "ALL")
INVALID_LEVEL = Error("ERR consistency level must be ONE, QUORUM or ALL")


def cmd_consistency(session: Session, args: list[bytes]) -> object:
    """TKV.CONSISTENCY [ONE|QUORUM|ALL]: set this connection's level (OK),
    or, without an argument, show it."""
    if session.control.cluster_view() is None:
        return CLUSTER_DISABLED
    if len(args) == 1:
        return (session.cluster_consistency or "QUORUM").encode()
    if len(args) != 2:
        return Error("ERR wrong number of arguments for 'tkv.consistency' command")
    level = args[1].decode("latin-1").upper()
    if level not in LEVELS:
        return INVALID_LEVEL
    session.cluster_consistency = level
    return OK


def cmd_wait(session: Session, args: list[bytes]) -> object:
    if parse_int64(args[1]) is None:
        return NOT_AN_INTEGER
    timeout_ms = parse_int64(args[2])
    if timeout_ms is None:
        return TIMEOUT_NOT_AN_INTEGER
    if timeout_ms < 0:
        return TIMEOUT_NEGATIVE
    return 0  # replicas holding this connection's writes: none here


# Flags, categories and summaries as redis-server 7.0.15's COMMAND INFO / DOCS.
SPECS: list[CommandSpec] = [
    CommandSpec(
        name="readonly", arity=1, lock=Lock.READ, flags=("loading", "stale", "fast"), categories=("connection",),
        since="3.0.0", group="cluster", handler=cmd_readonly,
        summary="Enables read queries for a connection to a cluster replica node",
    ),
    CommandSpec(
        name="readwrite", arity=1, lock=Lock.READ, flags=("loading", "stale", "fast"), categories=("connection",),
        since="3.0.0", group="cluster", handler=cmd_readwrite,
        summary="Disables read queries for a connection to a cluster replica node",
    ),
    CommandSpec(
        name="asking", arity=1, lock=Lock.READ, flags=("fast",), categories=("connection",), since="3.0.0",
        group="cluster", handler=cmd_asking, summary="Sent by cluster clients after an -ASK redirect",
    ),
    CommandSpec(
        name="wait", arity=3, lock=Lock.READ, flags=("noscript",), categories=("connection",), since="3.0.0",
        group="generic", handler=cmd_wait,
        summary="Wait for the synchronous replication of all the write commands sent in the context of the "
        "current connection",
    ),
    CommandSpec(
        name="tkv.consistency", arity=-1, lock=Lock.READ, flags=("loading", "stale", "fast"),
        categories=("connection",), since=None, group="cluster", handler=cmd_consistency,
        summary="Set or show this connection's consistency level for reads and writes (ONE, QUORUM, ALL)",
    ),
]
