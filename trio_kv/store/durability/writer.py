"""Appending records to a log file: an in-memory buffer, write(), fsync.

The engine calls ``append`` under the store's write lock (no IO: the record
joins a buffer and the call returns the offset the record ends at); a disk
thread calls ``flush`` (write() everything buffered) and ``sync`` (fdatasync).
A write is durable once ``synced_offset`` has reached the offset its
``append`` returned; group commit is one ``flush`` and one ``sync`` for every
record appended since the last one.

Rules kept here:

* Thread-safe: ``append`` may race with ``flush`` and ``sync`` from other
  threads. A small lock guards the buffer only; ``flush`` swaps the buffer
  out and writes outside that lock, so appends never wait for the disk.
  Flushes are serialized with each other (the file's order is the append
  order), syncs with each other; a sync never waits for a flush.
* Never drop data: when write() fails (ENOSPC, EIO...), whatever was not
  written goes back to the front of the buffer, and the error propagates.
  The next ``flush`` retries it, so the file stays the exact concatenation of
  the appended records.
* An fsync failure is never retried-and-trusted: after the kernel reported a
  failed writeback, a later successful fsync does not prove the earlier data
  reached the disk. So the first failure is sticky: ``sync`` raises
  ``SyncFailed`` from then on and ``synced_offset`` never moves again; the
  way back is a new log (and a snapshot).
* The file is opened with O_APPEND and already holds its header; what it
  holds when opened counts as synced (DataDir creates and truncates files
  with an fsync).
* ``synced_offset`` is also the test hook for power loss: truncating the
  file to it is what a power cut may leave.
"""

from __future__ import annotations

import errno
import os
import threading

# fdatasync skips metadata that reading the data back does not need; not
# every platform has it.
_datasync = getattr(os, "fdatasync", os.fsync)


class SyncFailed(OSError):
    """An earlier fsync of this log failed; its durability is unknown."""


class LogWriter:
    def __init__(self, path: str | os.PathLike[str], *, expected_size: int | None = None) -> None:
        """Open ``path`` for appending. With ``expected_size`` the file need
        not exist yet: appends are buffered from that offset on, and ``open``
        must be called (once the file exists, holding exactly that many
        bytes) before the first ``flush``. This lets a log switch start under
        the store's write lock with no IO (see durability.append_log)."""
        self.path = os.fspath(path)
        if expected_size is None:
            self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
            size = os.fstat(self._fd).st_size
        else:
            self._fd = None
            size = expected_size
        # End offsets: of what was appended, written to the kernel, fsynced.
        self._appended_offset = size
        self.flushed_offset = size
        self.synced_offset = size
        # Records appended and not yet written, in order.
        self._pending: list[bytes] = []
        self._pending_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._sync_lock = threading.Lock()
        # The first fsync error, kept: see the module docstring.
        self.sync_error: OSError | None = None
        self.closed = False

    @property
    def appended_offset(self) -> int:
        return self._appended_offset

    @property
    def pending_bytes(self) -> int:
        return self._appended_offset - self.flushed_offset

    def open(self) -> None:
        """Open the file a writer made with ``expected_size`` appends to."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already open")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        size = os.fstat(fd).st_size
        if size != self.synced_offset:
            os.close(fd)
            raise RuntimeError(f"{self.path} holds {size} bytes, expected {self.synced_offset}")
        self._fd = fd

    @property
    def is_open(self) -> bool:
        return self._fd is not None

    def link_count(self) -> int | None:
        """Names the open file still has (0: it was deleted, and whatever is
        written to it now is lost at close); None when it is not open."""
        fd = self._fd
        return None if fd is None else os.fstat(fd).st_nlink

    def file_identity(self) -> tuple[int, int] | None:
        """(st_dev, st_ino) of the open file; None when it is not open."""
        fd = self._fd
        if fd is None:
            return None
        status = os.fstat(fd)
        return status.st_dev, status.st_ino

    def append(self, record: bytes) -> int:
        """Buffer one framed record; returns the file offset it ends at."""
        with self._pending_lock:
            self._pending.append(record)
            self._appended_offset += len(record)
            return self._appended_offset

    def flush(self) -> int:
        """write() everything buffered; returns ``flushed_offset``. On an
        OSError the unwritten bytes stay buffered and the error propagates."""
        with self._flush_lock:
            with self._pending_lock:
                pending = self._pending
                if not pending:
                    return self.flushed_offset
                if self._fd is None:
                    raise RuntimeError(f"{self.path} is not open yet")
                self._pending = []
            data = pending[0] if len(pending) == 1 else b"".join(pending)
            fd = self._fd
            try:
                # One write() nearly always takes it all (a regular file):
                # no memoryview for the usual case.
                written = os.write(fd, data)
            except OSError:
                with self._pending_lock:
                    self._pending.insert(0, data)
                raise
            self.flushed_offset += written
            if written < len(data):
                self._write_rest(fd, data, written)
            return self.flushed_offset

    def _write_rest(self, fd: int, data: bytes, written: int) -> None:
        """The rest of a short write(), from ``written`` on (flush lock held)."""
        view = memoryview(data)
        try:
            while written < len(data):
                count = os.write(fd, view[written:])
                if count == 0:
                    raise OSError(errno.EIO, f"write to {self.path} wrote nothing")
                written += count
                self.flushed_offset += count
        except OSError:
            with self._pending_lock:
                self._pending.insert(0, bytes(view[written:]))
            raise
        finally:
            view.release()

    def sync(self) -> int:
        """fdatasync what has been flushed; returns ``synced_offset``."""
        with self._sync_lock:
            if self.sync_error is not None:
                raise SyncFailed(self.sync_error.errno, f"an earlier fsync of {self.path} failed: {self.sync_error}")
            # Only bytes written before the fsync starts are covered by it.
            offset = self.flushed_offset
            if self._fd is None:
                return self.synced_offset  # nothing can have been written yet
            try:
                _datasync(self._fd)
            except OSError as error:
                self.sync_error = error
                raise
            if offset > self.synced_offset:
                self.synced_offset = offset
            return self.synced_offset

    def close(self) -> None:
        """Flush what is buffered, then close (no fsync: call ``sync`` first
        when it matters). If the flush fails the file stays open."""
        if self.closed:
            return
        self.flush()
        self.closed = True
        if self._fd is not None:
            fd, self._fd = self._fd, None
            # A later sync() finds no descriptor and returns, rather than
            # fsyncing whatever file reused the number.
            os.close(fd)
