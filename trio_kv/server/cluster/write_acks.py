"""The coordinator's bookkeeping of a write's acks: per write command and
preference list (``Write``), per client batch (``WriteBatch``: the event
its client waits on) and per connection for WAIT (``LastWrite``).

Rules: a peer's acks for one write count once, when every request that
peer owed for it has been answered (a write touching several keys of one
preference list sends one ``TKV.REPL.PUT`` per key); a peer that failed
any of them counts as failed. Late acks still count (WAIT sees them).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import trio

from ...cluster.quorum import AckCounter, Outcome
from ...cluster.ring import Member


class Write:
    """One write command's replication to one preference list: its ack
    counter and the requests each peer still owes an answer for."""

    __slots__ = ("counter", "owed", "failed", "on_progress", "batch")

    def __init__(self, counter: AckCounter, on_progress: Callable[[], None], batch: WriteBatch) -> None:
        self.counter = counter
        self.owed: dict[Member, int] = defaultdict(int)
        self.failed: set[Member] = set()
        # Called after every answer (wakes the WAITs).
        self.on_progress = on_progress
        # The batch whose client waits for this write (woken when all are decided).
        self.batch = batch

    def answered(self, member: Member, ok: bool) -> None:
        if not ok:
            self.failed.add(member)
        self.owed[member] -= 1
        if self.owed[member] == 0:
            if member in self.failed:
                self.counter.failed(member)
            else:
                self.counter.ok(member)
        self.batch.check()
        self.on_progress()

    def remote_acks(self, myself: Member) -> int:
        return sum(1 for member in self.counter.replies if member != myself and member not in self.failed
                   and self.owed[member] == 0)


class WriteBatch:
    """One job's writes: its client waits on ``decided`` (one event per
    batch, so an ack wakes only the client it concerns)."""

    __slots__ = ("writes", "decided")

    def __init__(self) -> None:
        self.writes: list[Write] = []
        self.decided = trio.Event()

    def check(self) -> None:
        if not self.decided.is_set() and all(w.counter.outcome is not Outcome.PENDING for w in self.writes):
            self.decided.set()


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
