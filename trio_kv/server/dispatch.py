"""Group dispatch: many connections' requests share one worker-thread hop.

A hop through ``trio.to_thread.run_sync`` costs 100-250 us here, far more
than running a command, so connections never hop on their own. A connection
calls ``Dispatcher.submit(job)``; the job joins a pending list; one of the
dispatcher's runner tasks takes *everything* pending at that moment and runs
it in one hop (``store.engine.run_batch``) under the store's
``CapacityLimiter``. With ``--workers N`` there are N runners and the limiter
has N tokens, so up to N hops are in flight while the next group gathers.

Rules kept here:

* A connection has at most one job in flight, so its replies come back in
  its own order.
* The runners are the limiter's only users (internal store work such as the
  expiry sweep also goes through ``run_sync`` here), so a runner never waits
  for a token: the only wait for a worker is in the pending list.
* That wait is cancellable: a job cancelled while pending is withdrawn and
  never runs. Once a runner took it, it is on a worker and always runs to
  the end (``abandon_on_cancel`` stays False), so a command is never
  half-applied.
* Sliced commands (``commands/slicing.py``): a job whose sliced command is
  unfinished after its hop (``job.sliced``) goes back to the end of the
  pending list instead of waking its connection, so its next slice runs in
  a later hop, with whatever other connections submitted meanwhile; its
  connection is woken when the whole job is done. Between slices the job
  is pending like any other, so a cancel withdraws it at once; a cancel
  that arrives while a slice is on a worker takes effect when that slice
  ends (the job is abandoned there, its connection gets no reply). Either
  way no write is half-applied: a sliced command writes only in its first
  step. So a cancelled connection (the shutdown grace ran out) is gone
  within one slice (``SLICE_SECONDS``), whatever it was running.
* The pending list is bounded by the number of connections (one job each),
  which ``--max-clients`` bounds, plus the few internal tasks.
* With the append-only log on, a job whose writes were logged is not woken
  when its hop ends: the worker kicks the log's commit thread
  (``CommitWaiter.kick``; the dispatcher is built with the waiter, a
  ``server.log_commit.LogFlusher``), the job joins the committing list, and
  ``log_flushed`` wakes it once its records are as durable as the fsync
  policy promises (one flush covers everyone waiting). So no reply
  acknowledges a write that could be lost, and the runners go on running
  hops during the flush. Usually the flush is done before the hop's end
  reaches the event loop, and the job is woken at once; so the waiter
  reports flushes only while the committing list holds jobs
  (``CommitWaiter.expect_report``, then ``durable_lsn`` read again: a flush
  that ended unreported in between is seen there). A job submitted with
  ``on_applied`` has it called as it joins the committing list: a cluster
  coordinator sends the write to the other replicas then, so their log
  flushes overlap this node's. A job submitted with ``hold`` has it called
  when its reply could go (its writes durable, or refused): ``hold`` may
  keep the task parked (it returns True) and wake it later through the
  function it was given; a cluster coordinator so waits for its replicas'
  acks in the same park, one wakeup per write instead of two. A held task
  that is cancelled stops waiting at once (its job ran; only the wait
  ends).
* Internal work may write too (the embedded library's Trio shell:
  ``run_logged``): it returns its value with the LSN of its log record,
  and waits in the committing list exactly as a job does; a flush that
  fails raises ``LogRefused`` in its caller instead of an error reply.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, cast

import outcome
import trio

from ..store.direct import LogRefused
from ..store.engine import Job, Store, run_batch


# A hop that has run this long lets the next group start beside it.
PARALLEL_HOP_AFTER_SECONDS = 0.002


class CommitWaiter(Protocol):
    """What the dispatcher needs of the log's commit thread
    (``server.log_commit.LogFlusher``) to hold replies until their writes
    are durable. The waiter reports each flush back by calling the
    dispatcher's ``log_flushed`` on the event loop."""

    @property
    def durable_lsn(self) -> int:
        """Every record up to this LSN is as durable as the fsync policy promises."""
        ...

    def refusal(self) -> str | None:
        """Why the log refuses writes now (a disk error), or None."""
        ...

    def kick(self) -> None:
        """Ask for a flush of everything appended so far (any thread)."""
        ...

    def expect_report(self) -> None:
        """Jobs wait for a flush (event loop): report the flushes that end
        from now on. A waiter may skip reporting a flush while nobody waits
        (the dispatcher reads ``durable_lsn`` again after this call)."""
        ...


