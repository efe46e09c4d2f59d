"""Group dispatch: many connections' requests share one worker-thread hop.

A hop through ``trio.to_thread.run_sync`` costs 100-250 us here, far more
than running a command, so connections never hop on their own. A connection
calls ``Dispatcher.submit(job)``; the job joins a pending list; one of the
dispatcher's runner tasks takes *everything* pending at that moment and runs
it in one hop (``store.engine.run_batch``) under the store's
``CapacityLimiter``. With ``--workers N`` there are N runners, so up to N hops
are in flight while the next group gathers.

Rules kept here:

* A connection has at most one job in flight, so its replies come back in
  its own order.
* Waiting for a worker is cancellable: a job cancelled before a runner took
  it is withdrawn and never runs. Once taken it always runs to the end
  (``abandon_on_cancel`` stays False), so a command is never half-applied.
* The pending list is bounded by the number of connections (one job each),
  which ``--max-clients`` bounds.
"""

from __future__ import annotations

import trio

from ..store.engine import Job, Store, run_batch


class _Ticket:
    __slots__ = ("job", "done", "taken")

    def __init__(self, job: Job) -> None:
        self.job = job
        self.done = trio.Event()
        self.taken = False


class Dispatcher:
    def __init__(self, store: Store, workers: int) -> None:
        self._store = store
        self._workers = workers
        self._limiter = trio.CapacityLimiter(workers)
        self._pending: list[_Ticket] = []
        self._wakeup = trio.Event()
        self.hops = 0
        self.jobs_dispatched = 0

    @property
    def limiter(self) -> trio.CapacityLimiter:
        return self._limiter

    def statistics(self) -> dict[str, int]:
        return {
            "hops": self.hops,
            "jobs": self.jobs_dispatched,
            "pending": len(self._pending),
            "workers_busy": self._limiter.borrowed_tokens,
        }

    async def submit(self, job: Job) -> None:
        """Run ``job`` on a worker; returns when ``job.replies`` is filled."""
        ticket = _Ticket(job)
        self._pending.append(ticket)
        self._wakeup.set()
        try:
            await ticket.done.wait()
        except trio.Cancelled:
            if not ticket.taken:
                self._pending.remove(ticket)
            raise

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
            tickets, self._pending = self._pending, []
            jobs = []
            for ticket in tickets:
                ticket.taken = True
                jobs.append(ticket.job)
            self.hops += 1
            self.jobs_dispatched += len(jobs)
            try:
                await trio.to_thread.run_sync(run_batch, self._store, jobs, limiter=self._limiter)
            finally:
                for ticket in tickets:
                    ticket.done.set()
