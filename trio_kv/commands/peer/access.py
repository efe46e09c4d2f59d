"""Who may run what on the bus, checked before a peer handler runs.

* ``HANDSHAKE`` (TKV.HELLO, TKV.AUTH): always.
* ``READ`` (TKV.PING, TKV.RING: they change nothing and reveal only the
  ring): after the handshake, or before it when no ``--cluster-secret`` is
  set, so ``redis-cli -p <bus port> TKV.RING`` works for debugging. With a
  secret, nothing but the handshake runs unauthenticated.
* ``ADMIN`` (TKV.RING.CHANGE, TKV.RING.LOCK: the ``trio-kv cluster
  add/remove`` tool's): as ``READ``; with a secret, after the handshake or
  after an admin tool proved the secret (TKV.ADMIN.HELLO, TKV.ADMIN.AUTH:
  ``hello.py``), which allows ``READ`` and ``ADMIN``, never ``PEER``.
* ``PEER`` (every command that changes state, such as the data path's
  replication commands): only after the handshake, secret or not.

A refused request, and any non-TKV command (the table's fallback), gets an
error naming why and the connection closes (``session.closing``).
"""

from __future__ import annotations

import enum
import functools
import logging

from ...protocol.replies import Error
from ..session import Session
from ..table import Handler

log = logging.getLogger(__name__)


class Access(enum.Enum):
    HANDSHAKE = "handshake"
    READ = "read"
    ADMIN = "admin"
    PEER = "peer"


NOT_BUS = "ERR the cluster bus accepts only TKV.* commands, after TKV.HELLO; closing the connection"
NEEDS_HANDSHAKE = "TKVREFUSED {name} needs the bus handshake (TKV.HELLO{auth}) first; closing the connection"


def refuse(session: Session, message: str, level: int = logging.INFO) -> Error:
    """Answer ``message`` and close the connection after it (logged at
    ``level``: WARNING for a peer refused in the handshake, a
    misconfiguration; INFO for a stray client)."""
    session.closing = True
    log.log(level, "bus client %d (%s): %s", session.id, session.address, message)
    return Error(message)


def allowed(session: Session, access: Access) -> bool:
    peer = session.peer
    if peer is None:
        return False  # a bus command on a client connection: never
    if access is Access.HANDSHAKE or peer.authenticated:
        return True
    return access in (Access.READ, Access.ADMIN) and (peer.node.secret is None or peer.admin)


def guarded(name: str, access: Access, handler: Handler) -> Handler:
    """``handler``, run only when ``access`` allows it."""

    @functools.wraps(handler)
    def run(session: Session, args: list[bytes]) -> object:
        if not allowed(session, access):
            auth = ", TKV.AUTH" if session.peer is not None and session.peer.node.secret is not None else ""
            return refuse(session, NEEDS_HANDSHAKE.format(name=name.upper(), auth=auth))
        return handler(session, args)

    return run


def cmd_not_bus(session: Session, args: list[bytes]) -> Error:
    return refuse(session, NOT_BUS)
