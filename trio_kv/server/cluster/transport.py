"""How the bus reaches the network: the one seam between the cluster's
links and real sockets.

* Outbound: a ``PeerLink`` opens each connection with
  ``await transport.connect(member)``, which returns a connected
  ``trio.abc.Stream`` to ``member``'s bus or raises ``OSError`` (the link
  bounds the wait with its node timeout and retries, ``peer_link``).
* Inbound: ``serve.run_cluster`` accepts from whatever
  ``trio.abc.Listener``\\ s it is given (``bus_listeners``); a served
  stream must expose the few socket calls ``server.connection`` makes
  (``.socket``: ``getpeername``, ``getsockname``, ``shutdown``,
  ``setsockopt``).

``TcpTransport`` is the default and the only production one: TCP to the
member's host at its client port + ``BUS_PORT_OFFSET``, with keepalive.
The deterministic simulation (``tests/cluster_sim``) passes an in-memory
network instead, so several nodes run in one ``trio.run`` on a mock clock.
"""

from __future__ import annotations

from typing import Protocol

import trio

from ...cluster.ring import BUS_PORT_OFFSET, Member
from .keepalive import enable_keepalive


class Transport(Protocol):
    async def connect(self, member: Member) -> trio.abc.Stream:
        """A connected stream to ``member``'s bus; ``OSError`` if unreachable."""
        ...


class TcpTransport:
    def __init__(self, *, keepalive_idle_seconds: float, bus_port_offset: int = BUS_PORT_OFFSET) -> None:
        self.keepalive_idle_seconds = keepalive_idle_seconds
        self.bus_port_offset = bus_port_offset

    async def connect(self, member: Member) -> trio.abc.Stream:
        stream = await trio.open_tcp_stream(member.host, member.port + self.bus_port_offset)
        try:
            enable_keepalive(stream.socket, self.keepalive_idle_seconds)
        except OSError:
            pass  # gone already: the handshake fails next
        return stream
