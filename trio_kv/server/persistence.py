"""When the append-only log is written, fsynced and compacted: the async
side of ``store.durability.persistence``.

* Group commit: a connection whose batch logged writes waits in
  ``LogFlusher.wait_durable`` before its replies are sent. One flush at a
  time runs on a disk thread and covers every record appended until it
  started, so all the connections waiting at that moment share one write()
  and (``appendfsync always``) one fsync.
* Disk IO runs on the disk limiter (``DISK_THREADS``), never the store's, so
  a slow disk cannot starve reads; the store limiter only runs the in-memory
  log switch.
* ``everysec``: a background task fsyncs about once a second. After a failed
  write(), a background task retries the flush every second, so writes
  resume by themselves once the disk has room again.
* Compaction runs as one task at a time, on request (BGREWRITEAOF, BGSAVE,
  SAVE) or when the log outgrew its threshold; clients keep being served.

Test hook: ``KV_TEST_CRASH_AT=<step>`` in the environment (``switched``,
``snapshot-written``, ``snapshot-installed``) makes the process exit at once
at that compaction step, as kill -9 would there.
"""

from __future__ import annotations

import functools
import logging
import os
import time

import trio

from ..store.durability.apply import recover_keyspace
from ..store.durability.persistence import Persistence
from ..store.durability.recovery import DataDir
from ..store.engine import SaveRequest, Store
from .dispatch import Dispatcher

log = logging.getLogger(__name__)

DISK_THREADS = 2
EVERYSEC_INTERVAL_SECONDS = 1.0
WRITE_RETRY_SECONDS = 1.0
CRASH_ENV = "KV_TEST_CRASH_AT"


def crash_hook(step: str) -> None:
    if os.environ.get(CRASH_ENV) == step:
        log.warning("test crash point %s reached: exiting at once", step)
        os._exit(70)


async def recover(store: Store, disk: trio.CapacityLimiter) -> Persistence:
    """Lock the data directory, load the snapshot and replay the logs into
    the store's keyspace (before any client is accepted), then open the log
    for appending. Raises DurabilityError when the files cannot be trusted."""
    config = store.config
    data_dir = DataDir(config.data_dir)
    data_dir.lock()
    started = time.perf_counter()
    report = await trio.to_thread.run_sync(
        functools.partial(
            recover_keyspace, data_dir, store.keyspace, truncate_torn_tail=config.aof_load_truncated
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
    store.keyspace.journal = []
    log.info(
        "loaded %d keys from %s in %.3f s (%d log records; appendfsync %s)",
        report.keys,
        data_dir.path,
        time.perf_counter() - started,
        report.records_replayed,
        config.appendfsync,
    )
    return persistence


class LogFlusher:
    def __init__(
        self, store: Store, persistence: Persistence, dispatcher: Dispatcher, disk: trio.CapacityLimiter
    ) -> None:
        self._store = store
        self._persistence = persistence
        self._dispatcher = dispatcher
        self._disk = disk
        self._flush_lock = trio.Lock()
        self._compaction_wanted = trio.Event()
        # SAVE commands (on worker threads) waiting for the next compaction.
        self._save_waiters: list[SaveRequest] = []

    @property
    def disk_limiter(self) -> trio.CapacityLimiter:
        return self._disk

    async def wait_durable(self, lsn: int) -> None:
        """Return once every record up to ``lsn`` is written (and fsynced under
        ``always``). Raises OSError if the disk refused."""
        persistence = self._persistence
        while persistence.durable_lsn < lsn:
            async with self._flush_lock:
                if persistence.durable_lsn >= lsn:
                    return
                await trio.to_thread.run_sync(persistence.flush, limiter=self._disk)
        if persistence.wants_rewrite():
            self.request_compaction()

    def request_compaction(self, done: SaveRequest | None = None) -> None:
        """Start a compaction soon (call on the event loop); ``done`` is told
        when the next one finishes (SAVE waits on it from a worker thread)."""
        if done is not None:
            self._save_waiters.append(done)
        self._compaction_wanted.set()

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            if self._persistence.fsync_policy == "everysec":
                nursery.start_soon(self._sync_every_second)
            nursery.start_soon(self._retry_failed_writes)
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
            if persistence.write_error is None or persistence.sync_failed is not None:
                continue
            try:
                async with self._flush_lock:
                    await trio.to_thread.run_sync(persistence.flush, limiter=self._disk)
            except OSError:
                pass  # still failing; persistence logged it and keeps refusing

    async def _compactions(self) -> None:
        persistence = self._persistence
        store = self._store
        while True:
            await self._compaction_wanted.wait()
            self._compaction_wanted = trio.Event()
            waiters, self._save_waiters = self._save_waiters, []
            persistence.rewrite_in_progress = True
            ok = False
            try:
                ok = await self._compact(persistence, store)
            finally:
                persistence.rewrite_in_progress = False
                persistence.last_rewrite_ok = ok
                for waiter in waiters:
                    waiter.finish(ok)

    async def _compact(self, persistence: Persistence, store: Store) -> bool:
        if persistence.refusal() is not None:
            log.error("compaction skipped: %s", persistence.refusal())
            return False

        def switch() -> int:
            with store.lock.write_locked():
                return persistence.begin_switch()

        try:
            generation = await self._dispatcher.run_sync(switch)
            async with self._flush_lock:
                # The flush finishes the switch: old log fsynced, new one created.
                await trio.to_thread.run_sync(persistence.flush, limiter=self._disk)
            crash_hook("switched")
            await trio.to_thread.run_sync(
                persistence.write_snapshot, generation, store.keyspace, store.lock, crash_hook, limiter=self._disk
            )
        except OSError as error:
            log.error("compaction failed: %s", error)
            return False
        persistence.rewrites += 1
        return True

    async def close(self) -> None:
        """Shutdown: everything appended is written and fsynced, then closed."""
        started = time.perf_counter()
        async with self._flush_lock:
            await trio.to_thread.run_sync(self._persistence.close, limiter=self._disk)
        log.info("log flushed and fsynced in %.3f s", time.perf_counter() - started)
