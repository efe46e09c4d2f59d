"""The coordinator's bookkeeping of a write's acks: per write command and
preference list (``Write``), per client batch (``WriteBatch``: its
decision wakes its client, parked in the dispatcher), per connection for
WAIT (``LastWrite``), and the one task that times out every pending batch
(``WriteDeadlines``).

Rules: this node's own ack counts once its log flush returned
(``acked_here``), before or after the peers' acks; a peer's acks for one
write count once, when every request that peer owed for it has been
answered (a write touching several keys of one preference list sends one
``TKV.REPL.PUT`` per key); a peer that failed any of them counts as
failed. Late acks still count (WAIT sees them).
A batch is decided when each of its writes is (SUCCESS or IMPOSSIBLE),
or when its deadline (``--cluster-write-timeout`` after it was made)
passes: its client then finds the writes still pending and answers them
``-NOREPLICAS``. One deadline task serves every batch (their deadlines
come in the order the batches were made), instead of a cancel scope per
write.
"""

from __future__ import annotations

import weakref
from collections import deque
from collections.abc import Callable

import trio

from ...cluster.quorum import AckCounter, Outcome
from ...cluster.ring import Member


class Write:
    """One write command's replication to one preference list: its ack
    counter and the requests each peer still owes an answer for."""

    __slots__ = ("counter", "owed", "failed", "on_progress", "batch", "here", "stand_ins")

    def __init__(self, counter: AckCounter, on_progress: Callable[[], None], batch: WriteBatch, *,
                 here: bool = False) -> None:
        self.counter = counter
        # Whether this node is in the preference list: its own ack
        # (``acked_here``) comes once its log flush returns, perhaps after
        # the peers' (the write is sent to them before that flush).
        self.here = here
        self.owed: dict[Member, int] = {}
        # Peers that failed a request of this write (None: none did).
        self.failed: set[Member] | None = None
        # Called after every answer (wakes the WAITs).
        self.on_progress = on_progress
        # The batch whose client waits for this write (woken when all are
        # decided), held weakly: the batch holds its writes (for WAIT), and a
        # strong reference back would make a reference cycle per write,
        # garbage only the cyclic collector frees (its full passes then took
        # 20-36 ms here). The batch lives while its client waits (and in
        # the deadline queue); a late ack after that has no one to wake.
        self.batch = weakref.ref(batch)
        # Sloppy quorum: preference-list member -> the fallback holding this
        # write for it (one per member; None: no fallback yet).
        self.stand_ins: dict[Member, Member] | None = None
        batch.add(self)

    def answered(self, member: Member, ok: bool) -> None:
        if not ok:
            if self.failed is None:
                self.failed = set()
            self.failed.add(member)
        owed = self.owed[member] - 1
        self.owed[member] = owed
        if owed == 0:
            counter = self.counter
            pending = counter.outcome is Outcome.PENDING
            if self.failed is not None and member in self.failed:
                counter.failed(member)
            else:
                counter.ok(member)
            if pending and counter.outcome is not Outcome.PENDING:
                batch = self.batch()
                if batch is not None:
                    batch.one_decided()
        self.on_progress()

    def acked_here(self, myself: Member) -> None:
        """The write is durable on this node (the dispatcher returned)."""
        counter = self.counter
        pending = counter.outcome is Outcome.PENDING
        counter.ok(myself)
        if pending and counter.outcome is not Outcome.PENDING:
            batch = self.batch()
            if batch is not None:
                batch.one_decided()

    def remote_acks(self, myself: Member) -> int:
        failed = self.failed or ()
        return sum(1 for member in self.counter.replies if member != myself and member not in failed
                   and self.owed.get(member, 0) == 0)


class WriteBatch:
    """One job's writes: its client waits until they are decided. The
    coordinator's client task is parked in the dispatcher (``hold``), and
    ``on_decided`` wakes it: one wakeup per write, with no Event made per
    write (``decided``, an Event made on first use, is for other waiters).
    An ack wakes only the client it concerns."""

    __slots__ = ("writes", "is_decided", "on_decided", "_event", "pending", "deadline", "__weakref__")

    def __init__(self) -> None:
        self.writes: list[Write] = []
        self.is_decided = False
        # Called once when the batch is decided (the dispatcher's wake of
        # the parked client task); None: nobody parked.
        self.on_decided: Callable[[], None] | None = None
        self._event: trio.Event | None = None
        # Writes whose counter is still PENDING.
        self.pending = 0
        # trio.current_time() after which the batch is decided anyway (WriteDeadlines).
        self.deadline = float("inf")

    @property
    def decided(self) -> trio.Event:
        """An Event set once the batch is decided (made on first use)."""
        event = self._event
        if event is None:
            event = self._event = trio.Event()
            if self.is_decided:
                event.set()
        return event

    def add(self, write: Write) -> None:
        self.writes.append(write)
        if write.counter.outcome is Outcome.PENDING:
            self.pending += 1

    def decide(self) -> None:
        """Decided (every write is, or the deadline passed): wake the waiter."""
        if self.is_decided:
            return
        self.is_decided = True
        waiter, self.on_decided = self.on_decided, None
        if waiter is not None:
            waiter()
        if self._event is not None:
            self._event.set()

    def one_decided(self) -> None:
        """A write of this batch left PENDING."""
        self.pending -= 1
        if self.pending <= 0:
            self.decide()

    def check(self) -> None:
        """Decide the batch if no write is pending (after the batch's writes are added)."""
        if self.pending <= 0:
            self.decide()


class WriteDeadlines:
    """Times out every pending batch from one task: ``add`` stamps a
    batch's deadline (now + ``timeout_seconds``) and queues it; ``run``
    sleeps until the oldest deadline and sets ``decided`` of the batches
    whose deadline has passed. Batches are queued in the order made, so
    the queue is in deadline order."""

    def __init__(self, timeout_seconds: float) -> None:
        self.timeout_seconds = timeout_seconds
        self._queue: deque[WriteBatch] = deque()
        # Set when a batch is queued while run() waits on an empty queue.
        self._queued: trio.Event | None = None

    def add(self, batch: WriteBatch) -> None:
        batch.deadline = trio.current_time() + self.timeout_seconds
        self._queue.append(batch)
        if self._queued is not None:
            self._queued.set()
            self._queued = None

    async def run(self) -> None:
        """Until cancelled."""
        queue = self._queue
        while True:
            while queue and queue[0].is_decided:
                queue.popleft()
            if not queue:
                self._queued = trio.Event()
                await self._queued.wait()
                continue
            await trio.sleep_until(queue[0].deadline)
            now = trio.current_time()
            while queue and (queue[0].is_decided or queue[0].deadline <= now):
                queue.popleft().decide()


class LastWrite:
    """What WAIT counts for a connection: its last batch's writes."""

    __slots__ = ("writes", "known")

    def __init__(self, writes: list[Write], known: int = 0) -> None:
        self.writes = writes
        # A forwarded write acknowledged OK: at least this many replicas
        # (its coordinator counted them; this node cannot see more).
        self.known = known

    def replicas(self, myself: Member) -> int:
        counts = [write.remote_acks(myself) for write in self.writes]
        if self.known:
            counts.append(self.known)
        return min(counts) if counts else 0