class _Ticket:
    __slots__ = ("work", "task", "taken", "result", "raise_cancel", "on_applied", "logged", "log_lsn",
                 "hold", "held")

    def __init__(self, work: Job | Callable[[], Any], task: trio.lowlevel.Task,
                 on_applied: Callable[[], None] | None = None, logged: bool = False,
                 hold: Callable[[Callable[[], None]], bool] | None = None) -> None:
        # A Job (client requests) or a plain callable (internal store work).
        self.work = work
        self.task = task
        # submit()'s on_applied: called when the job's hop ended and it
        # starts waiting for the log (see submit).
        self.on_applied = on_applied
        self.taken = False
        self.result: Any = None
        # Set when the waiting task was cancelled while its ticket was on a
        # worker: a job still unfinished after that hop is abandoned.
        self.raise_cancel: Callable[[], Any] | None = None
        # Internal work that writes (run_logged): it returns (value, LSN),
        # and the ticket waits for the log up to that LSN (0: nothing logged).
        self.logged = logged
        self.log_lsn = 0
        # submit()'s hold: called once the job's reply could go; True keeps
        # the task parked (``held``) until the holder calls ``wake``.
        self.hold = hold
        self.held = False

    def wake(self) -> None:
        """The holder's wakeup of a held task (a no-op once it stopped waiting)."""
        if self.held:
            self.held = False
            trio.lowlevel.reschedule(self.task)


def _run_hop(store: Store, tickets: list[_Ticket], kick: Callable[[], None] | None) -> None:
    """The function a worker thread runs: the jobs as one batch, and any
    internal work; then, if writes were logged, a kick for the log's commit
    thread. Internal work raising is a bug; it reaches its caller."""
    jobs = [ticket.work for ticket in tickets if type(ticket.work) is Job]
    if jobs:
        run_batch(store, jobs)
        if kick is not None and any(job.log_lsn for job in jobs):
            kick()
    logged = False
    for ticket in tickets:
        if type(ticket.work) is not Job:
            # Not a Job: internal work, a plain callable (mypy cannot narrow
            # by ``type(...) is not``).
            internal = cast(Callable[[], Any], ticket.work)
            try:
                value = internal()
            except Exception as error:
                ticket.result = ("error", error)
                continue
            if ticket.logged:
                value, ticket.log_lsn = value
                logged = logged or ticket.log_lsn > 0
            ticket.result = ("value", value)
    if logged and kick is not None:
        kick()


