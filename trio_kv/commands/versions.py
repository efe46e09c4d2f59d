"""TKV.SIBLINGS and TKV.PUTCTX: a client's view of a key's versions.

In cluster mode every key keeps a dotted version vector set
(store/versions.py): writes that no replica saw in order are kept side by
side as *siblings*, and GET answers the winner (the greatest hybrid clock
timestamp, then node id). These two commands let a client see and resolve
them, Dynamo's "semantic reconciliation"::

    TKV.SIBLINGS key           -> [context, [value, value, ...]]
    TKV.PUTCTX key context value  -> OK

* The values come winner first. A string sibling is its bulk string, a
  hash sibling its fields and values (a map, as HGETALL), a deletion
  (tombstone) or an expired sibling nil. A key with no versions answers an
  empty context and no values.
* The context is opaque and printable (base64url): the causal history of
  every sibling listed. TKV.PUTCTX with it sets the key to the string
  ``value`` (no TTL, as SET) superseding exactly those siblings: siblings
  written meanwhile, which the context has not seen, stay (a stale context
  never loses a write). A plain SET supersedes everything this node has
  seen.
* With cluster mode off both answer ``-ERR This instance has cluster
  support disabled`` (redis-server's text for cluster commands then); a
  context that is not one is ``-ERR invalid context``.

In this part of the work both act on this node's replica only; the
coordinator that replicates them (and gathers siblings from R replicas)
builds on ``Job.version_deltas`` (store/engine.py).
"""

from __future__ import annotations

from ..cluster.dvvset import ClockFormatError, decode_context
from ..cluster.key_state import STRING_TYPE, KeyState
from ..protocol.replies import OK, Error, Map
from .hash_value import HashValue
from .session import Session
from .table import ONE_KEY, CommandSpec, Lock
from .values import value_types

CLUSTER_DISABLED = Error("ERR This instance has cluster support disabled")
INVALID_CONTEXT = Error("ERR invalid context")

# The families a sibling can be shown as (commands/redis.py's VALUE_TYPES;
# not imported from there, which imports this module).
_FAMILIES = value_types(HashValue)


def _shown(state: KeyState | None, now_ms: int) -> object:
    """One sibling as TKV.SIBLINGS shows it."""
    if state is None or state.expired(now_ms):
        return None
    if state.type_code == STRING_TYPE:
        return state.data
    family = _FAMILIES.get(state.type_code)
    if family is None:
        return None  # a family this build does not have: shown as unknown
    value = family.empty()
    family.UPDATE.decode(state.data).apply(value)
    if isinstance(value, HashValue):
        return Map(list(value.fields.items()))
    return None


def cmd_siblings(session: Session, args: list[bytes]) -> object:
    versions = session.store.versions
    if versions is None:
        return CLUSTER_DISABLED
    context, siblings = versions.siblings(args[1])
    now_ms = session.keyspace.now_ms()
    return [context, [_shown(state, now_ms) for _, state in siblings]]


def cmd_putctx(session: Session, args: list[bytes]) -> object:
    versions = session.store.versions
    if versions is None:
        return CLUSTER_DISABLED
    try:
        context = decode_context(args[2])
    except ClockFormatError:
        return INVALID_CONTEXT
    versions.put_with_context(args[1], context, args[3])
    return OK


SPECS: list[CommandSpec] = [
    CommandSpec(
        name="tkv.siblings", arity=2, lock=Lock.READ, flags=("readonly",), keys=ONE_KEY, counter="gets",
        since=None, group="cluster", handler=cmd_siblings,
        summary="Return every sibling version of a key and the context that resolves them (cluster mode)",
    ),
    CommandSpec(
        name="tkv.putctx", arity=4, lock=Lock.WRITE, flags=("write", "denyoom"), keys=ONE_KEY, counter="sets",
        since=None, group="cluster", handler=cmd_putctx,
        summary="Set the string value of a key, superseding the siblings a context has seen (cluster mode)",
    ),
]
