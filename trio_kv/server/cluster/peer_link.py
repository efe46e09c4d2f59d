"""``PeerLink``: this node's one outbound link to one peer, for the node's
whole life: it connects (with backoff), does the handshake, then runs the
pipelined ``Link`` and a pinger until the connection ends, and starts over.

The data path holds one ``PeerLink`` per peer and calls ``request`` /
``request_many`` (rule 4) and ``send_nowait``. ``statistics()`` is the
link's state and traffic (INFO cluster, /metrics, ``trio-kv cluster status``).

Rules this module keeps:

1. A connection's failure (refused, broken, silent) ends only that
   connection: ``run`` logs why and retries after a backoff that doubles
   from ``BACKOFF_MIN_SECONDS`` to ``BACKOFF_MAX_SECONDS`` (with jitter),
   reset once a connection completes its handshake.
2. The pinger sends ``TKV.PING epoch ring-hash`` every ``ping_interval``;
   each answer tells the owner the peer was heard (its up/down opinion,
   ``cluster.health``) and, when the peer's epoch is higher, its ring epoch
   (``peer_epoch``: the owner fetches a newer ring). A ping unanswered for ``node_timeout`` closes the
   connection (a hung peer must not pile up requests); the owner marks the
   peer down from the silence alone.
3. Refusals are logged at WARNING (a failed connect at INFO) the first
   time a reason appears, then at DEBUG while it repeats (a misconfigured peer retried every second must
   not flood the log).
4. Between connections (and before the first) ``request`` and
   ``request_many`` fail at once with ``LinkDown`` (nothing sent) while
   the owner believes the peer down (``set_up``): nobody waits on a peer
   that is not there. While it believes the peer up, the link is only
   reconnecting (a reset link retries within 50 ms-1 s, well inside the
   node timeout): they wait for the connection, within the caller's
   cancel scope, and fail with ``LinkDown`` if the owner marks the peer
   down first (so the wait ends within about the node timeout). Every
   user benefits: reads at ALL, read repair, anti-entropy, the ring fetch,
   forwards. ``send_nowait`` never waits (False at once).
"""

from __future__ import annotations

import enum
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import trio

from ...cluster.handshake import Hello, dialer_proof, listener_proof, new_nonce, proof_ok, refusal
from ...cluster.ring import BUS_PORT_OFFSET, Member
from ...cluster.view import ClusterView
from ...protocol.replies import Error
from .link import DEFAULT_MAX_IN_FLIGHT_REQUESTS, DEFAULT_MAX_QUEUED_REQUESTS, Link, LinkClosed, LinkDown, Traffic
from .transport import TcpTransport, Transport

log = logging.getLogger(__name__)

PING_INTERVAL_SECONDS = 0.5
BACKOFF_MIN_SECONDS = 0.05
BACKOFF_MAX_SECONDS = 1.0


class LinkState(enum.Enum):
    CONNECTING = "connecting"
    HANDSHAKING = "handshaking"
    CONNECTED = "connected"
    # Waiting to retry after a failed or refused connection.
    BACKOFF = "backoff"
    STOPPED = "stopped"


class LinkOwner(Protocol):
    """What a peer link needs of its node (``node.ClusterNode``)."""

    def hello(self, nonce: str) -> Hello: ...

    def view(self) -> ClusterView: ...

    @property
    def secret(self) -> str | None: ...

    @property
    def ring_hash(self) -> str: ...

    def met(self, member: Member, node_id: str) -> None:
        """The handshake with ``member`` completed; it has ``node_id``."""
        ...

    def heard(self, member: Member) -> None:
        """``member`` answered (handshake or ping) just now."""
        ...

    def member_addresses(self) -> frozenset[str]:
        """The addresses the handshake accepts (the ring's members)."""
        ...

    def peer_epoch(self, member: Member, epoch: int) -> None:
        """``member`` answered a ping with ring epoch ``epoch`` (fetched if newer)."""
        ...