class Dispatcher:
    def __init__(self, store: Store, workers: int, *, commit: CommitWaiter | None = None) -> None:
        self._store = store
        self._workers = workers
        self._limiter = trio.CapacityLimiter(workers)
        self._pending: list[_Ticket] = []
        self._wakeup = trio.Event()
        # With the append-only log on, its commit thread: replies wait for
        # their writes (see the docstring). None: memory only.
        self._commit = commit
        # Tickets whose logged writes are not durable yet (see the docstring).
        self._committing: list[_Ticket] = []
        self._in_flight = 0
        self._hop_finished = trio.Event()
        self.hops = 0
        self.jobs_dispatched = 0
        # Jobs queued again with a sliced command unfinished, and jobs
        # abandoned between slices because their connection was cancelled.
        self.slices_requeued = 0
        self.slices_abandoned = 0
        # Hops whose jobs then waited for the log, and the commit thread's
        # reports that woke them (one per flush, or fewer: LogFlusher).
        self.log_waits = 0
        self.log_reports = 0
        # A multi-node cluster's coordinator (server/cluster/coordinator.py):
        # while set, connections hand their jobs to it instead of ``submit``.
        self.router: Callable[[Job], Awaitable[None]] | None = None

    def statistics(self) -> dict[str, int]:
        return {
            "hops": self.hops,
            "jobs": self.jobs_dispatched,
            "pending": len(self._pending),
            "awaiting_log": len(self._committing),
            "workers_busy": self._limiter.borrowed_tokens,
            "slices_requeued": self.slices_requeued,
            "slices_abandoned": self.slices_abandoned,
            "log_waits": self.log_waits,
            "log_reports": self.log_reports,
        }

    async def submit(self, job: Job, on_applied: Callable[[], None] | None = None,
                     hold: Callable[[Callable[[], None]], bool] | None = None) -> None:
        """Run ``job`` on a worker; returns when ``job.replies`` is filled and,
        with the append-only log on, its writes are as durable as the fsync
        policy promises (so no reply acknowledges a write that could be lost).
        A logged write the disk refused gets the refusal as its reply.

        ``on_applied`` (a cluster coordinator's): called on the event loop
        when the job's hop has ended and the job starts waiting for the log,
        so its writes can be sent to other replicas while the log flushes
        here; not called when the job waits for no log (submit returns then).

        ``hold`` (a cluster coordinator's): called on the event loop when
        the job's reply could go (durable, or refused), with a function that
        wakes this task; returning True keeps the task parked until that
        function is called (submit returns then), False returns at once.
        Not called when the task was cancelled while its job ran (submit
        returns, and the cancellation is raised at the caller's next
        checkpoint)."""
        await self._wait_for(_Ticket(job, trio.lowlevel.current_task(), on_applied, hold=hold))

    async def run_sync(self, function: Callable[[], Any]) -> Any:
        """Run internal store work (it takes the store lock itself) on a worker,
        sharing a hop with client jobs."""
        ticket = _Ticket(function, trio.lowlevel.current_task())
        await self._wait_for(ticket)
        kind, value = ticket.result
        if kind == "error":
            raise value
        return value

    async def run_logged(self, function: Callable[[], tuple[Any, int]]) -> Any:
        """Run internal work that writes (it takes the store lock itself and
        returns ``(value, lsn)``: the LSN of its log record, 0 for none) on a
        worker, sharing a hop with client jobs; return ``value`` once the
        record is as durable as the fsync policy promises. Raises
        ``LogRefused`` when the log's flush failed (the write is applied in
        memory, not durable)."""
        ticket = _Ticket(function, trio.lowlevel.current_task(), logged=True)
        await self._wait_for(ticket)
        kind, value = ticket.result
        if kind == "error":
            raise value
        return value

    async def _wait_for(self, ticket: _Ticket) -> None:
        # The waiting task is parked and woken directly (trio.lowlevel): an
        # Event per request cost a measurable share of the event loop's time.
        self._pending.append(ticket)
        self._wakeup.set()

        def abort(raise_cancel) -> trio.lowlevel.Abort:
            if ticket.held:
                # Its job ran and its reply could go; only the holder's
                # wait ends (the holder's later wake is a no-op).
                ticket.held = False
                return trio.lowlevel.Abort.SUCCEEDED
            if ticket.taken:
                # Already on a worker: its hop will finish and the runner
                # wakes us (with the cancellation, if a sliced command is
                # left unfinished).
                ticket.raise_cancel = raise_cancel
                return trio.lowlevel.Abort.FAILED
            self._pending.remove(ticket)
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Run the runner tasks until cancelled (after every connection is gone)."""
        async with trio.open_nursery() as nursery:
            for _ in range(self._workers):
                nursery.start_soon(self._runner)
            task_status.started()

    async def _runner(self) -> None:
        while True:
            while not self._pending:
                await self._wakeup.wait()
                self._wakeup = trio.Event()
            if self._in_flight:
                # Another hop is running. Under the GIL a second one in
                # parallel only adds switching, so let the group grow until
                # that hop ends; start in parallel only if it is slow (a big
                # KEYS, say), so one slow command never holds up the rest.
                with trio.move_on_after(PARALLEL_HOP_AFTER_SECONDS):
                    await self._hop_finished.wait()
                if not self._pending:
                    continue
            tickets, self._pending = self._pending, []
            for ticket in tickets:
                ticket.taken = True
            self.hops += 1
            self.jobs_dispatched += len(tickets)
            self._in_flight += 1
            try:
                kick = None if self._commit is None else self._commit.kick
                await trio.to_thread.run_sync(_run_hop, self._store, tickets, kick, limiter=self._limiter)
            finally:
                self._in_flight -= 1
                self._hop_finished.set()
                self._hop_finished = trio.Event()
                self._wake(tickets)

    def _wake(self, tickets: list[_Ticket]) -> None:
        """Wake the tickets of a finished hop, except jobs with a sliced
        command unfinished (queued again, or abandoned if their task was
        cancelled meanwhile) and jobs whose logged writes are not durable
        yet: those wait in the committing list."""
        if any(type(ticket.work) is Job and ticket.work.sliced is not None for ticket in tickets):
            tickets = self._requeue_unfinished(tickets)
        commit = self._commit
        if commit is None:
            for ticket in tickets:
                self._done(ticket)
            return
        durable = commit.durable_lsn
        committing = self._committing
        waiting_before = len(committing)
        applied: list[Callable[[], None]] = []
        done: list[_Ticket] = []
        for ticket in tickets:
            work = ticket.work
            if (work.log_lsn if type(work) is Job else ticket.log_lsn) > durable:
                refusal = commit.refusal()
                if refusal is None:
                    # The worker kicked the commit thread after appending,
                    # so a flush that covers this job is on its way.
                    committing.append(ticket)
                    if ticket.on_applied is not None:
                        applied.append(ticket.on_applied)
                        ticket.on_applied = None  # no cycle through a holder's closures
                    continue
                # The log failed meanwhile (perhaps the very flush that
                # covered this job, whose report has already gone by).
                self._refuse_logged(ticket, refusal)
            done.append(ticket)
        if len(committing) != waiting_before:
            self.log_waits += 1
            self._expect_report(durable)
        for callback in applied:
            callback()
        for ticket in done:
            self._done(ticket)

    def _done(self, ticket: _Ticket) -> None:
        """The ticket's reply could go now: wake its task, unless its
        ``hold`` keeps it parked (see submit)."""
        hold = ticket.hold
        if hold is not None:
            ticket.hold = None  # called once; and no cycle through its closures
            if ticket.raise_cancel is None and hold(ticket.wake):
                ticket.held = True
                return
        trio.lowlevel.reschedule(ticket.task)

    def _requeue_unfinished(self, tickets: list[_Ticket]) -> list[_Ticket]:
        """Queue the unfinished jobs of a hop again (or abandon them); return
        the other tickets, to be woken."""
        finished: list[_Ticket] = []
        for ticket in tickets:
            work = ticket.work
            if type(work) is not Job or work.sliced is None:
                finished.append(ticket)
            elif ticket.raise_cancel is not None:
                # Cancelled during the slice: stop here, between slices.
                self.slices_abandoned += 1
                work.sliced = None
                trio.lowlevel.reschedule(ticket.task, outcome.capture(ticket.raise_cancel))
            else:
                self.slices_requeued += 1
                ticket.taken = False
                self._pending.append(ticket)
                self._wakeup.set()
        return finished

    def _refuse_logged(self, ticket: _Ticket, reason: str) -> None:
        job = ticket.work
        if type(job) is not Job:  # logged internal work: its caller raises
            ticket.result = ("error", LogRefused(f"write not durable: {reason}"))
            return
        refused = job.session.wire.refused_write(reason)
        for index in job.logged:
            job.replies[index] = refused

    def log_flushed(self, error: OSError | None) -> None:
        """The commit thread finished a flush (event loop): wake every job
        that is durable now. If the flush failed, the jobs it did not cover
        get the refusal as the reply to their logged writes: applied in
        memory and still buffered for the log, but not written, so not
        acknowledged."""
        self.log_reports += 1
        self._wake_durable(error)

    def _wake_durable(self, error: OSError | None) -> None:
        commit = self._commit
        assert commit is not None  # only with the log on
        durable = commit.durable_lsn
        waiting: list[_Ticket] = []
        done: list[_Ticket] = []
        for ticket in self._committing:
            # A Job's ticket, or logged internal work's (see _wake).
            work = ticket.work
            if (work.log_lsn if type(work) is Job else ticket.log_lsn) <= durable:
                done.append(ticket)
            elif error is not None:
                self._refuse_logged(ticket, commit.refusal() or error.strerror or str(error))
                done.append(ticket)
            else:
                waiting.append(ticket)
        self._committing = waiting
        if waiting:
            self._expect_report(durable)
        for ticket in done:
            self._done(ticket)

    def _expect_report(self, durable: int) -> None:
        """Jobs wait in the committing list, and ``durable`` was read before:
        ask the waiter to report the next flush, then read ``durable_lsn``
        again. A flush that ended between the two reads may have gone
        unreported (nobody was waiting when it ended), but then this second
        read sees it (the waiter moves durable_lsn before it looks whether
        anyone waits), so nothing is left waiting for a report that never
        comes."""
        commit = self._commit
        assert commit is not None
        commit.expect_report()
        if commit.durable_lsn != durable:
            self._wake_durable(None)
