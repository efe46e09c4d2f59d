"""When the append-only log is written, fsynced and compacted: the async
side of ``store.durability.append_log``.

* Group commit: one *commit thread* of its own flushes the log. A store
  worker that appended records ``kick``s it at the end of its hop; the
  thread runs one flush (write(), and fsync under ``appendfsync always``)
  covering every record appended until that flush started, then, if jobs
  wait for it (the dispatcher said so: ``expect_report``), tells the event
  loop once (``on_flushed``), and the dispatcher sends every reply that is
  now durable. So all the connections waiting at that moment share one
  write() and one fsync, and the event loop pays at most one callback per
  flush, not a thread hop per flush or a lock per connection. Kicks that
  arrive before a flush starts share it; kicks during a flush make one
  more. Wakeups cost more than the flush itself (see ``kick``), so there
  are as few as the rules allow: no kick wakes the thread while a flush is
  asked for and not started, a flush nobody waits for (its records were
  written before the event loop saw the hop end) is not reported, and a
  report still queued covers the flushes that end behind it.
* Disk IO never runs on the store's limiter, so a slow disk cannot starve
  reads: the log is flushed by the commit thread, and everything else
  (snapshots, retries, the final flush) runs on the disk limiter
  (``DISK_THREADS``). The log switch (no IO, under the store's write lock)
  runs there too: a SAVE waiting on a store worker for its compaction must
  never need a store worker itself.
* ``everysec``: a background task fsyncs about once a second. After a failed
  write(), a background task retries the flush every second, so writes
  resume by themselves once the disk has room again.
* About once a second (``FILES_CHECK_SECONDS``) a background task asks the
  log whether its file or the data directory was deleted (``rm -rf`` of the
  data directory): then writes are refused, even with no write in flight to
  notice it, until a compaction asked for (BGREWRITEAOF, BGSAVE, SAVE)
  rebuilds the files from memory (store.durability.append_log). It is
  never rebuilt automatically: the directory may have been removed on
  purpose.
* Compaction runs as one task at a time, on request (BGREWRITEAOF, BGSAVE,
  SAVE) or when the files outgrew their threshold; clients keep being
  served. After a failed automatic compaction the next automatic one waits
  (``AUTO_REWRITE_BACKOFF_*``: doubling, capped), so a disk too small for a
  snapshot is not rewritten on every write; requested ones always run.

Test hooks (environment variables; never set them in production):

* ``KV_TEST_CRASH_AT=<step>`` (``switched``, ``snapshot-written``,
  ``snapshot-installed``) makes the process exit at once with status 70 at
  that compaction step, as kill -9 would there.
* ``KV_TEST_SYNCED_LOG=<path>``: after each successful fsync of a log and
  each log switch, ``<path>`` holds one line ``<log file path> <synced
  offset>`` (store.durability.append_log): a power-loss test kills the
  server, truncates that log to that offset, and restarts.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Callable

import trio

from ..store.durability.append_log import LogClosed, Persistence
from ..store.durability.data_dir import DataDirInUse
from ..store.durability.open_log import open_log
from ..store.store import Store

log = logging.getLogger(__name__)

DISK_THREADS = 2
EVERYSEC_INTERVAL_SECONDS = 1.0
WRITE_RETRY_SECONDS = 1.0
FILES_CHECK_SECONDS = 1.0
AUTO_REWRITE_BACKOFF_FIRST_SECONDS = 1.0
AUTO_REWRITE_BACKOFF_MAX_SECONDS = 60.0
CRASH_ENV = "KV_TEST_CRASH_AT"
CRASH_EXIT_STATUS = 70


def crash_hook(step: str) -> None:
    if os.environ.get(CRASH_ENV) == step:
        log.warning("test crash point %s reached: exiting at once", step)
        os._exit(CRASH_EXIT_STATUS)


async def load_and_open_log(store: Store, disk: trio.CapacityLimiter) -> Persistence:
    """Lock the data directory, load the snapshot and replay the logs into
    the store's keyspace (before any client is accepted), then open the log
    for appending (store.durability.open_log, on a disk thread). Raises
    DurabilityError when the files cannot be trusted."""
    config = store.config
    started = time.perf_counter()
    persistence, report = await trio.to_thread.run_sync(open_log, store, limiter=disk)
    log.info(
        "loaded %d keys from %s in %.3f s (%d log records; appendfsync %s)",
        report.keys,
        persistence.data_dir.path,
        time.perf_counter() - started,
        report.records_replayed,
        config.appendfsync,
    )
    return persistence


class SaveRequest:
    """A SAVE waiting (on a worker thread) for the compaction it asked for."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self.ok = False

    def finish(self, ok: bool) -> None:
        self.ok = ok
        self._done.set()

    def wait(self) -> bool:
        self._done.wait()
        return self.ok


