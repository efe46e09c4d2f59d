"""A seeded, in-memory, TCP-like network for the deterministic cluster
simulation: every byte the nodes exchange goes through here, on Trio's
clock (``trio.testing.MockClock`` in the simulation, so waits cost nothing).

What a fault means for a byte stream (a TCP connection never loses,
reorders or duplicates bytes inside one connection; it stalls or dies):

* **delay**: each ``send_all`` is delivered after a seeded latency,
  never before an earlier send of the same direction (in-order stream).
* **stall**: a connection's delivery pauses for a while (a congested or
  retransmitting path), then resumes with nothing lost.
* **reset** ("drop" for a stream): the connection dies at once in both
  directions; whatever was in flight is lost, both ends' next receive or
  send raises ``BrokenResourceError``. A request may or may not have
  reached the peer: the link reports ``LinkClosed(sent=True)``.
* **partition** between two addresses: bytes stop flowing both ways on
  existing connections (they stall, as TCP retransmits, and resume when
  healed unless a side gave up and closed) and new connections cannot be
  opened (``connect`` hangs, as a dropped SYN does, until the caller's
  timeout).
* **duplicate**: a stream cannot duplicate bytes; what gets duplicated in
  a real system is a *request*, sent again on a new connection after a
  reset left its fate unknown. The simulation's clients do exactly that
  (``harness.retry_request`` in the tests), so the peers see the same
  request twice, possibly the second before they answered the first.

Every decision draws from one ``random.Random(seed)`` in the order the
(deterministically scheduled) tasks ask, and every event is appended to
``log`` as one line with the mock time, so two runs with one seed give the
same log byte for byte.
"""

from __future__ import annotations

import collections
import math
import random
import socket
from dataclasses import dataclass

import trio

from trio_kv.cluster.ring import BUS_PORT_OFFSET, Member


@dataclass
class Faults:
    """The network's fault rates (all off: a perfect, instant network)."""

    # Latency of one send: uniform in [min, max] seconds.
    latency_min_seconds: float = 0.0
    latency_max_seconds: float = 0.0
    # Chance that a send is followed by a stall of the connection, and how long.
    stall_probability: float = 0.0
    stall_max_seconds: float = 0.0
    # Chance that a send resets its connection (after the bytes left or not).
    reset_probability: float = 0.0


class _Direction:
    """One direction of a connection: chunks waiting for their delivery time."""

    def __init__(self) -> None:
        self.chunks: collections.deque[tuple[float, bytes]] = collections.deque()
        self.last_at = 0.0
        self.eof = False
        self.read_shut = False
        self.changed = trio.lowlevel.ParkingLot()

    def wake(self) -> None:
        self.changed.unpark_all()


class _Connection:
    def __init__(self, network: SimNetwork, number: int, client: str, server: str) -> None:
        self.network = network
        self.number = number
        self.client = client
        self.server = server
        self.to_server = _Direction()
        self.to_client = _Direction()
        self.broken = False
        self.stalled_until = 0.0

    def blocked(self) -> bool:
        return self.network.partitioned(self.client, self.server) or trio.current_time() < self.stalled_until

    def reset(self, why: str) -> None:
        if self.broken:
            return
        self.broken = True
        self.network.record(f"reset conn {self.number} {self.client}->{self.server}: {why}")
        for direction in (self.to_server, self.to_client):
            direction.chunks.clear()
            direction.wake()

    def wake(self) -> None:
        self.to_server.wake()
        self.to_client.wake()


class SimSocket:
    """The few socket calls the server's connection layer makes on a stream
    (``server.streams.socket_of``): addresses, shutting the read side down
    (a draining server's way to end a pending receive), options (no-ops)."""

    def __init__(self, stream: SimStream) -> None:
        self._stream = stream

    def getpeername(self) -> tuple[str, int]:
        return self._stream.peer_address

    def getsockname(self) -> tuple[str, int]:
        return self._stream.local_address

    def shutdown(self, how: int) -> None:
        if how in (socket.SHUT_RD, socket.SHUT_RDWR):
            self._stream.incoming.read_shut = True
            self._stream.incoming.wake()

    def setsockopt(self, *args: object) -> None:
        pass


