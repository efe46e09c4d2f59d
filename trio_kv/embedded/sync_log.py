"""The sync shell's durability: the server's append-only log, driven from
the caller's thread instead of a commit thread and timers.

What the server does with threads and tasks (server/log_commit.py), the
sync library does inline, at the end of the write that needs it:

* Every write that logged a record returns only after its record is
  written (write()) and, under ``appendfsync always``, fsynced: the same
  promise as the server's reply (``wait_durable``). Several threads writing
  at once share flushes: a record another thread's flush already covered
  is not flushed again.
* Why a write() per put under ``everysec`` and ``no`` too (about 1 us of
  the 4-5 us a logged put costs): Redis write()s the log before it replies
  under every policy, so a crash of the program (kill -9, a segfault, an
  OOM kill) loses nothing acknowledged and only a power loss can lose the
  last second. Records buffered in the process for a millisecond would
  lose what returned in that millisecond on a crash: a weaker promise than
  Redis', for about a fifth of a put's cost. A program that writes many
  keys at once uses ``batch`` (one record, one write() for all of them).
* ``everysec``: the first write at least a second after the last fsync
  fsyncs; under every policy it also checks that the files still exist
  (the server's once-a-second check). There is no timer: writes of the
  last second before the program goes idle wait for the next write,
  ``flush()`` or ``close()`` (which fsync whatever the policy) to be
  fsynced. They are written already, so only a power loss (not a crash of
  the program) can lose them, as under the server's ``everysec``.
* Compaction (the files outgrew ``aof_rewrite_*``): checked every
  ``COMPACTION_CHECK_WRITES`` writes, and run on a thread of its own (the
  only thread the sync library ever starts: a snapshot of the whole
  keyspace must not stall the caller), one at a time, joined at close.
  ``compact()`` runs one on the caller's thread.
* A failed write() or fsync raises ``LogRefused`` in the writer whose
  record it was (applied in memory, not durable), and the log refuses
  writes until the disk works again (write errors: the next flush retries;
  a failed fsync: until reopened), as in the server.
"""

from __future__ import annotations

import logging
import threading
import time

from ..store.direct import LogRefused
from ..store.durability.append_log import LogClosed, Persistence
from ..store.store import Store

log = logging.getLogger(__name__)

_monotonic = time.monotonic

EVERYSEC_INTERVAL_SECONDS = 1.0
COMPACTION_CHECK_WRITES = 1024


def _no_crash_point(step: str) -> None:
    """The server's test crash points (server/log_commit.py) do not exist here."""


class SyncLog:
    """The log of one open sync store (see the module docstring)."""

    def __init__(self, store: Store, persistence: Persistence) -> None:
        self._store = store
        self.persistence = persistence
        self._everysec = persistence.fsync_policy == "everysec"
        # time.monotonic() of the next everysec fsync and files check.
        self._next_sync_s = time.monotonic() + EVERYSEC_INTERVAL_SECONDS
        self._writes = 0
        self._compaction: threading.Thread | None = None
        self._compaction_lock = threading.Lock()

    def wait_durable(self, lsn: int) -> None:
        """Return once the record ending at ``lsn`` is as durable as the fsync
        policy promises (0: nothing was logged)."""
        persistence = self.persistence
        if lsn and persistence.durable_lsn < lsn:
            try:
                persistence.flush(check_files=False)
            except OSError as error:
                raise LogRefused(f"write not durable: {error.strerror or error}") from error
        writes = self._writes = self._writes + 1
        if not writes % COMPACTION_CHECK_WRITES and persistence.wants_rewrite():
            self._start_compaction()
        now = _monotonic()
        if now >= self._next_sync_s:
            self._next_sync_s = now + EVERYSEC_INTERVAL_SECONDS
            self._once_a_second()

    def _once_a_second(self) -> None:
        persistence = self.persistence
        persistence.check_files()
        if self._everysec and persistence.sync_failed is None:
            try:
                persistence.sync()
            except OSError as error:
                # Later writes are refused (sync_failed); this one was written.
                log.error("fsync of the log failed: %s", error)

    def flush(self) -> None:
        """Everything written and fsynced, whatever the policy."""
        persistence = self.persistence
        try:
            persistence.flush()
            persistence.sync()
        except OSError as error:
            raise LogRefused(f"flush failed: {error.strerror or error}") from error

    def compact(self) -> bool:
        """Compact now, on this thread (after any compaction running); whether it worked."""
        self._join_compaction()
        with self._compaction_lock:
            return self._compact()

    def _start_compaction(self) -> None:
        with self._compaction_lock:
            if self._compaction is not None and self._compaction.is_alive():
                return
            self._compaction = threading.Thread(target=self._compact_locked, name="trio_kv compaction")
            self._compaction.start()

    def _compact_locked(self) -> None:
        with self._compaction_lock:
            self._compact()

    def _join_compaction(self) -> None:
        thread = self._compaction
        if thread is not None:
            thread.join()

    def _compact(self) -> bool:
        """The server's compaction steps (``LogFlusher._compact_now``):
        switch logs under the write lock, flush (the old log fsynced, the new
        one created), write and install the snapshot."""
        persistence, store = self.persistence, self._store
        if persistence.refusal() is not None:
            log.error("compaction skipped: %s", persistence.refusal())
            return False
        persistence.rewrite_started()
        ok = False
        try:
            with store.lock.write_locked():
                generation = persistence.begin_switch()
            persistence.flush()
            persistence.write_snapshot(generation, store.keyspace, store.lock, _no_crash_point, store.versions)
            ok = True
        except LogClosed:
            log.info("compaction skipped: closing")
        except OSError as error:
            log.error("compaction failed: %s", error)
        finally:
            persistence.rewrite_finished(ok)
        return ok

    def close(self) -> None:
        """Wait for a running compaction, then flush, fsync and close the log
        and unlock the data directory."""
        self._join_compaction()
        persistence = self.persistence
        try:
            persistence.close()
        except OSError as error:
            raise LogRefused(f"closing the log failed: {error.strerror or error}") from error
        finally:
            persistence.data_dir.unlock()