@dataclass(frozen=True)
class LinkStatistics:
    peer: str
    node_id: str | None
    state: str
    up: bool
    # Requests waiting to be sent / sent and not answered yet.
    queued: int
    queued_bytes: int
    in_flight: int
    sent_bytes: int
    received_bytes: int
    sent_messages: int
    received_messages: int
    late_replies: int
    # Successful handshakes since start.
    connections: int
    # Unix seconds when the current connection completed its handshake (None: not connected).
    connected_since_s: float | None
    last_ping_rtt_seconds: float | None
    last_error: str
    # How long the oldest unanswered request has waited (queued or in
    # flight): the peer's replication lag here. None: nothing waits.
    oldest_request_age_seconds: float | None = None


class _Refused(Exception):
    pass


class PeerLink:
    def __init__(
        self,
        member: Member,
        owner: LinkOwner,
        *,
        node_timeout_seconds: float,
        ping_interval_seconds: float = PING_INTERVAL_SECONDS,
        max_queued_requests: int = DEFAULT_MAX_QUEUED_REQUESTS,
        max_in_flight_requests: int = DEFAULT_MAX_IN_FLIGHT_REQUESTS,
        bus_port_offset: int = BUS_PORT_OFFSET,
        transport: Transport | None = None,
    ) -> None:
        self.member = member
        self._owner = owner
        self.node_timeout_seconds = node_timeout_seconds
        self.ping_interval_seconds = ping_interval_seconds
        self.max_queued_requests = max_queued_requests
        self.max_in_flight_requests = max_in_flight_requests
        # How connections are opened (transport: TCP unless a test passes its own network).
        self._transport: Transport = (
            TcpTransport(keepalive_idle_seconds=node_timeout_seconds, bus_port_offset=bus_port_offset)
            if transport is None else transport
        )
        self.state = LinkState.CONNECTING
        # The peer's node id, from the last completed handshake.
        self.node_id: str | None = None
        self.traffic = Traffic()
        self.connections = 0
        self.connected_since_s: float | None = None
        self.last_ping_rtt_seconds: float | None = None
        self.last_error = ""
        self._link: Link | None = None
        # Set while a connection is up or the owner believes the peer down
        # (rule 4: what a request waits for; replaced by a fresh one when
        # neither holds).
        self._usable = trio.Event()
        # The current connection: whether its handshake completed, why it ended.
        self._handshook = False
        self._end_reason = ""
        self._logged_reason: str | None = None
        self._up = False  # the owner's opinion (rule 4), shown in statistics
        self._usable.set()  # believed down until the owner says otherwise

    # -- the data path's API -------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._link is not None

    async def request(self, args: Sequence[bytes]) -> object:
        """One request, its reply (``link.Link.request``); rule 4 while not
        connected, ``LinkClosed`` if the connection ends first."""
        link = await self._connected_link()
        return await link.request(args)

    async def request_many(self, requests: Sequence[Sequence[bytes]]) -> list[object]:
        """Several requests back to back, their replies in order (rule 4
        while not connected)."""
        link = await self._connected_link()
        return await link.request_many(requests)

    async def _connected_link(self) -> Link:
        """The current connection; while there is none, rule 4: wait for one
        if the peer is believed up, else (or once it is believed down)
        ``LinkDown``. Always a checkpoint."""
        link = self._link
        if link is None:
            if not self._usable.is_set():
                await self._usable.wait()
                link = self._link
            else:
                await trio.lowlevel.checkpoint()
            if link is None:
                raise LinkDown(f"no link to {self.member.address} ({self.state.value})")
        return link

    def send_nowait(self, data: bytes | Callable[[], bytes], count: int,
                    on_replies: Callable[[list[object] | None], None]) -> bool:
        """Queue ``count`` encoded requests without waiting
        (``link.Link.send_nowait``); False (nothing sent) when not
        connected or the link's queue is full."""
        link = self._link
        return link is not None and link.send_nowait(data, count, on_replies)

    def statistics(self) -> LinkStatistics:
        link, traffic = self._link, self.traffic
        return LinkStatistics(
            peer=self.member.address, node_id=self.node_id, state=self.state.value, up=self._up,
            queued=0 if link is None else link.queued, queued_bytes=0 if link is None else link.queued_bytes,
            in_flight=0 if link is None else link.in_flight,
            sent_bytes=traffic.sent_bytes, received_bytes=traffic.received_bytes,
            sent_messages=traffic.sent_messages, received_messages=traffic.received_messages,
            late_replies=traffic.late_replies, connections=self.connections,
            connected_since_s=self.connected_since_s, last_ping_rtt_seconds=self.last_ping_rtt_seconds,
            last_error=self.last_error,
            oldest_request_age_seconds=None if link is None else link.oldest_request_age_seconds,
        )

    def set_up(self, up: bool) -> None:
        self._up = up
        if not up or self._link is not None:
            self._usable.set()  # a request waiting for a connection fails now (rule 4)
        elif self._usable.is_set():
            self._usable = trio.Event()

    # -- the supervisor ------------------------------------------------------

    async def run(self) -> None:
        """Connect, serve, retry, until cancelled (rule 1)."""
        backoff = BACKOFF_MIN_SECONDS
        try:
            while True:
                self.state = LinkState.CONNECTING
                reason, handshook = await self._connect_once()
                self.last_error = reason
                self._log_end(reason, handshook)
                if handshook:
                    backoff = BACKOFF_MIN_SECONDS
                self.state = LinkState.BACKOFF
                await trio.sleep(backoff * random.uniform(0.5, 1.0))
                backoff = min(backoff * 2, BACKOFF_MAX_SECONDS)
        finally:
            self.state = LinkState.STOPPED

    def _log_end(self, reason: str, handshook: bool) -> None:
        if handshook:
            log.info("bus link to %s closed: %s", self.member.address, reason)
            self._logged_reason = None
        elif reason != self._logged_reason:
            # A peer not started yet is normal; a refusal is a misconfiguration.
            level = logging.INFO if reason.startswith("connect failed") else logging.WARNING
            log.log(level, "bus link to %s: %s (retrying)", self.member.address, reason)
            self._logged_reason = reason
        else:
            log.debug("bus link to %s: %s (retrying)", self.member.address, reason)

    async def _connect_once(self) -> tuple[str, bool]:
        """One connection, start to end: (why it ended, whether its handshake completed)."""
        try:
            with trio.fail_after(self.node_timeout_seconds):
                stream = await self._transport.connect(self.member)
        except (OSError, trio.TooSlowError) as error:
            return f"connect failed: {error or 'timed out'}", False
        link = Link(
            stream, self.member.address, traffic=self.traffic,
            max_queued_requests=self.max_queued_requests, max_in_flight_requests=self.max_in_flight_requests,
        )
        self._handshook = False
        self._end_reason = ""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._run_link, link, nursery.cancel_scope)
                await self._serve(link, nursery)
        finally:
            self._link = None
            if self._up and self._usable.is_set():
                self._usable = trio.Event()
            self.connected_since_s = None
            link.close("link stopped")
            await trio.aclose_forcefully(stream)
        return self._end_reason or "link ended", self._handshook

    async def _run_link(self, link: Link, scope: trio.CancelScope) -> None:
        reason = await link.run()
        if not self._end_reason:
            self._end_reason = reason
        scope.cancel()

    async def _serve(self, link: Link, nursery: trio.Nursery) -> None:
        self.state = LinkState.HANDSHAKING
        try:
            with trio.fail_after(self.node_timeout_seconds):
                theirs = await self._handshake(link)
        except (_Refused, LinkClosed, trio.TooSlowError) as error:
            self._end_reason = f"handshake: {error or 'timed out'}"
            link.close(self._end_reason)
            return
        self._handshook = True
        self.node_id = theirs.node_id
        self.connections += 1
        self.connected_since_s = time.time()
        self.state = LinkState.CONNECTED
        self._link = link
        self._usable.set()
        self._logged_reason = None
        log.info("bus link to %s (%s) connected", self.member.address, theirs.node_id)
        self._owner.met(self.member, theirs.node_id)
        self._owner.heard(self.member)
        nursery.start_soon(self._ping_loop, link)

    async def _handshake(self, link: Link) -> Hello:
        """The dialing side of ``cluster.handshake``; the peer's Hello, or ``_Refused``."""
        owner = self._owner
        mine = owner.hello(new_nonce())
        reply = await link.request([b"TKV.HELLO", *mine.to_args()])
        if isinstance(reply, Error):
            raise _Refused(f"refused by the peer: {reply.message}")
        if not (isinstance(reply, list) and len(reply) == 7 and all(isinstance(item, bytes) for item in reply)):
            raise _Refused(f"malformed TKV.HELLO reply {str(reply)[:80]}")
        try:
            theirs = Hello.from_args(reply[:6])
        except ValueError as error:
            raise _Refused(f"malformed TKV.HELLO reply: {error}") from None
        presented = reply[6].decode("ascii", "replace")
        members = owner.member_addresses()
        reason = refusal(mine, theirs, members)
        if reason is None and theirs.address != self.member.address:
            reason = f"the peer at {self.member.address} introduced itself as {theirs.address}"
        if reason is not None:
            raise _Refused(f"refused the peer: {reason}")
        secret = owner.secret
        if secret is None:
            if presented:
                raise _Refused("the peer has a cluster secret and this node has none")
            return theirs
        if not presented:
            raise _Refused("the peer has no cluster secret and this node has one")
        if not proof_ok(listener_proof(secret, mine, theirs), presented):
            raise _Refused("refused the peer: wrong cluster secret (its proof does not match)")
        answer = await link.request([b"TKV.AUTH", dialer_proof(secret, mine, theirs).encode()])
        if isinstance(answer, Error):
            raise _Refused(f"refused by the peer: {answer.message}")
        return theirs

    async def _ping_loop(self, link: Link) -> None:
        """Rule 2."""
        mismatch_logged: tuple[int, bytes] | None = None
        while True:
            mine = (self._owner.view().ring.epoch, self._owner.ring_hash.encode())
            started = trio.current_time()
            reply: object = None
            try:
                with trio.move_on_after(self.node_timeout_seconds):
                    reply = await link.request([b"TKV.PING", str(mine[0]).encode(), mine[1]])
            except LinkClosed:
                return
            if reply is None:
                link.close(f"no answer to TKV.PING within {self.node_timeout_seconds:g} s")
                return
            if isinstance(reply, list) and len(reply) == 3 and reply[0] == b"PONG":
                self.last_ping_rtt_seconds = trio.current_time() - started
                self._owner.heard(self.member)
                theirs = (reply[1], reply[2])
                if isinstance(theirs[0], int):
                    self._owner.peer_epoch(self.member, theirs[0])  # the owner fetches a newer ring
                newer = isinstance(theirs[0], int) and theirs[0] > mine[0]
                if not newer and theirs != mine and theirs != mismatch_logged:
                    log.warning(
                        "peer %s has ring epoch %s hash %s; this node has epoch %s hash %s",
                        self.member.address, theirs[0], theirs[1].decode("ascii", "replace") if isinstance(theirs[1], bytes) else theirs[1],
                        mine[0], mine[1].decode(),
                    )
                    mismatch_logged = theirs
            else:
                log.warning("peer %s answered TKV.PING with %s", self.member.address, str(reply)[:80])
            await trio.sleep_until(started + self.ping_interval_seconds)