class SimStream(trio.abc.Stream):
    def __init__(
        self, connection: _Connection, incoming: _Direction, outgoing: _Direction,
        local_address: tuple[str, int], peer_address: tuple[str, int],
    ) -> None:
        self.connection = connection
        self.incoming = incoming
        self.outgoing = outgoing
        self.local_address = local_address
        self.peer_address = peer_address
        self.socket = SimSocket(self)
        self._closed = False

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await trio.lowlevel.checkpoint()
        if self._closed:
            raise trio.ClosedResourceError("this end was closed")
        connection = self.connection
        if connection.broken:
            raise trio.BrokenResourceError("connection reset")
        network = connection.network
        faults = network.faults
        rng = network.rng
        now = trio.current_time()
        delay = rng.uniform(faults.latency_min_seconds, faults.latency_max_seconds)
        at = max(now + delay, self.outgoing.last_at)
        self.outgoing.last_at = at
        self.outgoing.chunks.append((at, bytes(data)))
        network.record(f"send conn {connection.number} {self.local_address[0]}->{self.peer_address[0]} {len(data)}B at {at:.6f}")
        self.outgoing.wake()
        if faults.stall_probability and rng.random() < faults.stall_probability:
            seconds = rng.uniform(0, faults.stall_max_seconds)
            connection.stalled_until = max(connection.stalled_until, now + seconds)
            network.record(f"stall conn {connection.number} for {seconds:.3f}s")
        if faults.reset_probability and rng.random() < faults.reset_probability:
            # Whether these bytes got out before the reset is the network's choice.
            if rng.random() < 0.5:
                self.outgoing.chunks.pop()
            connection.reset("injected")

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        incoming = self.incoming
        connection = self.connection
        limit = 64 * 1024 if max_bytes is None else max_bytes
        while True:
            if self._closed:
                raise trio.ClosedResourceError("this end was closed")
            if connection.broken:
                raise trio.BrokenResourceError("connection reset")
            if incoming.read_shut:
                await trio.lowlevel.checkpoint()
                return b""
            now = trio.current_time()
            blocked = connection.blocked()
            if incoming.chunks and not blocked and incoming.chunks[0][0] <= now:
                out = bytearray()
                while incoming.chunks and incoming.chunks[0][0] <= now and len(out) < limit:
                    at, chunk = incoming.chunks.popleft()
                    room = limit - len(out)
                    if len(chunk) > room:
                        incoming.chunks.appendleft((at, chunk[room:]))
                        chunk = chunk[:room]
                    out += chunk
                await trio.lowlevel.checkpoint()
                return bytes(out)
            if not incoming.chunks and incoming.eof and not blocked:
                # The FIN comes after the data, and not across a partition either.
                await trio.lowlevel.checkpoint()
                return b""
            if blocked:
                wake_at = connection.stalled_until if trio.current_time() < connection.stalled_until else math.inf
            else:
                wake_at = incoming.chunks[0][0] if incoming.chunks else math.inf
            with trio.move_on_at(wake_at):
                await incoming.changed.park()

    async def send_eof(self) -> None:
        await trio.lowlevel.checkpoint()
        self.outgoing.eof = True
        self.outgoing.wake()

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            # A close is a FIN after the data already sent.
            self.outgoing.eof = True
            self.outgoing.wake()
            self.incoming.wake()
        await trio.lowlevel.checkpoint()


class SimListener(trio.abc.Listener[trio.abc.Stream]):
    def __init__(self, network: SimNetwork, address: tuple[str, int]) -> None:
        self.network = network
        self.address = address
        self.send_channel, self.receive_channel = trio.open_memory_channel[SimStream](math.inf)
        self.closed = False

    async def accept(self) -> trio.abc.Stream:
        try:
            return await self.receive_channel.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise trio.ClosedResourceError("listener closed") from None

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            self.network.unlisten(self)
            self.send_channel.close()
            self.receive_channel.close()
        await trio.lowlevel.checkpoint()


