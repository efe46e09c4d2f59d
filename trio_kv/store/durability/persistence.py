"""The running server's append-only log: what the engine appends to under
the write lock, what the disk threads flush and fsync, and the steps of a
compaction. Synchronous; the async shell (server/persistence.py) decides
when each step runs and on which limiter.

Positions are *log sequence numbers* (LSN): the count of record bytes
appended since the server started, across log generations, so a reply can
wait for "everything up to LSN n is written" without caring which file its
record went to.

Rules kept here:

* ``log`` runs under the store's write lock and does no IO: the record joins
  the current writer's buffer. So the log's order is the order in which the
  writes were applied.
* ``flush`` (a disk thread) write()s everything buffered and, under
  ``appendfsync always``, fsyncs it; ``durable_lsn`` then says how far a reply
  may be sent. Under ``everysec`` and ``no`` a reply still waits for write()
  (so a process crash loses nothing acknowledged); ``sync`` is then called
  about once a second (``everysec``) or never (``no``: the OS decides).
* Disk errors: a failed write() keeps the data buffered (LogWriter) and sets
  ``write_error``: writes are refused (``refusal``) while it is set; the next
  successful flush clears it, so writes resume by themselves. A failed fsync
  is never retried-and-trusted: ``sync_failed`` is set for good and every
  later write is refused until a restart.
* A log switch (compaction step 1) starts under the write lock with no IO:
  ``begin_switch`` puts a writer for ``log.G+1`` in place that buffers in
  memory. The next ``flush`` finishes it: the old log is flushed, fsynced and
  closed, and only then is ``log.G+1`` created and opened. So a torn tail can
  only ever be in the newest log, and the store lock is never held for IO.
* ``flush``, ``sync``, finishing a switch, installing a snapshot and closing
  are serialized by one IO lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from .recovery import DataDir
from .records import HEADER_BYTES, encode_record
from .snapshot import keyspace_chunks, write_snapshot
from .writer import LogWriter

log = logging.getLogger(__name__)

FSYNC_POLICIES = ("always", "everysec", "no")


class Persistence:
    def __init__(
        self,
        data_dir: DataDir,
        fsync_policy: str,
        *,
        rewrite_min_bytes: int,
        rewrite_percentage: int,
    ) -> None:
        if fsync_policy not in FSYNC_POLICIES:
            raise ValueError(f"appendfsync must be one of {FSYNC_POLICIES}, got {fsync_policy!r}")
        self.data_dir = data_dir
        self.fsync_policy = fsync_policy
        self.rewrite_min_bytes = rewrite_min_bytes
        self.rewrite_percentage = rewrite_percentage
        self.writer = data_dir.open_log_for_append()
        # LSN of the first byte after the current writer's start offset.
        self._writer_base_lsn = 0
        self._writer_start = self.writer.flushed_offset
        self._old_writer: LogWriter | None = None
        self.appended_lsn = 0
        self.durable_lsn = 0
        self._io_lock = threading.Lock()
        # Set while writes must be refused; see the module docstring.
        self.write_error: str | None = None
        self.sync_failed: str | None = None
        # The log's size right after the last compaction (auto-rewrite base).
        self.base_size = self.writer.flushed_offset
        self.last_save_time = int(time.time())
        self.last_rewrite_ok = True
        self.last_write_ok = True
        self.rewrites = 0
        self.rewrite_in_progress = False

    # --- engine side (store write lock held; no IO) ---------------------------

    def refusal(self) -> str | None:
        """Why writes are refused right now, or None."""
        return self.sync_failed or self.write_error

    def log(self, effects: list[tuple[object, ...]]) -> int:
        """Append one record (one atomic unit); returns the LSN a reply waits for."""
        record = encode_record(effects)
        self.writer.append(record)
        self.appended_lsn += len(record)
        return self.appended_lsn

    def begin_switch(self) -> int:
        """Compaction step 1: new appends go to generation G+1 from now on.
        Returns G+1. The file is created by the next ``flush``."""
        if self._old_writer is not None:
            raise RuntimeError("a log switch is already in progress")
        generation = self.data_dir.current_generation + 1
        self._old_writer = self.writer
        self.writer = LogWriter(self.data_dir.log_path(generation), expected_size=HEADER_BYTES)
        self._writer_base_lsn = self.appended_lsn
        self._writer_start = HEADER_BYTES
        self._pending_generation = generation
        return generation

    # --- disk side (a disk worker thread) -------------------------------------

    def _finish_switch(self) -> None:
        old = self._old_writer
        old.flush()
        old.sync()
        old.close()
        self.data_dir.create_log(self._pending_generation)
        self.writer.open()
        self._old_writer = None

    def flush(self) -> int:
        """write() everything appended (fsync too under ``always``); returns
        ``durable_lsn``. Raises OSError after recording it (see the docstring)."""
        with self._io_lock:
            try:
                if self._old_writer is not None:
                    self._finish_switch()
                writer = self.writer
                # Read before flushing: records appended meanwhile are not covered.
                appended = self.appended_lsn
                writer.flush()
                if self.fsync_policy == "always":
                    self._sync_locked()
            except OSError as error:
                self.last_write_ok = False
                if self.sync_failed is None:
                    self.write_error = f"{error.strerror or error}"
                log.error("writing %s failed: %s; refusing writes", self.writer.path, error)
                raise
            if self.write_error is not None:
                log.warning("writing %s works again; accepting writes", writer.path)
            self.write_error = None
            self.last_write_ok = True
            covered = self._writer_base_lsn + (writer.flushed_offset - self._writer_start)
            if self.fsync_policy == "always":
                covered = self._writer_base_lsn + (writer.synced_offset - self._writer_start)
            self.durable_lsn = max(self.durable_lsn, min(covered, appended))
            return self.durable_lsn

    def _sync_locked(self) -> None:
        try:
            self.writer.sync()
        except OSError as error:
            if self.sync_failed is None:
                self.sync_failed = f"fsync of {self.writer.path} failed ({error.strerror or error}); restart required"
                log.critical("%s", self.sync_failed)
            raise

    def sync(self) -> None:
        """``everysec``: fsync what has been written."""
        with self._io_lock:
            if self._old_writer is None:
                self._sync_locked()

    def close(self) -> None:
        """Shutdown: flush, fsync (whatever the policy) and close."""
        self.flush()
        with self._io_lock:
            self._sync_locked()
            self.writer.close()

    # --- compaction (disk thread; takes the store's read lock per chunk) ------

    def current_size(self) -> int:
        return self.writer.appended_offset

    def wants_rewrite(self) -> bool:
        """Redis' auto-aof-rewrite rule: the log grew by ``rewrite_percentage``
        since the last compaction and is at least ``rewrite_min_bytes``."""
        if self.rewrite_percentage <= 0 or self.rewrite_in_progress:
            return False
        size = self.current_size()
        growth_limit = self.base_size * (100 + self.rewrite_percentage) // 100
        return size >= self.rewrite_min_bytes and size >= growth_limit

    def write_snapshot(self, generation: int, keyspace, store_lock, crash_hook: Callable[[str], None]) -> None:
        """Compaction steps 2 and 3: the snapshot of the keyspace as of (at
        least) the switch, then its installation and the old files' retirement."""
        tmp = self.data_dir.snapshot_tmp_path(generation)
        started = time.perf_counter()
        stats = write_snapshot(tmp, keyspace_chunks(keyspace, store_lock), generation)
        crash_hook("snapshot-written")
        with self._io_lock:
            retired = self.data_dir.install_snapshot(tmp, generation)
        crash_hook("snapshot-installed")
        self.base_size = self.current_size()
        self.last_save_time = int(time.time())
        log.info(
            "compaction to generation %d: %d keys in %.3f s; retired %d file(s)",
            generation,
            stats.keys,
            time.perf_counter() - started,
            len(retired),
        )
