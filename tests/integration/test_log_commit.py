"""The log's commit thread and the dispatcher: which flushes wake the event
loop (server.log_commit.LogFlusher, server.dispatch)."""

from __future__ import annotations

import threading
import time

import trio
import trio.testing

from trio_kv.commands.redis import REDIS_COMMANDS
from trio_kv.commands.session import Session
from trio_kv.commands.wire import RESP
from trio_kv.config import Config
from trio_kv.protocol.replies import OK
from trio_kv.server.dispatch import Dispatcher
from trio_kv.server.log_commit import LogFlusher, load_and_open_log
from trio_kv.store.engine import Job, Store
from trio_kv.store.local_control import LocalControl

WAIT_SECONDS = 10


class FakeLog:
    """What LogFlusher reads of a ``Persistence``: each ``flush`` makes
    everything appended durable and says so on ``flushes``."""

    fsync_policy = "no"
    closed = False
    write_error = sync_failed = files_lost = None

    def __init__(self) -> None:
        self.appended_lsn = 0
        self.durable_lsn = 0
        self.flushes = threading.Semaphore(0)

    def append(self) -> None:
        self.appended_lsn += 1

    def flush(self) -> int:
        self.durable_lsn = self.appended_lsn
        self.flushes.release()
        return self.durable_lsn

    def refusal(self) -> str | None:
        return None

    def wants_rewrite(self) -> bool:
        return False

    def check_files(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True


def _wait_for_flush(log: FakeLog) -> None:
    # Blocks the event loop on purpose: reports the commit thread queues
    # meanwhile cannot run until the test lets the loop go on.
    assert log.flushes.acquire(timeout=WAIT_SECONDS)


async def test_commit_thread_reports_only_flushes_someone_waits_for_and_coalesces_queued_reports(nursery):
    log = FakeLog()
    reports: list[int] = []
    reported = trio.Event()

    def on_flushed(error: OSError | None) -> None:
        assert error is None
        reports.append(log.durable_lsn)
        reported.set()

    flusher = LogFlusher(None, log, trio.CapacityLimiter(1), on_flushed)  # type: ignore[arg-type]
    await nursery.start(flusher.run)
    # Nobody waits: the flush wakes nobody.
    log.append()
    flusher.kick()
    _wait_for_flush(log)
    # A job waits: its flush is reported; a second flush while that report
    # is still queued (the loop is blocked) rides on the same report.
    flusher.expect_report()
    log.append()
    flusher.kick()
    _wait_for_flush(log)
    log.append()
    flusher.kick()
    _wait_for_flush(log)
    # One more flush, of nothing: the thread has decided about the ones
    # before it, and this one moves nothing, so it is not reported.
    flusher.kick()
    _wait_for_flush(log)
    with trio.fail_after(WAIT_SECONDS):
        await reported.wait()
    await trio.testing.wait_all_tasks_blocked()
    assert reports == [3]
    with trio.fail_after(WAIT_SECONDS):
        assert await flusher.close()
    flusher.kick()  # a hop may still kick after close(): nothing happens


class HeldFlushes:
    """A commit waiter that flushes only when the test says so."""

    def __init__(self, store: Store) -> None:
        assert store.persistence is not None
        self._persistence = store.persistence
        self.kicks = 0

    @property
    def durable_lsn(self) -> int:
        return self._persistence.durable_lsn

    def refusal(self) -> str | None:
        return self._persistence.refusal()

    def kick(self) -> None:
        self.kicks += 1

    def expect_report(self) -> None:
        pass


class UnreportedFlushes(HeldFlushes):
    """A commit waiter whose flush always ends just as the dispatcher asks
    for a report, and which reports nothing: the window between the
    dispatcher reading durable_lsn and asking."""

    def expect_report(self) -> None:
        self._persistence.flush()


async def test_a_flush_that_ends_before_the_dispatcher_asks_for_a_report_still_wakes_the_job(nursery, tmp_path):
    store = Store(Config(data_dir=str(tmp_path)))
    store.persistence = await load_and_open_log(store, trio.CapacityLimiter(1))
    waiter = UnreportedFlushes(store)
    dispatcher = Dispatcher(store, workers=1, commit=waiter)
    await nursery.start(dispatcher.run)
    session = Session(1, store, LocalControl(store), wire=RESP)
    job = Job(session, REDIS_COMMANDS, [[b"SET", b"k", b"v"]], time.perf_counter())
    done = trio.Event()

    async def submit() -> None:
        await dispatcher.submit(job)
        done.set()

    nursery.start_soon(submit)
    with trio.move_on_after(WAIT_SECONDS):
        await done.wait()
    woken = done.is_set()
    if not woken:
        # A job that reached a worker cannot be cancelled: let it end.
        store.persistence.flush()
        dispatcher.log_flushed(None)
    assert woken
    assert job.replies == [OK]
    assert waiter.kicks == 1
    assert job.log_lsn <= store.persistence.durable_lsn
    statistics = dispatcher.statistics()
    assert (statistics["log_waits"], statistics["log_reports"]) == (1, 0)


async def test_on_applied_runs_when_the_hop_ends_before_the_log_flush(nursery, tmp_path):
    # What a cluster coordinator relies on to send a write to the other
    # replicas while its own log flushes.
    store = Store(Config(data_dir=str(tmp_path)))
    store.persistence = await load_and_open_log(store, trio.CapacityLimiter(1))
    dispatcher = Dispatcher(store, workers=1, commit=HeldFlushes(store))
    await nursery.start(dispatcher.run)
    session = Session(1, store, LocalControl(store), wire=RESP)
    write = Job(session, REDIS_COMMANDS, [[b"SET", b"k", b"v"]], time.perf_counter())
    read = Job(session, REDIS_COMMANDS, [[b"GET", b"k"]], time.perf_counter())
    applied: list[str] = []
    done = trio.Event()

    async def submit() -> None:
        await dispatcher.submit(write, on_applied=lambda: applied.append("write"))
        done.set()

    with trio.fail_after(WAIT_SECONDS):
        nursery.start_soon(submit)
        while not applied:
            await trio.sleep(0.01)
        assert write.replies == [OK] and write.log_lsn > store.persistence.durable_lsn
        assert not done.is_set()  # still waiting for the log
        store.persistence.flush()
        dispatcher.log_flushed(None)
        await done.wait()
        await dispatcher.submit(read, on_applied=lambda: applied.append("read"))
    assert read.replies == [b"v"]
    assert applied == ["write"]  # a job that waits for no log: never called
