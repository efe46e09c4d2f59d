"""What every accepted connection starts with, whatever its protocol: a
client id and a ``Session``.

Ids come from one sequence for the whole process (starting at 1, as in
Redis), shared by the line/RESP and HTTP connections: CLIENT LIST, CLIENT
KILL and the connection registry key on them, so no two live connections
may ever share one.
"""

from __future__ import annotations

import itertools
import time

import trio

from ..commands.control import ServerControl
from ..commands.session import Session
from ..commands.wire import WireProtocol
from ..store.engine import Store
from .streams import socket_of

# Shared on purpose by every listener; only next_client_id() draws from it.
_client_ids = itertools.count(1)


def next_client_id() -> int:
    """A client id no connection of this process has had."""
    return next(_client_ids)


def _address(get_name) -> str:
    """``host:port`` of one end of the socket; ``?`` once the peer left."""
    try:
        host, port = get_name()[:2]
    except OSError:
        return "?"
    return f"{host}:{port}"


def new_session(stream: trio.abc.Stream, store: Store, control: ServerControl, *, wire: WireProtocol) -> Session:
    """The session of a connection just accepted on ``stream``, speaking
    ``wire``: a fresh id, the peer's and the server's own ``host:port``
    (``?`` when the peer already left), created now."""
    session = Session(
        next_client_id(), store, control, wire=wire,
        address=_address(socket_of(stream).getpeername), local_address=_address(socket_of(stream).getsockname),
    )
    session.created_ms = time.time_ns() // 1_000_000
    return session
