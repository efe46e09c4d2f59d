"""Group dispatch: shared hops, per-connection order, cancellable waits."""

from __future__ import annotations

import functools
import threading
import time

import pytest

import trio
import trio.testing

from trio_kv.commands.session import Session
from trio_kv.commands.text import TEXT_COMMANDS
from trio_kv.commands.wire import LINE
from trio_kv.config import Config
from trio_kv.protocol.replies import OK
from trio_kv.protocol.text import NOT_FOUND, Labelled
from trio_kv.server.dispatch import Dispatcher
from trio_kv.store.engine import Job, Store
from trio_kv.store.local_control import LocalControl


def _job(store: Store, client_id: int, *requests: list[bytes]) -> Job:
    session = Session(client_id, store, LocalControl(store), wire=LINE)
    return Job(session, TEXT_COMMANDS, list(requests), time.perf_counter())


async def test_many_connections_share_hops(nursery):
    store = Store(Config())
    dispatcher = Dispatcher(store, workers=1)
    await nursery.start(dispatcher.run)
    jobs = [_job(store, i, [b"SET", b"k%d" % i, b"v"], [b"GET", b"k%d" % i]) for i in range(50)]
    with trio.fail_after(10):
        async with trio.open_nursery() as submitters:
            for job in jobs:
                submitters.start_soon(dispatcher.submit, job)
    for index, job in enumerate(jobs):
        assert job.replies == [OK, Labelled(b"VALUE", b"v")], index
    # 50 jobs submitted in the same scheduling round: far fewer hops than jobs.
    assert dispatcher.statistics()["hops"] <= 3


async def test_waiting_for_a_worker_is_cancellable(nursery):
    store = Store(Config())
    dispatcher = Dispatcher(store, workers=1)
    await nursery.start(dispatcher.run)
    release = threading.Event()
    with trio.fail_after(10):
        async with trio.open_nursery() as inner:
            # Occupy the only worker with internal work that waits for us.
            inner.start_soon(dispatcher.run_sync, functools.partial(release.wait, 10))
            while dispatcher.statistics()["workers_busy"] == 0:
                await trio.sleep(0.001)
            waiting = _job(store, 1, [b"SET", b"never", b"ran"])
            with trio.move_on_after(0.05) as scope:
                await dispatcher.submit(waiting)
            assert scope.cancelled_caught
            assert dispatcher.statistics()["pending"] == 0
            release.set()
        probe = _job(store, 2, [b"GET", b"never"])
        await dispatcher.submit(probe)
        assert probe.replies == [NOT_FOUND]
        assert waiting.replies == []


async def test_internal_work_returns_and_raises(nursery):
    store = Store(Config())
    dispatcher = Dispatcher(store, workers=2)
    await nursery.start(dispatcher.run)
    with trio.fail_after(10):
        assert await dispatcher.run_sync(lambda: 42) == 42
        with pytest.raises(ZeroDivisionError):
            await dispatcher.run_sync(lambda: 1 / 0)


async def test_cancelled_pending_job_is_withdrawn(nursery):
    store = Store(Config())
    dispatcher = Dispatcher(store, workers=1)
    # No runners started: a submitted job can only wait in the pending list.
    with trio.fail_after(10):
        job = _job(store, 1, [b"SET", b"k", b"v"])
        with trio.move_on_after(0.05) as scope:
            await dispatcher.submit(job)
        assert scope.cancelled_caught
        assert dispatcher.statistics()["pending"] == 0
        await nursery.start(dispatcher.run)
        probe = _job(store, 2, [b"GET", b"k"])
        await dispatcher.submit(probe)
        assert probe.replies == [NOT_FOUND]
        assert job.replies == []


async def test_a_held_job_returns_when_its_holder_wakes_it(nursery):
    """submit's hold: called once the reply could go; True keeps the task
    parked until the holder calls the wake it was given (the cluster
    coordinator's wait for its replicas' acks)."""
    store = Store(Config())
    dispatcher = Dispatcher(store, workers=1)
    await nursery.start(dispatcher.run)
    wakes: list = []
    returned = trio.Event()

    def hold(wake) -> bool:
        wakes.append(wake)
        return True

    async def submit(job: Job) -> None:
        await dispatcher.submit(job, hold=hold)
        returned.set()

    job = _job(store, 1, [b"SET", b"k", b"v"])
    with trio.fail_after(10):
        nursery.start_soon(submit, job)
        while not wakes:
            await trio.sleep(0.001)
        assert job.replies == [OK]  # the job ran; its task is still parked
        await trio.testing.wait_all_tasks_blocked()
        assert not returned.is_set()
        wakes[0]()
        await returned.wait()
        wakes[0]()  # a second wake is a no-op
    assert len(wakes) == 1


async def test_a_hold_that_declines_returns_at_once_and_a_held_wait_is_cancellable(nursery):
    store = Store(Config())
    dispatcher = Dispatcher(store, workers=1)
    await nursery.start(dispatcher.run)
    declined = _job(store, 1, [b"SET", b"a", b"1"])
    with trio.fail_after(10):
        await dispatcher.submit(declined, hold=lambda wake: False)
        assert declined.replies == [OK]
        wakes: list = []

        def hold(wake) -> bool:
            wakes.append(wake)
            return True

        held = _job(store, 2, [b"SET", b"b", b"2"])
        with trio.move_on_after(0.2) as scope:
            await dispatcher.submit(held, hold=hold)
        # Nobody woke it: the cancel ended the wait, after the job ran.
        assert scope.cancelled_caught and held.replies == [OK] and len(wakes) == 1
        wakes[0]()  # the holder's late wake finds nobody waiting
        probe = _job(store, 3, [b"GET", b"b"])
        await dispatcher.submit(probe)
        assert probe.replies == [Labelled(b"VALUE", b"2")]
