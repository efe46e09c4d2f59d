"""Hinted handoff: a preference-list replica that did not get a write gets
it later from this node's hint log (design: "temporary failure").

When a hint is born (``hint``, called on the event loop by the data path):

* the replica was believed down when the write was sent (the plan's
  ``skipped`` members: nothing was sent to it);
* its link refused the batch (not connected, or its queue full);
* its link failed with the request queued or in flight (``None``
  answers), or it answered the request with an error.

A request that is merely slow is *not* hinted when the client's
``--cluster-write-timeout`` passes: it is still queued or in flight on the
link, so it is either acked later (no hint needed) or fails with the link
(then hinted). A hint whose write did land after all (a link that broke
after the peer applied it) is harmless: replaying it is an idempotent
merge (``hint_log``).

Rules kept here:

* No disk IO and no worker hop on the data path: ``hint`` appends to an
  in-memory list per target and wakes the one writer task, which writes
  everything gathered since its last write in one thread hop
  (``trio.to_thread.run_sync`` under the hints' own limiter: one kind of
  work, one limiter), at most one hop per ``WRITE_GATHER_SECONDS`` while
  hints keep coming. When every replica acks, nothing here runs at all.
* The files get write() but no fsync: a process crash loses no hint
  written, a power loss may lose the newest (anti-entropy repairs them).
* Bounded: hints waiting in memory for a target count against
  ``--cluster-max-hint-bytes`` with its files; past it they are dropped
  (``dropped_full``).
* Replay (``run_replayer``, one task): a target with hints that this node
  sees up (``ClusterNode``'s opinion) is replayed: the writer's pending
  hints are written, the target's open file sealed, then each sealed file,
  oldest first, is sent in order as batches of ``REPLAY_BATCH`` ``TKV.REPL.PUT``
  requests on the peer link (``REPLAY_WINDOW`` batches in flight), and the file is
  deleted only once every request of it was acked. A refused batch, a
  failed link, an error answer or no answer within ``REPLAY_TIMEOUT_SECONDS``
  ends the replay; the file stays and is sent again from its start on the
  next try (re-sending acked hints is harmless). The replayer looks again
  at every view change and every ``REPLAY_POLL_SECONDS``.
* Hints older than ``--cluster-max-hint-window`` are dropped unsent
  (``dropped_window``; anti-entropy repairs what they held).
* Hints survive this node's restart: the files are found at start and
  replayed like any others.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import trio

from ...cluster.ring import Member
from ...protocol.replies import Error
from .hint_log import HintFiles

log = logging.getLogger(__name__)

# TKV.REPL.PUT requests per replay batch (well inside a link's queue bound).
REPLAY_BATCH = 256
# Batches sent and not yet answered, at most (REPLAY_WINDOW * REPLAY_BATCH
# requests: within a link's queue bound, link.DEFAULT_MAX_QUEUED_REQUESTS).
REPLAY_WINDOW = 3
# No answer for this long: the replay stops (retried later).
REPLAY_TIMEOUT_SECONDS = 10.0
REPLAY_POLL_SECONDS = 1.0
# How often sealed files past the window are deleted unread.
EXPIRE_EVERY_SECONDS = 60.0
# A full link queue: wait this long before offering the batch again.
REFUSED_RETRY_SECONDS = 0.05
REFUSED_RETRIES = 40
# After the first hint of a batch, wait this long for more before writing.
WRITE_GATHER_SECONDS = 0.01
# At stop, the hints gathered are written within this long.
STOP_WRITE_SECONDS = 1.0
# What statistics() counts.
HINT_COUNTERS = ("written", "replayed", "dropped_window", "dropped_full", "dropped_damaged", "replay_failed")


class HintedHandoff:
    """This node's hints: taken on the event loop, written by one task,
    replayed by another (see the module docstring)."""

    def __init__(self, node: Any, files: HintFiles, *,
                 wall_clock: Callable[[], float] = time.time) -> None:
        # ClusterNode: the up/down opinion (view()), view_changed, links.
        self.node = node
        self.files = files
        self._clock = wall_clock
        self.max_bytes = files.max_bytes
        self._limiter = trio.CapacityLimiter(1)
        # Per target address: (written_at_ms, request) not yet written, and their bytes.
        self._pending: dict[str, list[tuple[int, bytes]]] = defaultdict(list)
        self._pending_bytes: dict[str, int] = defaultdict(int)
        self._wake = trio.Event()
        # Set (and replaced) after each write to disk.
        self._written = trio.Event()
        self._writing = False
        self.counts: dict[str, int] = defaultdict(int)
        # The files' per-target (records, bytes), refreshed after every file operation.
        self._on_disk: dict[str, tuple[int, int]] = {}

    # -- the data path's side ----------------------------------------------------------

    def hint(self, member: Member, requests: list[bytes]) -> None:
        """``member`` did not get ``requests`` (TKV.REPL.PUT, encoded): keep
        them for it. On the event loop; no IO."""
        target = member.address
        now_ms = int(self._clock() * 1000)
        pending = self._pending[target]
        size = self._pending_bytes[target] + self._on_disk.get(target, (0, 0))[1]
        for request in requests:
            size += len(request) + 16
            if size > self.max_bytes:
                self.counts["dropped_full"] += 1
                continue
            pending.append((now_ms, request))
            self._pending_bytes[target] += len(request) + 16
        self._wake.set()

    # -- the writer ----------------------------------------------------------------

    async def run_writer(self) -> None:
        """Write gathered hints, one thread hop per wake-up, until cancelled."""
        try:
            while True:
                await self._wake.wait()
                # Gather the hints of the writes that follow too: one hop for many.
                await trio.sleep(WRITE_GATHER_SECONDS)
                self._wake = trio.Event()
                await self._write_pending()
        finally:
            # Stopping: what was gathered goes to disk still (briefly).
            with trio.CancelScope(shield=True), trio.move_on_after(STOP_WRITE_SECONDS):
                await self.flush()

    async def _write_pending(self) -> None:
        if not self._pending:
            return
        batch = dict(self._pending)
        self._pending.clear()
        self._pending_bytes.clear()
        self._writing = True
        try:
            written, dropped = await trio.to_thread.run_sync(self.files.append, batch, limiter=self._limiter)
            self.counts["written"] += written
            self.counts["dropped_full"] += dropped
        except OSError as error:
            lost = sum(len(records) for records in batch.values())
            self.counts["dropped_full"] += lost
            log.warning("could not write %d hints: %s", lost, error)
        finally:
            self._writing = False
        self._on_disk = self.files.pending()
        written_event, self._written = self._written, trio.Event()
        written_event.set()

    async def flush(self) -> None:
        """Until every hint taken so far is on disk."""
        while self._writing or self._pending:
            if not self._writing:
                await self._write_pending()
            else:
                await self._written.wait()

    # -- the replayer ----------------------------------------------------------------

    async def run_replayer(self) -> None:
        """Replay to every target seen up, again at each view change or poll, until cancelled."""
        last_expire = trio.current_time()
        while True:
            changed = self.node.view_changed
            view = self.node.view()
            for member in view.ring.members:
                if member == view.myself or member not in view.up:
                    continue
                if self.files.has_hints(member.address) or self._pending.get(member.address):
                    await self.replay(member)
            if trio.current_time() - last_expire >= EXPIRE_EVERY_SECONDS:
                last_expire = trio.current_time()
                await trio.to_thread.run_sync(self.files.expire, limiter=self._limiter)
                self._on_disk = self.files.pending()
            with trio.move_on_after(REPLAY_POLL_SECONDS):
                await changed.wait()

    async def replay(self, member: Member) -> bool:
        """Send ``member`` every hint kept for it, oldest first; True if all were acked."""
        target = member.address
        await self.flush()
        seqs = await trio.to_thread.run_sync(self.files.seal, target, limiter=self._limiter)
        started = trio.current_time()
        sent = 0
        for seq in seqs:
            hints = await trio.to_thread.run_sync(self.files.read, target, seq, limiter=self._limiter)
            self.counts["dropped_window"] += hints.expired
            self.counts["dropped_damaged"] += hints.damaged
            requests = hints.requests
            if not await self._send_all(member, requests):
                self.counts["replay_failed"] += 1
                self._on_disk = self.files.pending()
                log.info("hint replay to %s stopped after %d hints; retried later", target, sent)
                return False
            sent += len(requests)
            await trio.to_thread.run_sync(
                self.files.delete, target, seq, len(requests) + hints.expired + hints.damaged, limiter=self._limiter
            )
            self.counts["replayed"] += len(requests)
            self._on_disk = self.files.pending()
        if sent:
            log.info("replayed %d hints to %s in %.3f s", sent, target, trio.current_time() - started)
        return True

    async def _send_all(self, member: Member, requests: list[bytes]) -> bool:
        """``requests`` in order on ``member``'s link, as batches of
        ``REPLAY_BATCH`` with up to ``REPLAY_WINDOW`` batches unanswered;
        True once every request was acked."""
        link = self.node.links.get(member)
        if link is None:
            return False
        state = _Replies()
        for first in range(0, len(requests), REPLAY_BATCH):
            if not await state.wait_below(REPLAY_WINDOW):
                return False
            batch = requests[first : first + REPLAY_BATCH]
            data = b"".join(batch)
            for _ in range(REFUSED_RETRIES):
                if link.send_nowait(data, len(batch), state.on_replies):
                    break
                if not link.connected:
                    return False
                await trio.sleep(REFUSED_RETRY_SECONDS)  # the queue is full: the data path goes first
            else:
                return False
            state.outstanding += 1
        return await state.wait_below(1)

    def refresh_pending(self) -> None:
        """Re-read the files' per-target counts (after they were opened)."""
        self._on_disk = self.files.pending()

    # -- what INFO, /metrics and cluster status read ---------------------------------------

    def statistics(self) -> dict[str, int]:
        """Counters since start, and the hints pending in total (records, bytes)."""
        counts = {name: self.counts.get(name, 0) for name in HINT_COUNTERS}
        pending = self.pending()
        counts["pending_records"] = sum(records for records, _ in pending.values())
        counts["pending_bytes"] = sum(size for _, size in pending.values())
        return counts

    def pending(self) -> dict[str, tuple[int, int]]:
        """Per target address with hints: (records, bytes), on disk or waiting to be written."""
        pending = dict(self._on_disk)
        for target, records in list(self._pending.items()):
            if records:
                disk_records, disk_bytes = pending.get(target, (0, 0))
                pending[target] = (disk_records + len(records), disk_bytes + self._pending_bytes.get(target, 0))
        return pending


class _Replies:
    """The answers of one replay's batches: how many are outstanding, whether one failed."""

    def __init__(self) -> None:
        self.outstanding = 0
        self.failed = False
        self._progress = trio.Event()

    def on_replies(self, replies: list[object] | None) -> None:
        """A batch's answers (the link's ``on_replies``; None: the link failed)."""
        self.outstanding -= 1
        if replies is None or any(reply is None or type(reply) is Error for reply in replies):
            self.failed = True
        progress, self._progress = self._progress, trio.Event()
        progress.set()

    async def wait_below(self, count: int) -> bool:
        """Until fewer than ``count`` batches are outstanding; False at a
        failure or after ``REPLAY_TIMEOUT_SECONDS`` without an answer (only
        the wait is bounded: a batch once queued is sent whole)."""
        while self.outstanding >= count and not self.failed:
            with trio.move_on_after(REPLAY_TIMEOUT_SECONDS) as scope:
                await self._progress.wait()
            if scope.cancelled_caught:
                return False
        return not self.failed
