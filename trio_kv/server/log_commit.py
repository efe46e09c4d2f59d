"""When the append-only log is written, fsynced and compacted: the async
side of ``store.durability.append_log``.

* Group commit: one *commit thread* of its own flushes the log. A store
  worker that appended records ``kick``s it at the end of its hop; the
  thread runs one flush (write(), and fsync under ``appendfsync always``)
  covering every record appended until that flush started, then tells the
  event loop once (``on_flushed``), and the dispatcher sends every reply
  that is now durable. So all the connections waiting at that moment share
  one write() and one fsync, and the event loop pays one callback per
  flush, not a thread hop per flush or a lock per connection. Kicks that
  arrive during a flush make one more flush.
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
import functools
import logging
import os
import threading
import time
from collections.abc import Callable

import trio

from ..store.durability.apply import load_keyspace
from ..store.durability.append_log import LogClosed, Persistence
from ..store.durability.data_dir import DataDir, DataDirInUse
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
    for appending. Raises DurabilityError when the files cannot be trusted."""
    config = store.config
    data_dir = DataDir(config.data_dir)
    data_dir.lock()
    started = time.perf_counter()
    try:
        report = await trio.to_thread.run_sync(
            functools.partial(
                load_keyspace, data_dir, store.keyspace, truncate_torn_tail=config.aof_load_truncated,
                versions=store.versions,
            ),
            limiter=disk,
        )
        persistence = await trio.to_thread.run_sync(
            functools.partial(
                Persistence,
                data_dir,
                config.appendfsync,
                rewrite_min_bytes=config.aof_rewrite_min_size_bytes,
                rewrite_percentage=config.aof_rewrite_percentage,
            ),
            limiter=disk,
        )
    except BaseException:
        data_dir.unlock()  # a server that did not start holds nothing
        raise
    persistence.loaded_keys = report.keys
    persistence.loaded_expired = report.expired_dropped
    # The log takes every write from now on: one record per write command.
    store.keyspace.effects.subscribe(persistence.log)
    log.info(
        "loaded %d keys from %s in %.3f s (%d log records; appendfsync %s)",
        report.keys,
        data_dir.path,
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
        # The commit thread: woken by kick(), stopped by close().
        self._kick_condition = threading.Condition(threading.Lock())
        self._kicked = False
        self._stopping = False
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
        (any thread; a store worker calls it after appending)."""
        with self._kick_condition:
            self._kicked = True
            self._kick_condition.notify()

    def _commit_thread(self) -> None:
        persistence = self._persistence
        condition = self._kick_condition
        while True:
            with condition:
                while not self._kicked and not self._stopping:
                    condition.wait()
                if not self._kicked:
                    return
                self._kicked = False
            error = None
            try:
                persistence.flush()
            except OSError as raised:
                error = raised  # persistence logged it and refuses writes
            except Exception as bug:
                # Never let the thread die: every later write would wait forever.
                log.exception("flushing the log failed unexpectedly")
                error = OSError(errno.EIO, f"internal error flushing the log ({bug})")
            try:
                self._token.run_sync_soon(self._flushed, error)
            except trio.RunFinishedError:
                return

    def _flushed(self, error: OSError | None) -> None:
        self._on_flushed(error)
        persistence = self._persistence
        if error is None and persistence.wants_rewrite() and time.monotonic() >= self._auto_rewrite_after:
            self.request_compaction()

    def request_compaction(self, done: SaveRequest | None = None) -> None:
        """Start a compaction soon (call on the event loop); ``done`` is told
        when the next one finishes (SAVE waits on it from a worker thread)."""
        if done is not None:
            self._save_waiters.append(done)
        self._compaction_wanted.set()

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        self._token = trio.lowlevel.current_trio_token()
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
            with self._kick_condition:
                self._stopping = True
                self._kick_condition.notify()
            await trio.to_thread.run_sync(self._thread.join, limiter=self._disk)
        try:
            async with self._flush_lock:
                await trio.to_thread.run_sync(self._persistence.close, limiter=self._disk)
        except OSError as error:
            log.error("flushing the log at shutdown failed: %s (unwritten records were never acknowledged)", error)
            return False
        log.info("log flushed and fsynced in %.3f s", time.perf_counter() - started)
        return True
