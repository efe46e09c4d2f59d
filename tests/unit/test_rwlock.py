"""The reader-writer lock: readers share, a writer is alone, a waiting writer
goes before readers that arrive after it, misuse raises. Threads signal each
other with events; every wait has a timeout so a bug fails instead of hanging."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from trio_kv.store.rwlock import ReadWriteLock

TIMEOUT_SECONDS = 5.0


def start(target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def join(*threads: threading.Thread) -> None:
    for thread in threads:
        thread.join(TIMEOUT_SECONDS)
        assert not thread.is_alive(), "thread did not finish: deadlock?"


def wait_until(condition: Callable[[], bool]) -> None:
    """Poll a condition that another thread is about to make true."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.001)


def hold_read(lock: ReadWriteLock, entered: threading.Event, leave: threading.Event) -> Callable[[], None]:
    def run() -> None:
        with lock.read_locked():
            entered.set()
            assert leave.wait(TIMEOUT_SECONDS)

    return run


def test_two_readers_hold_the_lock_at_once() -> None:
    lock = ReadWriteLock()
    first_in, second_in, leave = threading.Event(), threading.Event(), threading.Event()
    first = start(hold_read(lock, first_in, leave))
    assert first_in.wait(TIMEOUT_SECONDS)
    second = start(hold_read(lock, second_in, leave))
    assert second_in.wait(TIMEOUT_SECONDS)  # would block forever if exclusive
    assert lock.statistics()["readers_active"] == 2
    leave.set()
    join(first, second)
    assert lock.statistics() == {"readers_active": 0, "writer_active": False, "writers_waiting": 0, "readers_waiting": 0}


def test_writer_waits_for_readers_and_excludes_everyone() -> None:
    lock = ReadWriteLock()
    reader_in, reader_leave = threading.Event(), threading.Event()
    writer_in, writer_leave = threading.Event(), threading.Event()

    def write() -> None:
        with lock.write_locked():
            writer_in.set()
            assert writer_leave.wait(TIMEOUT_SECONDS)

    reader = start(hold_read(lock, reader_in, reader_leave))
    assert reader_in.wait(TIMEOUT_SECONDS)
    writer = start(write)
    wait_until(lambda: lock.statistics()["writers_waiting"] == 1)
    assert not writer_in.is_set()
    reader_leave.set()
    assert writer_in.wait(TIMEOUT_SECONDS)
    assert lock.statistics()["writer_active"] is True

    # While the writer holds it, another reader and another writer wait.
    late_reader_in, late_writer_in, late_leave = threading.Event(), threading.Event(), threading.Event()
    late_reader = start(hold_read(lock, late_reader_in, late_leave))

    def late_write() -> None:
        with lock.write_locked():
            late_writer_in.set()

    late_writer = start(late_write)
    wait_until(lambda: lock.statistics()["readers_waiting"] == 1 and lock.statistics()["writers_waiting"] == 1)
    assert not late_reader_in.is_set() and not late_writer_in.is_set()
    writer_leave.set()
    # Writers go first: the late writer, then the late reader.
    assert late_writer_in.wait(TIMEOUT_SECONDS)
    assert late_reader_in.wait(TIMEOUT_SECONDS)
    late_leave.set()
    join(reader, writer, late_writer, late_reader)


def test_waiting_writer_goes_before_readers_that_came_after_it() -> None:
    lock = ReadWriteLock()
    order: list[str] = []
    first_in, first_leave = threading.Event(), threading.Event()
    first = start(hold_read(lock, first_in, first_leave))
    assert first_in.wait(TIMEOUT_SECONDS)

    def write() -> None:
        with lock.write_locked():
            order.append("writer")

    def read() -> None:
        with lock.read_locked():
            order.append("reader")

    writer = start(write)
    wait_until(lambda: lock.statistics()["writers_waiting"] == 1)
    late_reader = start(read)  # the lock is only read-held, yet this must wait
    wait_until(lambda: lock.statistics()["readers_waiting"] == 1)
    assert order == []
    first_leave.set()
    join(first, writer, late_reader)
    assert order == ["writer", "reader"]


def test_writer_is_not_starved_by_a_stream_of_readers() -> None:
    lock = ReadWriteLock()
    stop = threading.Event()
    reads = [0, 0, 0, 0]

    def read_forever(index: int) -> Callable[[], None]:
        def run() -> None:
            while not stop.is_set():
                with lock.read_locked():
                    reads[index] += 1
                    # Work outside the GIL: the readers' holds overlap, so
                    # the lock is never free of readers unless new readers
                    # queue behind the waiting writer.
                    time.sleep(0.001)

        return run

    readers = [start(read_forever(i)) for i in range(len(reads))]
    wait_until(lambda: all(reads))
    writer_done = threading.Event()

    def write() -> None:
        with lock.write_locked():
            writer_done.set()

    writer = start(write)
    try:
        assert writer_done.wait(TIMEOUT_SECONDS)
    finally:
        stop.set()
        join(writer, *readers)


def test_release_without_holding_raises() -> None:
    lock = ReadWriteLock()
    with pytest.raises(RuntimeError):
        lock.release_read()
    with pytest.raises(RuntimeError):
        lock.release_write()
    lock.acquire_read()
    with pytest.raises(RuntimeError):
        lock.release_write()  # holds read, not write
    lock.release_read()
    lock.acquire_write()
    with pytest.raises(RuntimeError):
        lock.release_read()  # holds write, not read
    lock.release_write()
    assert lock.statistics()["writer_active"] is False


def test_release_by_another_thread_raises() -> None:
    lock = ReadWriteLock()
    errors: list[RuntimeError] = []

    def release(release: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                release()
            except RuntimeError as exc:
                errors.append(exc)

        return run

    lock.acquire_write()
    join(start(release(lock.release_write)), start(release(lock.release_read)))
    assert len(errors) == 2
    assert lock.statistics()["writer_active"] is True
    lock.release_write()

    lock.acquire_read()
    join(start(release(lock.release_read)))
    assert len(errors) == 3
    assert lock.statistics()["readers_active"] == 1
    lock.release_read()


def test_reentry_raises_instead_of_deadlocking() -> None:
    lock = ReadWriteLock()
    with lock.read_locked():
        with pytest.raises(RuntimeError):
            lock.acquire_read()
        with pytest.raises(RuntimeError):
            lock.acquire_write()  # no upgrade
    with lock.write_locked():
        with pytest.raises(RuntimeError):
            lock.acquire_write()
        with pytest.raises(RuntimeError):
            lock.acquire_read()
    assert lock.statistics()["readers_active"] == 0


def test_context_managers_release_on_exception() -> None:
    lock = ReadWriteLock()
    with pytest.raises(ValueError):
        with lock.write_locked():
            raise ValueError
    with pytest.raises(ValueError):
        with lock.read_locked():
            raise ValueError
    assert lock.statistics() == {"readers_active": 0, "writer_active": False, "writers_waiting": 0, "readers_waiting": 0}
    lock.acquire_write()  # free again
    lock.release_write()
