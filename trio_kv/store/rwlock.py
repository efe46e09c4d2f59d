"""A reader-writer lock for the store's worker threads.

Rules kept here:

* Many readers hold the lock at once; a writer holds it alone.
* Writers are not starved: once a writer waits, new readers wait behind it
  (readers already inside finish first). The price is that a steady stream
  of writers delays readers; trio_kv's writes are short batches.
* Not reentrant, and a lock is released by the thread that took it. Taking
  the lock again in a thread that holds it (read or write, including a read
  to write upgrade) raises RuntimeError instead of deadlocking; so does
  releasing what the calling thread does not hold.
* No timeouts: callers hold the lock only for a batch of store operations,
  never across IO or an ``await``.
"""

from __future__ import annotations

import threading
from types import TracebackType

_get_ident = threading.get_ident


class ReadWriteLock:
    def __init__(self) -> None:
        # Guards every field below; each kind of waiter has its condition so
        # a release wakes only threads that can proceed.
        self._mutex = threading.Lock()
        self._readers_may_enter = threading.Condition(self._mutex)
        self._writer_may_enter = threading.Condition(self._mutex)
        # Idents of the threads holding the lock for reading.
        self._readers: set[int] = set()
        # Ident of the thread holding the lock for writing, or None.
        self._writer: int | None = None
        # Writers blocked in acquire_write; new readers queue behind them.
        self._writers_waiting = 0
        # Readers blocked in acquire_read (Condition.notify costs a few
        # microseconds even with nobody waiting, so it is skipped then).
        self._readers_waiting = 0
        # One reusable, stateless context manager of each kind: no
        # allocation per batch.
        self._read_locked = _ReadLocked(self)
        self._write_locked = _WriteLocked(self)

    def acquire_read(self) -> None:
        me = _get_ident()
        with self._mutex:
            readers = self._readers
            if self._writer is None and not self._writers_waiting:
                # Nobody writes or waits to (the usual case): enter.
                if me in readers:
                    raise RuntimeError("ReadWriteLock is not reentrant")
                readers.add(me)
                return
            if me in readers or me == self._writer:
                raise RuntimeError("ReadWriteLock is not reentrant")
            if self._writer is not None or self._writers_waiting:
                self._readers_waiting += 1
                try:
                    while self._writer is not None or self._writers_waiting:
                        self._readers_may_enter.wait()
                finally:
                    self._readers_waiting -= 1
            self._readers.add(me)

    def release_read(self) -> None:
        with self._mutex:
            readers = self._readers
            try:
                readers.remove(_get_ident())
            except KeyError:
                raise RuntimeError("release_read() by a thread that does not hold the read lock") from None
            if not readers and (self._writers_waiting or self._readers_waiting):
                self._wake_waiters()

    def acquire_write(self) -> None:
        me = _get_ident()
        with self._mutex:
            if self._writer is None and not self._readers:
                # Free (the usual case): take it. A writer that was woken
                # and has not run yet finds it taken and waits again, as it
                # would behind a writer that came a moment earlier.
                self._writer = me
                return
            if me in self._readers or me == self._writer:
                raise RuntimeError("ReadWriteLock is not reentrant (a read lock cannot be upgraded)")
            self._writers_waiting += 1
            try:
                while self._writer is not None or self._readers:
                    self._writer_may_enter.wait()
                self._writer = me
            finally:
                self._writers_waiting -= 1
                if self._writer != me:
                    # Leaving by an exception, maybe with a wake-up meant for
                    # us: pass it on.
                    self._wake_waiters()

    def release_write(self) -> None:
        with self._mutex:
            if self._writer != _get_ident():
                raise RuntimeError("release_write() by a thread that does not hold the write lock")
            self._writer = None
            if self._writers_waiting or self._readers_waiting:
                self._wake_waiters()

    def _wake_waiters(self) -> None:
        """Called with the mutex held after the lock may have become free."""
        if self._writer is not None:
            return
        if self._writers_waiting:
            if not self._readers:
                self._writer_may_enter.notify()
        elif self._readers_waiting:
            self._readers_may_enter.notify_all()

    def read_locked(self) -> _ReadLocked:
        """``with lock.read_locked():`` holds the read lock for the block."""
        return self._read_locked

    def write_locked(self) -> _WriteLocked:
        """``with lock.write_locked():`` holds the write lock for the block."""
        return self._write_locked

    def statistics(self) -> dict[str, int | bool]:
        with self._mutex:
            return {
                "readers_active": len(self._readers),
                "writer_active": self._writer is not None,
                "writers_waiting": self._writers_waiting,
                "readers_waiting": self._readers_waiting,
            }


class _ReadLocked:
    __slots__ = ("_lock",)

    def __init__(self, lock: ReadWriteLock) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        self._lock.acquire_read()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._lock.release_read()


class _WriteLocked:
    __slots__ = ("_lock",)

    def __init__(self, lock: ReadWriteLock) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        self._lock.acquire_write()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._lock.release_write()
