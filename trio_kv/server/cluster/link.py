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
5. One ``request_many`` is one slot (``_Batch``): encoded at once, sent
   whole in one send, its replies collected in order and its caller woken
   once, when the last one arrives (not a slot and an event per request:
   the replication path sends hundreds of requests a second per peer).
   The bounds of rule 2 count requests, not batches.
6. ``send_nowait`` queues a batch without waiting: refused (False) when
   the link is closed or its queue holds ``max_queued_requests``; its
   ``on_replies`` is called on the event loop with the replies in order
   once the last arrives, or with None if the link fails first (late
   replies included: nobody stops waiting). The replication path uses it,
   so a write's replication needs no task of its own. Its requests may be
   given as a function that encodes them, called when the writer takes
   the batch (never if the link fails first): until then the sender may
   add to what it will encode (replicator.py gathers a send's puts so).
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import cast

import trio

from ...protocol.resp_pack import pack_commands
from ...protocol.resp_reply import NEED_DATA, ReplyParser, ReplyProtocolError

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


class _Batch:
    """The requests of one ``request_many`` (rule 5)."""

    __slots__ = ("data", "count", "replies", "error", "done", "on_replies", "abandoned", "sent", "queued_at")

    def __init__(self, data: bytes | Callable[[], bytes], count: int, queued_at: float,
                 on_replies: Callable[[list[object] | None], None] | None = None) -> None:
        # The requests, encoded back to back, or what encodes them when the
        # writer takes the batch (rule 6: the sender may add to it until then).
        self.data = data
        self.count = count
        # time.monotonic() when the caller queued it (the link's lag; a
        # plain clock: statistics are read from worker threads too).
        self.queued_at = queued_at
        # The replies so far, in order (count of them once done).
        self.replies: list[object] = []
        self.error: LinkError | None = None
        # How the sender learns the outcome: a waiting request_many's event,
        # or send_nowait's callback (rule 6).
        self.done: trio.Event | None = trio.Event() if on_replies is None else None
        self.on_replies = on_replies
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
        self._queue: collections.deque[_Batch] = collections.deque()
        self._in_flight: collections.deque[_Batch] = collections.deque()
        # Requests in the queue / sent and not answered (rule 2 counts these).
        self._queued_requests = 0
        self._in_flight_requests = 0
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
        return self._queued_requests

    @property
    def in_flight(self) -> int:
        return self._in_flight_requests

    @property
    def queued_bytes(self) -> int:
        """Encoded bytes waiting to be sent (at most the queue bound's requests)."""
        return sum(len(data) for batch in list(self._queue) if type(data := batch.data) is bytes)

    @property
    def oldest_request_age_seconds(self) -> float | None:
        """How long the oldest unanswered request (in flight, else queued)
        has waited: the peer's lag behind this node; None when nothing
        waits. Safe from any thread (a reply may take the request meanwhile)."""
        for batches in (self._in_flight, self._queue):
            try:
                oldest = batches[0]
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
        if not count:
            return []  # no slot: a batch of nothing would wait for no reply forever
        while self._closed is None and not self._has_room(count):
            await self._room.park()
        if self._closed is not None:
            raise LinkClosed(f"link to {self.name} closed: {self._closed}")
        batch = self._enqueue(_Batch(pack_commands(requests), count, time.monotonic()))
        done = batch.done
        assert done is not None
        try:
            await done.wait()
        finally:
            if not done.is_set():
                batch.abandoned = True
        if batch.error is not None:
            raise LinkClosed(str(batch.error), sent=batch.error.sent)
        return batch.replies

    def send_nowait(self, data: bytes | Callable[[], bytes], count: int,
                    on_replies: Callable[[list[object] | None], None]) -> bool:
        """Queue ``count`` requests, already encoded back to back in
        ``data`` (``resp_pack.pack_commands``: a caller sending the same
        request to several peers encodes it once), or encoded by ``data()``
        when the writer takes them, without waiting (rule 6); False:
        refused, nothing queued."""
        if self._closed is not None or not self._has_room(count):
            return False
        if count:
            self._enqueue(_Batch(data, count, time.monotonic(), on_replies))
        else:
            on_replies([])
        return True

    def _has_room(self, count: int) -> bool:
        """Whether ``count`` more requests fit in the queue now (rule 2: a
        batch larger than the bound is let in alone once the queue is empty)."""
        return not self._queue or self._queued_requests + count <= self.max_queued_requests

    def _enqueue(self, batch: _Batch) -> _Batch:
        """Queue ``batch`` for the writer (the caller checked ``_has_room``
        and that the link is open) and wake the writer; ``batch``."""
        self._queue.append(batch)
        self._queued_requests += batch.count
        self._work.unpark_all()
        return batch

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
            while not queue or not self._room_in_flight(queue[0].count):
                await self._work.park()
            out: list[bytes] = []
            size = 0
            messages = 0
            while queue and size < SEND_BATCH_BYTES and self._room_in_flight(queue[0].count):
                batch = queue.popleft()
                self._queued_requests -= batch.count
                if batch.abandoned:
                    traffic.withdrawn += batch.count
                    continue
                batch.sent = True
                in_flight.append(batch)
                self._in_flight_requests += batch.count
                data = batch.data
                if not isinstance(data, bytes):  # encoded when taken (send_nowait)
                    data = batch.data = data()
                out.append(data)
                size += len(data)
                messages += batch.count
            self._room.unpark_all()
            if out:
                data = out[0] if len(out) == 1 else b"".join(out)
                # Never cancelled while the link lives (rule 1).
                await self.stream.send_all(data)
                traffic.sent_bytes += size
                traffic.sent_messages += messages
                traffic.sends += 1

    def _room_in_flight(self, count: int) -> bool:
        """Whether a batch of ``count`` requests may be sent now (rule 2; a
        batch over the bound goes alone once nothing is in flight)."""
        in_flight = self._in_flight_requests
        return in_flight == 0 or in_flight + count <= self.max_in_flight_requests

    async def _read_loop(self) -> None:
        parser = ReplyParser()
        in_flight, traffic = self._in_flight, self.traffic
        while True:
            # trio's stubs say bytes | bytearray; socket streams return bytes.
            data = cast(bytes, await self.stream.receive_some(RECEIVE_BYTES))
            if not data:
                raise _PeerClosed("the peer closed the connection")
            traffic.received_bytes += len(data)
            parser.receive_data(data)
            answered = 0
            while True:
                reply = parser.next_reply()
                if reply is NEED_DATA:
                    break
                if not in_flight:
                    raise ReplyProtocolError("a reply nobody asked for")
                batch = in_flight[0]
                replies = batch.replies
                replies.append(reply)
                answered += 1
                if len(replies) == batch.count:
                    in_flight.popleft()
                    if batch.abandoned:
                        traffic.late_replies += batch.count
                    elif batch.done is not None:
                        batch.done.set()
                    elif batch.on_replies is not None:
                        batch.on_replies(replies)
            traffic.received_messages += answered
            self._in_flight_requests -= answered
            # Room in flight again: the writer may be waiting for it.
            self._work.unpark_all()

    def _fail_all(self, reason: str) -> None:
        if self._closed is None:
            self._closed = reason
        failed: list[_Batch] = []
        for batches, sent in ((self._in_flight, True), (self._queue, False)):
            while batches:
                batch = batches.popleft()
                if batch.done is None:
                    failed.append(batch)
                elif not batch.done.is_set():
                    batch.error = LinkClosed(f"link to {self.name} closed: {self._closed}", sent=sent)
                    batch.done.set()
        self._queued_requests = self._in_flight_requests = 0
        for batch in failed:
            if batch.on_replies is not None:
                batch.on_replies(None)
        self._room.unpark_all()


class _PeerClosed(Exception):
    pass
