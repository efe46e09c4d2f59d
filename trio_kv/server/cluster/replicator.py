"""Replication to one peer: long-lived sender tasks fed by a bounded queue.

The coordinator queues each write's ``TKV.REPL.PUT`` requests for a peer
here (``send``: no task per batch); a sender takes whatever is queued (up
to ``MAX_BATCH_REQUESTS``), sends it with one ``request_many`` and records
every answer on its ``Write`` (late answers too: WAIT counts them).
``senders`` tasks per peer keep that many batches in flight, so a slow
round trip does not hold the next writes back, and writes queued during a
round trip travel together.

Rules: the queue holds at most ``capacity`` requests
(``DEFAULT_QUEUE_REQUESTS``); a write that finds it full is not queued and
counts as failed for that peer at once (the peer is that far behind; its
copy is repaired later by a read), so a client never waits on a full
queue beyond its timeout. A link failure fails every request of the batch
that was sent on it, as before.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Sequence

import trio

from ...cluster.ring import Member
from ...protocol.replies import Error
from .link import LinkError
from .write_acks import Write

# Requests queued for one peer at most (about 4 MB of small values).
DEFAULT_QUEUE_REQUESTS = 4096
# Sender tasks per peer: batches in flight to it at once.
DEFAULT_SENDERS = 2
# Requests one request_many carries at most.
MAX_BATCH_REQUESTS = 512

RequestMany = Callable[[Sequence[Sequence[bytes]]], Awaitable[list[object]]]


class PeerReplicator:
    """The queue and sender tasks of one peer (``run`` in the coordinator's nursery)."""

    def __init__(self, member: Member, request_many: RequestMany, *, capacity: int = DEFAULT_QUEUE_REQUESTS,
                 senders: int = DEFAULT_SENDERS) -> None:
        self.member = member
        self._request_many = request_many
        self.capacity = capacity
        self.senders = senders
        self._queue: deque[tuple[list[bytes], Write]] = deque()
        self._work = trio.lowlevel.ParkingLot()

    def send(self, request: list[bytes], write: Write) -> bool:
        """Queue one request of ``write``; False (nothing queued) when the queue is full."""
        if len(self._queue) >= self.capacity:
            return False
        self._queue.append((request, write))
        if self._work:
            self._work.unpark()
        return True

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def run(self) -> None:
        """The sender tasks, until cancelled."""
        async with trio.open_nursery() as nursery:
            for _ in range(self.senders):
                nursery.start_soon(self._sender)

    async def _sender(self) -> None:
        queue = self._queue
        member = self.member
        while True:
            if not queue:
                await self._work.park()
                continue
            count = min(len(queue), MAX_BATCH_REQUESTS)
            taken = [queue.popleft() for _ in range(count)]
            if queue and self._work:
                self._work.unpark()  # more than one batch's worth: another sender takes the rest
            try:
                answers: list[object] = await self._request_many([request for request, _ in taken])
            except LinkError:
                answers = [None] * count
            for (_, write), answer in zip(taken, answers):
                write.answered(member, answer is not None and type(answer) is not Error)
