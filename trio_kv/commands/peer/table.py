"""The bus's command table: every ``TKV.*`` peer command, each with its
``Access`` (``access``); any other name runs the hidden fallback, which
refuses and closes. The data path adds its commands here (``Access.PEER``).
"""

from __future__ import annotations

from ...protocol.replies import Error
from ..table import CommandSpec, CommandTable, Handler, InMulti, Lock
from . import aae, forward, hello, hint, ping, repl, ring
from .access import Access, cmd_not_bus, guarded


def peer_spec(name: str, arity: int, access: Access, handler: Handler, summary: str, lock: Lock = Lock.NONE) -> CommandSpec:
    """A bus command: no store lock unless it touches the store (the
    handshake and the ring read only the node), never queued."""
    return CommandSpec(
        name=name, arity=arity, lock=lock, flags=("no_auth",), in_multi=InMulti.RUN, since=None,
        group="cluster", handler=guarded(name, access, handler), summary=summary,
    )


def _wrong_arity(spec: CommandSpec) -> Error:
    return Error(f"ERR wrong number of arguments for '{spec.name}' command")


PEER_SPECS = [
    peer_spec("tkv.hello", 7, Access.HANDSHAKE, hello.cmd_hello, "Introduce a peer (the bus handshake)"),
    peer_spec("tkv.auth", 2, Access.HANDSHAKE, hello.cmd_auth, "Prove the cluster secret (HMAC of both nonces)"),
    peer_spec("tkv.ping", -1, Access.READ, ping.cmd_ping, "Liveness: this node's ring epoch and hash"),
    peer_spec("tkv.ring", -1, Access.READ, ring.cmd_ring, "The ring document as this node sees it ([RECORD]: as stored)"),
    peer_spec("tkv.ring.push", 2, Access.PEER, ring.cmd_push, "Adopt this ring record if its epoch is newer"),
    peer_spec(
        "tkv.ring.change", -2, Access.ADMIN, ring.cmd_change,
        "A membership change: ADD host:port | REMOVE member [PLAN] (staged), FINISH (final); pushed to all",
    ),
    # The coordinator runs TKV.FORWARD itself (server/cluster/coordinator.py);
    # this spec is what an unauthenticated peer or a stray client meets.
    peer_spec("tkv.forward", -4, Access.PEER, forward.cmd_forward, "Coordinate a client request here (wire level cmd...)"),
    peer_spec(
        "tkv.forward.exec", -4, Access.PEER, forward.cmd_forward,
        "Coordinate a client's whole transaction here (wire level nwatched [key clock]... [argc arg...]...)",
    ),
    # Sloppy quorum: hold a down member's share of a write (hint.py; the hints run it).
    peer_spec(
        "tkv.hint", -4, Access.PEER, hint.cmd_hint,
        "Hold key clock pairs as hints for a down member (sloppy quorum; acknowledged once durable)",
    ),
    # The data path: a key's versions between replicas (repl.py).
    *(
        peer_spec(name, arity, Access.PEER, handler, summary, lock)
        for name, arity, handler, summary, lock in repl.DECLARATIONS
    ),
    # Anti-entropy: reading a peer's Tictac trees (aae.py).
    *(
        peer_spec(name, arity, Access.PEER, handler, summary, lock)
        for name, arity, handler, summary, lock in aae.DECLARATIONS
    ),
]

PEER_COMMANDS = CommandTable(
    PEER_SPECS,
    unknown_command=lambda args: Error("ERR unknown command"),
    wrong_arity=_wrong_arity,
    fallback=CommandSpec(
        name="not-bus", arity=-1, lock=Lock.NONE, flags=("no_auth",), in_multi=InMulti.RUN, since=None,
        group="cluster", handler=cmd_not_bus, summary="Refuse a non-TKV command on the bus and close",
    ),
)