class LogFlusher:
    def __init__(
        self,
        store: Store,
        persistence: Persistence,
        disk: trio.CapacityLimiter,
        on_flushed: Callable[[OSError | None], None],
    ) -> None:
        self._store = store
        self._persistence = persistence
        self._disk = disk
        # Called on the event loop after each commit-thread flush, with the
        # OSError it raised or None (the dispatcher wakes the replies).
        self._on_flushed = on_flushed
        # The commit thread: woken by kick() through a pipe (see kick()),
        # stopped by close(). Both ends are opened by run().
        self._wake_read: int | None = None
        self._wake_write: int | None = None
        # Held around a write to the pipe and around closing it: a hop may
        # still kick after close() (the dispatcher outlives the log), and
        # must never write to a closed descriptor or one reused since.
        self._wake_lock = threading.Lock()
        # A flush was asked for that the commit thread has not started yet.
        self._kicked = False
        self._stopping = False
        # A report of a successful flush is queued on the event loop and has
        # not run yet (see _commit_thread).
        self._report_queued = False
        # Jobs wait for a flush (expect_report): report the next one. Reset
        # by each report; with nobody waiting (a hop's records are usually
        # written before the event loop sees the hop end) a flush is not
        # reported, which would wake the event loop for nothing.
        self._report_wanted = False
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        # Serializes the flushes the event loop starts (compaction, retries, close).
        self._flush_lock = trio.Lock()
        self._compaction_wanted = trio.Event()
        # SAVE commands (on worker threads) waiting for the next compaction.
        self._save_waiters: list[SaveRequest] = []
        # No automatic compaction before this time.monotonic() (after failures).
        self._auto_rewrite_after = 0.0
        self._closed = False

    @property
    def durable_lsn(self) -> int:
        return self._persistence.durable_lsn

    def refusal(self) -> str | None:
        return self._persistence.refusal()

    def kick(self) -> None:
        """Ask the commit thread for a flush of everything appended so far
        (any thread; a store worker calls it after appending).

        The wakeup is a byte written to a pipe, not a lock or a Condition:
        ``os.write`` lets go of the GIL around the syscall, so when the
        kernel switches to the woken thread at once (it does on a busy
        machine) the kicker is not left holding the GIL while descheduled.
        Lock.release() wakes the thread with the GIL held, and the profile
        showed 1 ms of GIL per kick spent there.

        No wakeup at all when a flush was asked for and not started yet:
        the thread clears ``_kicked`` just before it starts a flush, so a
        kick that still reads it set appended before that flush starts, and
        the flush covers it. Two kicks that both see it clear both write a
        byte: the second makes at most one extra, empty flush."""
        if self._kicked:
            return
        self._kicked = True
        self._wake_thread()

    def _wake_thread(self) -> None:
        with self._wake_lock:
            if self._wake_write is None:
                return  # closed: close() flushes everything appended
            try:
                os.write(self._wake_write, b"\0")
            except BlockingIOError:
                pass  # the pipe is full of wakeups: the thread wakes anyway

    def _commit_thread(self) -> None:
        persistence = self._persistence
        wake_read = self._wake_read
        token = self._token
        assert token is not None and wake_read is not None
        # durable_lsn as of the last report: a flush that did not move it
        # (an extra wakeup) has nothing to report.
        reported_lsn = persistence.durable_lsn
        while True:
            if self._stopping and not self._kicked:
                return
            os.read(wake_read, 4096)  # every wakeup so far; _kicked says what they want
            if not self._kicked:
                continue  # woken by close(), or an extra wakeup
            self._kicked = False
            error = None
            try:
                durable_lsn = persistence.flush()
            except OSError as raised:
                error = raised  # persistence logged it and refuses writes
            except Exception as bug:
                # Never let the thread die: every later write would wait forever.
                log.exception("flushing the log failed unexpectedly")
                error = OSError(errno.EIO, f"internal error flushing the log ({bug})")
            if error is None:
                if durable_lsn == reported_lsn:
                    continue
                if not self._report_wanted and not self._rewrite_due():
                    continue  # nobody waits (see expect_report)
                reported_lsn = durable_lsn
                if self._report_queued:
                    # The queued report has not run yet and reads
                    # durable_lsn when it runs, after this flush moved it
                    # (it clears the flag first, so a flag still set here
                    # was read before that read): it covers this flush too,
                    # with no second wakeup of the event loop.
                    continue
            self._report_queued = error is None
            try:
                token.run_sync_soon(self._flushed, error)
            except trio.RunFinishedError:
                return

    def expect_report(self) -> None:
        """The dispatcher has jobs waiting for a flush (event loop): report
        the flushes from now on, until the next report. A flush ends by
        moving ``durable_lsn`` and then reading this flag, and the
        dispatcher sets the flag and then reads ``durable_lsn`` again, so a
        flush that went unreported is seen by that read."""
        self._report_wanted = True

    def _rewrite_due(self) -> bool:
        """An automatic compaction is due (the files outgrew their threshold
        and no backoff holds it): a report starts it."""
        return self._persistence.wants_rewrite() and time.monotonic() >= self._auto_rewrite_after

    def _flushed(self, error: OSError | None) -> None:
        if error is None:
            self._report_queued = False  # before on_flushed reads durable_lsn
        self._report_wanted = False  # on_flushed asks again if jobs still wait
        self._on_flushed(error)
        if error is None and self._rewrite_due():
            self.request_compaction()

    def request_compaction(self, done: SaveRequest | None = None) -> None:
        """Start a compaction soon (call on the event loop); ``done`` is told
        when the next one finishes (SAVE waits on it from a worker thread)."""
        if done is not None:
            self._save_waiters.append(done)
        self._compaction_wanted.set()

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)
        self._thread = threading.Thread(target=self._commit_thread, name="trio_kv log commit", daemon=True)
        self._thread.start()
        async with trio.open_nursery() as nursery:
            if self._persistence.fsync_policy == "everysec":
                nursery.start_soon(self._sync_every_second)
            nursery.start_soon(self._retry_failed_writes)
            nursery.start_soon(self._watch_files)
            nursery.start_soon(self._compactions)
            task_status.started()

    async def _sync_every_second(self) -> None:
        persistence = self._persistence
        while True:
            await trio.sleep(EVERYSEC_INTERVAL_SECONDS)
            if persistence.sync_failed is not None:
                continue
            try:
                await trio.to_thread.run_sync(persistence.sync, limiter=self._disk)
            except OSError as error:
                log.error("background fsync failed: %s", error)

    async def _retry_failed_writes(self) -> None:
        persistence = self._persistence
        while True:
            await trio.sleep(WRITE_RETRY_SECONDS)
            if persistence.write_error is None or persistence.sync_failed is not None or persistence.files_lost is not None:
                continue
            try:
                async with self._flush_lock:
                    await trio.to_thread.run_sync(persistence.flush, limiter=self._disk)
            except OSError:
                continue  # still failing; persistence logged it and keeps refusing
            self._on_flushed(None)

    async def _watch_files(self) -> None:
        persistence = self._persistence
        while True:
            await trio.sleep(FILES_CHECK_SECONDS)
            if persistence.closed:
                return
            if persistence.files_lost is not None:
                continue  # noticed already; watched again once rebuilt
            try:
                await trio.to_thread.run_sync(persistence.check_files, limiter=self._disk)
            except OSError as error:
                log.error("checking the data directory failed: %s", error)

    async def _compactions(self) -> None:
        persistence = self._persistence
        store = self._store
        while True:
            await self._compaction_wanted.wait()
            self._compaction_wanted = trio.Event()
            waiters, self._save_waiters = self._save_waiters, []
            if self._closed:
                for waiter in waiters:
                    waiter.finish(False)
                continue
            persistence.rewrite_started()
            ok = False
            try:
                ok = await self._compact(persistence, store)
            finally:
                persistence.rewrite_finished(ok)
                if not ok:
                    failures = persistence.rewrite_failures_in_row
                    backoff = AUTO_REWRITE_BACKOFF_FIRST_SECONDS * 2 ** min(failures - 1, 16)
                    self._auto_rewrite_after = time.monotonic() + min(backoff, AUTO_REWRITE_BACKOFF_MAX_SECONDS)
                for waiter in waiters:
                    waiter.finish(ok)

    async def _compact(self, persistence: Persistence, store: Store) -> bool:
        if persistence.files_lost is not None and persistence.sync_failed is None:
            try:
                await trio.to_thread.run_sync(persistence.prepare_rebuild, limiter=self._disk)
            except (OSError, DataDirInUse) as error:
                log.error("cannot rebuild the lost data files: %s", error)
                return False
            log.warning("rebuilding the lost data files from memory in %s", persistence.data_dir.path)
            ok = False
            try:
                ok = await self._compact_now(persistence, store)
            finally:
                with trio.CancelScope(shield=True):  # a stat under the IO lock: short
                    await trio.to_thread.run_sync(persistence.finish_rebuild, ok, limiter=self._disk)
            return ok
        if persistence.refusal() is not None:
            log.error("compaction skipped: %s", persistence.refusal())
            return False
        return await self._compact_now(persistence, store)

    async def _compact_now(self, persistence: Persistence, store: Store) -> bool:

        def switch() -> int:
            with store.lock.write_locked():
                return persistence.begin_switch()

        try:
            try:
                generation = await trio.to_thread.run_sync(switch, limiter=self._disk)
            except LogClosed:
                log.info("compaction skipped: shutting down")
                return False
            async with self._flush_lock:
                # The flush finishes the switch: old log fsynced, new one created.
                await trio.to_thread.run_sync(persistence.flush, limiter=self._disk)
            self._on_flushed(None)
            crash_hook("switched")
            await trio.to_thread.run_sync(
                persistence.write_snapshot, generation, store.keyspace, store.lock, crash_hook, store.versions,
                limiter=self._disk,
            )
        except OSError as error:
            log.error("compaction failed: %s", error)
            return False
        return True

    async def close(self) -> bool:
        """Shutdown: everything appended is written and fsynced, then closed;
        returns whether that worked. A disk error here is logged, not
        raised: the records it leaves unwritten were never acknowledged."""
        self._closed = True
        started = time.perf_counter()
        if self._thread is not None:
            self._stopping = True
            self._wake_thread()
            await trio.to_thread.run_sync(self._thread.join, limiter=self._disk)
            with self._wake_lock:
                for descriptor in (self._wake_read, self._wake_write):
                    if descriptor is not None:
                        os.close(descriptor)
                self._wake_read = self._wake_write = None
        try:
            async with self._flush_lock:
                await trio.to_thread.run_sync(self._persistence.close, limiter=self._disk)
        except OSError as error:
            log.error("flushing the log at shutdown failed: %s (unwritten records were never acknowledged)", error)
            return False
        log.info("log flushed and fsynced in %.3f s", time.perf_counter() - started)
        return True
