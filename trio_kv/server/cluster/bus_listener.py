"""The bus listener: inbound peer connections on the bus port (client port
+ 10000), each a plain ``server.connection.Connection`` speaking the bus's
``WireProtocol`` (``commands.peer.wire.BUS``: RESP, the ``TKV.*`` table).

Each connection's session starts with a ``PeerState`` (the handshake,
``commands.peer``) and counts as authenticated for ``--requirepass``: the
bus has its own handshake, and a client password is not a peer's. Bus
connections have their own registry (they are not clients: CLIENT LIST
and max-clients do not see them, as Redis' cluster bus links) and no
protected mode (peers are not on loopback; the handshake decides). TCP
keepalive (``keepalive``) closes connections whose peer vanished.
"""

from __future__ import annotations

import functools

import trio

from ...commands.control import ServerControl
from ...commands.peer.state import BusNode, PeerState
from ...commands.peer.wire import BUS
from ...store.engine import Store
from ..connection import Connection
from ..dispatch import Dispatcher
from ..listener import ConnectionRegistry, accept_connections, send_rejection
from ..streams import socket_of
from .keepalive import enable_keepalive

# Most inbound bus connections at once: peers need one each; the rest is for
# redis-cli and reconnects whose old connection has not closed yet.
MAX_BUS_CONNECTIONS = 1024


async def serve_bus_listener(
    listener: trio.abc.Listener[trio.abc.Stream],
    node: BusNode,
    store: Store,
    control: ServerControl,
    dispatcher: Dispatcher,
    registry: ConnectionRegistry,
    connection_nursery: trio.Nursery,
    keepalive_idle_seconds: float,
) -> None:
    def open_connection(stream: trio.abc.Stream) -> Connection:
        try:
            enable_keepalive(socket_of(stream), keepalive_idle_seconds)
        except OSError:
            pass  # the peer already left: the connection ends at its first read
        connection = Connection(stream, store, control, dispatcher, wire=BUS)
        connection.session.peer = PeerState(node)
        connection.session.authenticated = True
        return connection

    await accept_connections(
        listener, store, registry, connection_nursery,
        open_connection=open_connection,
        reject=functools.partial(send_rejection, rejection=BUS.max_clients_reply),
        log_prefix="bus ",
    )
