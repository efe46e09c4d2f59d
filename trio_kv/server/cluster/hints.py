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
* This node's own hints get write() but no fsync: a process crash loses
  no hint written, a power loss may lose the newest (anti-entropy repairs
  them; the write they belong to is on this node's own replica). A
  fallback's hints are another matter (below).
* Bounded: hints waiting in memory for a target count against
  ``--cluster-max-hint-bytes`` with its files; past it they are dropped
  (``dropped_full``).
* Replay (``run_replayer``, one task): a target with hints that this node
  sees up (``ClusterNode``'s opinion) is replayed: the writer's pending
  hints are written, the target's open file sealed, then each sealed file,
  oldest first, is sent in order as batches of ``REPLAY_BATCH`` ``TKV.REPL.PUT``
  requests on the peer link (``REPLAY_WINDOW`` batches in flight), and the file is
  deleted only once every request of it was acked. A refused batch, a
  failed link or no answer within ``REPLAY_TIMEOUT_SECONDS``
  ends the replay; the file stays and is sent again from its start on the
  next try (re-sending acked hints is harmless). The replayer looks again
  at every view change and every ``REPLAY_POLL_SECONDS``.
* Hints older than ``--cluster-max-hint-window`` are dropped unsent
  (``dropped_window``; anti-entropy repairs what they held).
* Hints survive this node's restart: the files are found at start and
  replayed like any others.
* A hint the target keeps answering with an error (a clock it refuses:
  nothing later will change its mind) does not block the rest: the
  file's other requests are acked, the replay goes on with the next
  file, and the file is sent again at the next try; once a file was
  answered errors in ``ERROR_TRIES`` replays, its errored hints are
  dropped (``dropped_error``, logged) and the file deleted.
* A target no longer in the ring (removed by ``trio-kv cluster remove``)
  never comes back as that member: its hints are dropped, files deleted
  (``dropped_removed``, logged). Not handed to the key's new preference
  list, because they need not be: every hint is a copy of a write its
  coordinator applied to its own replica before the hint existed, that
  replica is in the key's preference list or was streamed to its new
  owners by the partition moves of the ring change, and anti-entropy
  repairs the replicas that missed it. (With ``--cluster-aae-interval 0``
  such a write is on fewer replicas until something reads it.)

Sloppy quorum's fallback side (``take``, ``TKV.HINT target key clock
[key clock ...]`` from a coordinator whose write could not reach
``target``): the pairs join this node's hint log for ``target`` and are
replayed to it like any hint, but, unlike the coordinator's own hints,
its ack counts toward the write's W, so it is sent only once the hints
are durable under this node's ``appendfsync`` (``always``: fsynced first,
in the hop that writes them; ``everysec``: written, and fsynced within
a second by ``run_syncer``, as the log's own records; ``no``: written).
Refused (an error for the whole request): a target not in this node's
ring or this node itself, or more than ``--cluster-max-hint-bytes``.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import trio

from ...cluster.ring import Member
from ...protocol.replies import Error
from .hint_log import HintFiles
from .replicator import repl_put

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
# "held": hints taken for another coordinator's write (TKV.HINT, sloppy quorum).
HINT_COUNTERS = (
    "written", "replayed", "dropped_window", "dropped_full", "dropped_damaged", "replay_failed",
    "held", "dropped_error", "dropped_removed",
)
# Replays in which a file was answered an error before its errored hints are dropped.
ERROR_TRIES = 5
# ``everysec``: fallback hints are fsynced this often.
SYNC_EVERY_SECONDS = 1.0


class HintedHandoff:
    """This node's hints: taken on the event loop, written by one task,
    replayed by another (see the module docstring)."""

    def __init__(self, node: Any, files: HintFiles, *,
                 wall_clock: Callable[[], float] = time.time, fsync_policy: str = "no") -> None:
        # ClusterNode: the up/down opinion (view()), view_changed, links.
        self.node = node
        self.files = files
        # This node's appendfsync: how durable a fallback hint is before its ack.
        self.fsync_policy = fsync_policy
        # Set when TKV.HINT wrote hints not yet fsynced (run_syncer's cue).
        self._unsynced = trio.Event()
        # Per (target, file seq): replays in which the file was answered an error.
        self._error_tries: dict[tuple[str, int], int] = defaultdict(int)
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
            if view.myself in view.ring.members:
                # (A node outside its own ring, joining or removed, has no say on who was removed.)
                await self._drop_removed({member.address for member in view.ring.members})
            if trio.current_time() - last_expire >= EXPIRE_EVERY_SECONDS:
                last_expire = trio.current_time()
                await trio.to_thread.run_sync(self.files.expire, limiter=self._limiter)
                self._on_disk = self.files.pending()
            with trio.move_on_after(REPLAY_POLL_SECONDS):
                await changed.wait()

    async def _drop_removed(self, members: set[str]) -> None:
        """Drop the hints of targets no longer in the ring (see the module docstring)."""
        for target in [target for target in self.pending() if target not in members]:
            waiting = self._pending.pop(target, [])
            self._pending_bytes.pop(target, None)
            on_disk = await trio.to_thread.run_sync(self.files.drop_target, target, limiter=self._limiter)
            for key in [key for key in self._error_tries if key[0] == target]:
                del self._error_tries[key]
            dropped = len(waiting) + on_disk
            self.counts["dropped_removed"] += dropped
            self._on_disk = self.files.pending()
            log.warning("dropped %d hints for %s: no longer a member of the ring (anti-entropy repairs its"
                        " partitions' new replicas)", dropped, target)

    async def replay(self, member: Member) -> bool:
        """Send ``member`` every hint kept for it, oldest first; True if all were acked."""
        target = member.address
        await self.flush()
        seqs = await trio.to_thread.run_sync(self.files.seal, target, limiter=self._limiter)
        started = trio.current_time()
        sent = 0
        complete = True
        for seq in seqs:
            hints = await trio.to_thread.run_sync(self.files.read, target, seq, limiter=self._limiter)
            self.counts["dropped_window"] += hints.expired
            self.counts["dropped_damaged"] += hints.damaged
            requests = hints.requests
            errored = await self._send_all(member, requests)
            if errored is None:
                self.counts["replay_failed"] += 1
                self._on_disk = self.files.pending()
                log.info("hint replay to %s stopped after %d hints; retried later", target, sent)
                return False
            if errored:
                tries = self._error_tries[(target, seq)] = self._error_tries[(target, seq)] + 1
                if tries < ERROR_TRIES:
                    # The others were acked; this file is sent again next time, the rest go on now.
                    self.counts["replay_failed"] += 1
                    complete = False
                    continue
                self.counts["dropped_error"] += len(errored)
                log.warning("dropped %d hints for %s answered an error in %d replays (first: %r)",
                            len(errored), target, tries, errored[0][1])
            self._error_tries.pop((target, seq), None)
            acked = len(requests) - len(errored)
            sent += acked
            await trio.to_thread.run_sync(
                self.files.delete, target, seq, len(requests) + hints.expired + hints.damaged, limiter=self._limiter
            )
            self.counts["replayed"] += acked
            self._on_disk = self.files.pending()
        if sent:
            log.info("replayed %d hints to %s in %.3f s", sent, target, trio.current_time() - started)
        return complete

    async def _send_all(self, member: Member, requests: list[bytes]) -> list[tuple[int, object]] | None:
        """``requests`` in order on ``member``'s link, as batches of
        ``REPLAY_BATCH`` with up to ``REPLAY_WINDOW`` batches unanswered;
        once every request was answered, the (index, error) of those
        answered an error (empty: all acked); None if the link refused or
        failed or an answer did not come in time."""
        link = self.node.links.get(member)
        if link is None:
            return None
        state = _Replies()
        for first in range(0, len(requests), REPLAY_BATCH):
            if not await state.wait_below(REPLAY_WINDOW):
                return None
            batch = requests[first : first + REPLAY_BATCH]
            data = b"".join(batch)
            for _ in range(REFUSED_RETRIES):
                if link.send_nowait(data, len(batch), state.batch_answer(first)):
                    break
                if not link.connected:
                    return None
                await trio.sleep(REFUSED_RETRY_SECONDS)  # the queue is full: the data path goes first
            else:
                return None
            state.outstanding += 1
        if not await state.wait_below(1):
            return None
        return sorted(state.errors)

    # -- the fallback side (sloppy quorum) -------------------------------------------

    async def take(self, args: list[bytes]) -> object:
        """``TKV.HINT target key clock [key clock ...]``: keep the pairs for
        ``target``; the reply (an array, one :1 per pair) once they are
        durable under this node's appendfsync (see the module docstring)."""
        if len(args) < 4 or len(args) % 2:
            return Error("ERR wrong number of arguments for 'tkv.hint' command")
        view = self.node.view()
        try:
            target = Member.parse(args[1].decode(errors="replace"))
        except ValueError as error:
            return Error(f"ERR TKV.HINT: {error}")
        if target == view.myself or target not in view.ring.members:
            return Error(f"TKVREFUSED TKV.HINT: {target.address} is not another member of this node's ring")
        now_ms = int(self._clock() * 1000)
        records = [(now_ms, repl_put(args[index], args[index + 1])) for index in range(2, len(args), 2)]
        sync = self.fsync_policy == "always"
        try:
            kept = await trio.to_thread.run_sync(
                functools.partial(self.files.append_all, target.address, records, sync=sync), limiter=self._limiter
            )
        except OSError as error:
            log.warning("could not keep %d hints for %s: %s", len(records), target.address, error)
            return Error(f"ERR TKV.HINT: {error}")
        self._on_disk = self.files.pending()
        if not kept:
            self.counts["dropped_full"] += len(records)
            return Error(f"ERR TKV.HINT: the hints for {target.address} are full")
        self.counts["held"] += len(records)
        if not sync:
            self._unsynced.set()
        return [1] * len(records)

    async def run_syncer(self) -> None:
        """``appendfsync everysec``: fsync the fallback hints written since
        the last pass, a second after the first of them (parked, with no
        wake-up, while no TKV.HINT comes: nothing changes without sloppy quorum)."""
        while True:
            await self._unsynced.wait()
            await trio.sleep(SYNC_EVERY_SECONDS)
            self._unsynced = trio.Event()
            try:
                await trio.to_thread.run_sync(self.files.sync_dirty, limiter=self._limiter)
            except OSError as error:
                log.warning("could not fsync the hint files: %s", error)

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
    """The answers of one replay's batches: how many are outstanding, whether
    the link failed, which requests were answered an error."""

    def __init__(self) -> None:
        self.outstanding = 0
        self.failed = False
        # (request index, the error) for each request answered an error.
        self.errors: list[tuple[int, object]] = []
        self._progress = trio.Event()

    def batch_answer(self, first: int) -> Callable[[list[object] | None], None]:
        """The link's ``on_replies`` for the batch whose first request is ``first``."""

        def on_replies(replies: list[object] | None) -> None:
            self.outstanding -= 1
            if replies is None or any(reply is None for reply in replies):
                self.failed = True  # the link failed: nothing is known of the batch
            else:
                self.errors += [(first + index, reply) for index, reply in enumerate(replies) if type(reply) is Error]
            progress, self._progress = self._progress, trio.Event()
            progress.set()

        return on_replies

    async def wait_below(self, count: int) -> bool:
        """Until fewer than ``count`` batches are outstanding; False at a
        link failure or after ``REPLAY_TIMEOUT_SECONDS`` without an answer (only
        the wait is bounded: a batch once queued is sent whole)."""
        while self.outstanding >= count and not self.failed:
            with trio.move_on_after(REPLAY_TIMEOUT_SECONDS) as scope:
                await self._progress.wait()
            if scope.cancelled_caught:
                return False
        return not self.failed