class SimNetwork:
    def __init__(self, seed: int, faults: Faults | None = None) -> None:
        self.rng = random.Random(seed)
        self.faults = Faults() if faults is None else faults
        self.log: list[str] = []
        self._listeners: dict[tuple[str, int], SimListener] = {}
        self._connections: list[_Connection] = []
        self._numbers = 0
        # Pairs of hosts that cannot talk (both directions), as sorted tuples.
        self._cut: set[tuple[str, str]] = set()
        self._healed = trio.lowlevel.ParkingLot()

    def record(self, event: str) -> None:
        self.log.append(f"{trio.current_time():.6f} {event}")

    # -- listening and connecting --------------------------------------------

    def listen(self, address: tuple[str, int]) -> SimListener:
        if address in self._listeners:
            raise OSError(f"address in use: {address}")
        listener = SimListener(self, address)
        self._listeners[address] = listener
        return listener

    def unlisten(self, listener: SimListener) -> None:
        if self._listeners.get(listener.address) is listener:
            del self._listeners[listener.address]

    async def connect(self, source_host: str, address: tuple[str, int]) -> SimStream:
        """A connection from ``source_host`` to ``address``: refused at once
        if nobody listens there, hangs while the hosts are partitioned."""
        await trio.lowlevel.checkpoint()
        host = address[0]
        while self.partitioned(source_host, host):
            await self._healed.park()
        delay = self.rng.uniform(self.faults.latency_min_seconds, self.faults.latency_max_seconds)
        await trio.sleep(2 * delay)
        listener = self._listeners.get(address)
        if listener is None:
            self.record(f"refused {source_host}->{address[0]}:{address[1]}")
            raise ConnectionRefusedError(f"connection refused: {address[0]}:{address[1]}")
        self._numbers += 1
        connection = _Connection(self, self._numbers, source_host, host)
        self._connections.append(connection)
        local = (source_host, 40000 + self._numbers)
        client = SimStream(connection, connection.to_client, connection.to_server, local, address)
        server = SimStream(connection, connection.to_server, connection.to_client, address, local)
        listener.send_channel.send_nowait(server)
        self.record(f"connect conn {connection.number} {source_host}->{address[0]}:{address[1]}")
        return client

    # -- faults --------------------------------------------------------------

    def partitioned(self, a: str, b: str) -> bool:
        return (min(a, b), max(a, b)) in self._cut

    def partition(self, side: list[str], other: list[str]) -> None:
        for a in side:
            for b in other:
                self._cut.add((min(a, b), max(a, b)))
        self.record(f"partition {sorted(side)} | {sorted(other)}")

    def heal(self) -> None:
        self._cut.clear()
        self.record("heal")
        self._healed.unpark_all()
        for connection in self._connections:
            connection.wake()

    def reset_connections(self, client: str, server: str, why: str) -> None:
        """Reset every live connection ``client`` opened to ``server``."""
        for connection in self._connections:
            if (connection.client, connection.server) == (client, server):
                connection.reset(why)
        self._connections = [connection for connection in self._connections if not connection.broken]

    def reset_host(self, host: str, why: str) -> None:
        """``host`` crashed: its listeners vanish at once (a connect is
        refused from now on) and every live connection to or from it resets."""
        for address, listener in list(self._listeners.items()):
            if address[0] == host:
                del self._listeners[address]
        for connection in self._connections:
            if host in (connection.client, connection.server):
                connection.reset(why)
        self._connections = [connection for connection in self._connections if not connection.broken]


class NodeTransport:
    """``server.cluster.transport.Transport`` for one simulated node: its
    peer links connect through the network from the node's host."""

    def __init__(self, network: SimNetwork, host: str) -> None:
        self.network = network
        self.host = host

    async def connect(self, member: Member) -> trio.abc.Stream:
        return await self.network.connect(self.host, (member.host, member.port + BUS_PORT_OFFSET))
