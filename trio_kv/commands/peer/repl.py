"""TKV.REPL.PUT and TKV.REPL.GET: a key's versions between replicas.

::

    TKV.REPL.PUT key clock   -> :1 (the key changed) or :0 (it held all of it)
    TKV.REPL.PUT key clock [key clock ...]
                             -> an array: that reply for each pair, in order
    TKV.REPL.GET key         -> the key's clock, or nil if it has none

``clock`` is a packed DVVSet in wire form (cluster/dvvset.py: every
payload a key state or a tombstone, cluster/key_state.py), as
``Versions.clock_of`` and ``Job.version_deltas`` give it.

* TKV.REPL.PUT syncs the clock into the key's own (``Versions.apply_remote``):
  siblings neither side has seen past are kept, the winner is materialized
  into the keyspace, no new version is made. It is a write command like
  any other (the write lock, the effects unit, the log record), so its
  reply is sent through the normal commit path: only once the record is in
  the log under this node's fsync policy. A PUT that changes nothing still
  writes the key's clock to the log again (``Versions.touch``) and waits
  for it, so an ack never precedes the durability of the state it
  acknowledges (a duplicate may overtake the first copy, still in flight).
* A clock this node refuses (malformed, a held payload, a family this build
  lacks) changes nothing and is answered ``-ERR invalid clock: ...``.
* Several pairs (a coordinator's writes for this node, gathered per send:
  server/cluster/replicator.py) are one command: one lock hold, one effects
  unit, one log record, one reply to parse; each pair is applied as a PUT of
  its own would be and gets its own reply in the array (an error for a
  refused clock, the other pairs still applied), so a coordinator counts
  each key's ack as if it had been sent alone. A key may appear twice: its
  pairs are applied in order.
* With cluster mode off: ``-ERR This instance has cluster support disabled``.

For the bus table: ``DECLARATIONS`` lists (name, arity, handler,
summary, lock) for its own spec builder, each to run only for a peer that
completed the handshake (the bus's ``Access.PEER``); ``SPECS`` are plain
specs of the same (no access check), for tests and tables without one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...protocol.replies import Error
from ..session import Session
from ..table import ONE_KEY, CommandSpec, Handler, InMulti, Lock

if TYPE_CHECKING:
    from ...store.versions import Versions

CLUSTER_DISABLED = Error("ERR This instance has cluster support disabled")


def cmd_repl_put(session: Session, args: list[bytes]) -> object:
    versions = session.store.versions
    if versions is None:
        return CLUSTER_DISABLED
    if len(args) == 3:
        return _put(versions, args[1], args[2])
    if len(args) % 2 == 0:
        return Error("ERR wrong number of arguments for 'tkv.repl.put' command")
    return [_put(versions, args[index], args[index + 1]) for index in range(1, len(args), 2)]


def _put(versions: Versions, key: bytes, clock: bytes) -> object:
    try:
        changed = versions.apply_remote(key, clock)
    except ValueError as error:
        return Error(f"ERR invalid clock: {error}")
    if not changed:
        versions.touch(key)
    return int(changed)


def cmd_repl_get(session: Session, args: list[bytes]) -> object:
    versions = session.store.versions
    if versions is None:
        return CLUSTER_DISABLED
    return versions.clock_of(args[1])


DECLARATIONS: list[tuple[str, int, Handler, str, Lock]] = [
    (
        "tkv.repl.put", -3, cmd_repl_put,
        "Merge a replica's versions of a key into this node's (acknowledged once logged)", Lock.WRITE,
    ),
    ("tkv.repl.get", 2, cmd_repl_get, "This node's versions of a key (packed clock)", Lock.READ),
]

SPECS: list[CommandSpec] = [
    CommandSpec(
        name=name, arity=arity, lock=lock, flags=("no_auth",), keys=ONE_KEY, in_multi=InMulti.RUN,
        since=None, group="cluster", handler=handler, summary=summary,
    )
    for name, arity, handler, summary, lock in DECLARATIONS
]
