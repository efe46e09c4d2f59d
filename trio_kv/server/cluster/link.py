"""One connected bus stream used as a pipelined request/reply link: a
writer task that batches every queued request into one send, and a reader
task that resolves a FIFO of reply slots in order (RESP replies arrive in
the order the requests were sent, so no request ids are needed).

Rules this module keeps:

1. A caller's cancel scope may cancel its *wait*, never a send or a
   receive in the middle of a message. A request cancelled before the
   writer took it is dropped unsent; one cancelled after it was sent keeps
   its slot in the FIFO, and the reader consumes its late reply and drops
   it (``late_replies``), so the next request still gets its own reply.
2. Bounded: at most ``max_queued_requests`` requests wait to be sent
   (default ``DEFAULT_MAX_QUEUED_REQUESTS``); a caller waits for room
   within its own cancel scope. A batch larger than the bound is let in
   alone once the queue is empty. At most ``max_in_flight_requests`` are
   sent and unanswered; past that the writer waits for replies.
3. When the stream breaks or the link is closed, every queued and
   in-flight request fails at once with ``LinkClosed`` (``sent`` says
   whether it may have reached the peer), and later requests fail with it
   at once too. The writer and reader are cancelled only then: their
   sends and receives are never cut short while the link lives.
4. A reply is a value of ``protocol.replies`` (an error reply is an
   ``Error`` value, not an exception: the peer answered).
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import trio

from ...protocol.resp_reply import NEED_DATA, ReplyParser, ReplyProtocolError, encode_request

log = logging.getLogger(__name__)

DEFAULT_MAX_QUEUED_REQUESTS = 1024
DEFAULT_MAX_IN_FLIGHT_REQUESTS = 4096
# The writer stops adding requests to one send past this many bytes.
SEND_BATCH_BYTES = 256 * 1024
RECEIVE_BYTES = 64 * 1024


class LinkError(Exception):
    """A request could not be answered on this link."""

    def __init__(self, message: str, *, sent: bool = False) -> None:
        super().__init__(message)
        # Whether the request may have reached the peer (False: it certainly did not).
        self.sent = sent


class LinkDown(LinkError):
    """The peer has no connected link now; nothing was sent."""


class LinkClosed(LinkError):
    """The link closed or broke while the request was queued or in flight."""


@dataclass
class Traffic:
    """Counters a peer keeps across its successive connections."""

    sent_bytes: int = 0
    received_bytes: int = 0
    sent_messages: int = 0
    received_messages: int = 0
    # send_all calls (sent_messages / sends: the writer's batching).
    sends: int = 0
    # Replies that arrived after their caller stopped waiting (dropped).
    late_replies: int = 0
    # Requests cancelled before they were sent (never sent).
    withdrawn: int = 0


class _Request:
    __slots__ = ("data", "reply", "error", "done", "abandoned", "sent", "queued_at")

    def __init__(self, data: bytes, queued_at: float) -> None:
        self.data = data
        # time.monotonic() when the caller queued it (the link's lag; a
        # plain clock: statistics are read from worker threads too).
        self.queued_at = queued_at
        self.reply: object = None
        self.error: LinkError | None = None
        self.done = trio.Event()
        self.abandoned = False
        self.sent = False


@dataclass
class Link:
    stream: trio.abc.Stream
    # For log lines: the peer's address.
    name: str
    traffic: Traffic = field(default_factory=Traffic)
    max_queued_requests: int = DEFAULT_MAX_QUEUED_REQUESTS
    max_in_flight_requests: int = DEFAULT_MAX_IN_FLIGHT_REQUESTS

    def __post_init__(self) -> None:
        self._queue: collections.deque[_Request] = collections.deque()
        self._in_flight: collections.deque[_Request] = collections.deque()
        # Callers waiting for queue room, and the writer waiting for work.
        self._room = trio.lowlevel.ParkingLot()
        self._work = trio.lowlevel.ParkingLot()
        self._closed: str | None = None
        self._scope: trio.CancelScope | None = None

    # -- the API -------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed is not None

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def queued_bytes(self) -> int:
        """Encoded bytes waiting to be sent (at most the queue bound's requests)."""
        return sum(len(request.data) for request in list(self._queue))

    @property
    def oldest_request_age_seconds(self) -> float | None:
        """How long the oldest unanswered request (in flight, else queued)
        has waited: the peer's lag behind this node; None when nothing
        waits. Safe from any thread (a reply may take the request meanwhile)."""
        for requests in (self._in_flight, self._queue):
            try:
                oldest = requests[0]
            except IndexError:
                continue
            return max(0.0, time.monotonic() - oldest.queued_at)
        return None

    async def request(self, args: Sequence[bytes]) -> object:
        """Send ``args`` and wait for its reply (see the module's rules)."""
        (reply,) = await self.request_many([args])
        return reply

    async def request_many(self, requests: Sequence[Sequence[bytes]]) -> list[object]:
        """Send ``requests`` back to back (one send when the queue is idle)
        and wait for all their replies, in order."""
        await trio.lowlevel.checkpoint_if_cancelled()
        count = len(requests)
        while self._closed is None and self._queue and len(self._queue) + count > self.max_queued_requests:
            await self._room.park()
        if self._closed is not None:
            raise LinkClosed(f"link to {self.name} closed: {self._closed}")
        now = time.monotonic()
        pending = [_Request(encode_request(list(args)), now) for args in requests]
        self._queue.extend(pending)
        self._work.unpark_all()
        try:
            for request in pending:
                await request.done.wait()
        finally:
            for request in pending:
                if not request.done.is_set():
                    request.abandoned = True
        errors = [request.error for request in pending if request.error is not None]
        if errors:
            raise LinkClosed(str(errors[0]), sent=any(error.sent for error in errors))
        return [request.reply for request in pending]

    def close(self, reason: str = "closed") -> None:
        """Fail everything pending and stop the writer and reader (run() returns)."""
        self._fail_all(reason)
        if self._scope is not None:
            self._scope.cancel()

    # -- the tasks -----------------------------------------------------------

    async def run(self) -> str:
        """Run the writer and reader until the link breaks or ``close()``;
        returns why it ended. Every pending request has failed by then."""
        try:
            async with trio.open_nursery() as nursery:
                self._scope = nursery.cancel_scope
                if self._closed is not None:
                    nursery.cancel_scope.cancel()
                nursery.start_soon(self._guard, self._write_loop, nursery.cancel_scope)
                nursery.start_soon(self._guard, self._read_loop, nursery.cancel_scope)
        finally:
            self._fail_all("link ended")
        return self._closed or "link ended"

    async def _guard(self, loop, scope: trio.CancelScope) -> None:
        try:
            await loop()
        except (trio.BrokenResourceError, trio.ClosedResourceError, ReplyProtocolError, _PeerClosed) as error:
            self._fail_all(str(error) or type(error).__name__)
        scope.cancel()

    async def _write_loop(self) -> None:
        queue, in_flight, traffic = self._queue, self._in_flight, self.traffic
        while True:
            while not queue or len(in_flight) >= self.max_in_flight_requests:
                await self._work.park()
            out = bytearray()
            messages = 0
            while queue and len(out) < SEND_BATCH_BYTES and len(in_flight) < self.max_in_flight_requests:
                request = queue.popleft()
                if request.abandoned:
                    traffic.withdrawn += 1
                    continue
                request.sent = True
                in_flight.append(request)
                out += request.data
                messages += 1
            self._room.unpark_all()
            if out:
                # Never cancelled while the link lives (rule 1).
                await self.stream.send_all(out)
                traffic.sent_bytes += len(out)
                traffic.sent_messages += messages
                traffic.sends += 1

    async def _read_loop(self) -> None:
        parser = ReplyParser()
        in_flight, traffic = self._in_flight, self.traffic
        while True:
            data = await self.stream.receive_some(RECEIVE_BYTES)
            if not data:
                raise _PeerClosed("the peer closed the connection")
            traffic.received_bytes += len(data)
            parser.receive_data(data)
            while True:
                reply = parser.next_reply()
                if reply is NEED_DATA:
                    break
                if not in_flight:
                    raise ReplyProtocolError("a reply nobody asked for")
                request = in_flight.popleft()
                traffic.received_messages += 1
                if request.abandoned:
                    traffic.late_replies += 1
                else:
                    request.reply = reply
                    request.done.set()
            # Room in flight again: the writer may be waiting for it.
            self._work.unpark_all()

    def _fail_all(self, reason: str) -> None:
        if self._closed is None:
            self._closed = reason
        for requests, sent in ((self._in_flight, True), (self._queue, False)):
            while requests:
                request = requests.popleft()
                if not request.done.is_set():
                    request.error = LinkClosed(f"link to {self.name} closed: {self._closed}", sent=sent)
                    request.done.set()
        self._room.unpark_all()


class _PeerClosed(Exception):
    pass
