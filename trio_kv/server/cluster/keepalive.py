"""TCP keepalive on bus connections, so a peer that vanished without a FIN
(a network partition, a powered-off host) does not leave an inbound
connection open for the kernel's default two hours: after
``idle_seconds`` of silence the kernel probes every ``interval_seconds``
and resets the connection after ``probes`` unanswered probes, and the
connection's next receive fails. Outbound links need it less (their
pinger closes a silent link after the node timeout) but get it too.

Peers ping every 500 ms, so a live bus connection is never idle that long.
Where an option is missing (not Linux), the socket keeps what it has.
"""

from __future__ import annotations

import math
import socket

import trio

PROBES = 3


def enable_keepalive(sock: trio.socket.SocketType, idle_seconds: float, interval_seconds: float = 1.0) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (
        ("TCP_KEEPIDLE", max(1, math.ceil(idle_seconds))),
        ("TCP_KEEPINTVL", max(1, math.ceil(interval_seconds))),
        ("TCP_KEEPCNT", PROBES),
    ):
        option = getattr(socket, name, None)
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)
