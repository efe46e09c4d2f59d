"""Cluster mode's check before a command runs: all of a request's keys
must hash to one slot, or the request is refused with Redis' error
``-CROSSSLOT Keys in request don't hash to the same slot``.

Redis checks this in processCommand (getNodeByQuery), after the lookup,
arity and NOAUTH checks and before anything else; so does the engine
(``store.engine._admit``), from the command table's key positions
(``CommandSpec.first_key`` / ``last_key`` / ``key_step``), never inside a
handler. An EXEC is checked over every command it queued (a transaction
runs on one node: its keys must share a slot); a refused EXEC discards the
transaction, any other refused request inside MULTI makes EXEC abort
(``Transaction.refuse_unrouted``, commands/transactions.py).

The engine asks only when cluster mode is on and the request may name
several keys (``CommandSpec.several_keys``) or a transaction is open, so
with cluster mode off the cost is one test of a local.

Pure code: no trio, sockets or threads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..cluster.slots import key_slot
from ..protocol.replies import Error
from .table import CommandSpec

CROSSSLOT = Error("CROSSSLOT Keys in request don't hash to the same slot")

Request = tuple[CommandSpec, list[bytes]]


def first_key(spec: CommandSpec, args: Sequence[bytes]) -> bytes | None:
    """The first key of a request (the one that routes it in a cluster),
    or None for a keyless command or a request too short to name it."""
    first = spec.first_key
    if first <= 0 or len(args) <= first:
        return None
    return args[first]


def request_keys(spec: CommandSpec, args: list[bytes]) -> list[bytes]:
    """The keys of a request, from its spec's key positions (Redis' first
    key, last key, step; a negative last key counts from the end)."""
    first = spec.first_key
    if first <= 0:
        return []
    last = spec.last_key if spec.last_key >= 0 else len(args) + spec.last_key
    return args[first : min(last, len(args) - 1) + 1 : spec.key_step]


def slot_refusal(requests: Iterable[Request]) -> Error | None:
    """CROSSSLOT if the keys of ``requests`` (one request, or an EXEC's
    queued ones) span more than one slot, else None."""
    slot = -1
    for spec, args in requests:
        for key in request_keys(spec, args):
            key_at = key_slot(key)
            if slot == -1:
                slot = key_at
            elif key_at != slot:
                return CROSSSLOT
    return None
