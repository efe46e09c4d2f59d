"""Loopback addresses and ports for servers that must listen on a port
chosen in advance (stdlib only).

A cluster node's bus listens on its client port + ``BUS_OFFSET`` and every
member lists the others' ``host:port`` before any of them starts, so port 0
cannot be used. Instead each node gets its own loopback address (127.0.0.x:
the whole 127/8 block is local on Linux) from a random block, so tests and
benchmarks running side by side rarely meet, and one port P such that P and
P + ``BUS_OFFSET`` are free on every one of them. A free port can still be
taken between the probe and the server's bind: callers that must not flake
retry the start.

The tests (tests/integration/cluster_nodes.py) and the benchmarks
(bench/cluster_bench.py) import this one copy.
"""

from __future__ import annotations

import random
import socket

BUS_OFFSET = 10000
PORT_RANGE = (20000, 30000)  # client ports are drawn from here


def bindable(host: str, port: int) -> bool:
    """True if a TCP socket can bind ``host:port`` right now."""
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def node_hosts(count: int) -> list[str]:
    """``count`` consecutive loopback addresses from a random block."""
    base = random.randrange(20, 240)
    return [f"127.0.0.{base + i}" for i in range(count)]


def free_cluster_port(hosts: list[str], count: int = 1) -> int:
    """A port P such that P .. P + count - 1 and each one + ``BUS_OFFSET``
    are free on every host (``count`` > 1: nodes sharing one address, as
    ``trio-kv cluster dev`` starts them)."""
    for _ in range(200):
        port = random.randrange(*PORT_RANGE)
        wanted = [client + offset for client in range(port, port + count) for offset in (0, BUS_OFFSET)]
        if all(bindable(host, candidate) for host in hosts for candidate in wanted):
            return port
    raise RuntimeError("no free port pair")
