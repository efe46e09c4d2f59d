"""The running server's append-only log: what the engine appends to under
the write lock, what the disk threads flush and fsync, and the steps of a
compaction. Synchronous; the async shell (server/log_commit.py) decides
when each step runs and on which limiter.

Positions are *log sequence numbers* (LSN): the count of record bytes
appended since the server started, across log generations, so a reply can
wait for "everything up to LSN n is written" without caring which file its
record went to. A ``_Segment`` says where one log file's bytes sit in LSN
space.

Rules kept here:

* ``log`` runs under the store's write lock and does no IO: the record joins
  the current writer's buffer. So the log's order is the order in which the
  writes were applied.
* ``flush`` (a disk thread) write()s everything buffered and, under
  ``appendfsync always``, fsyncs it; ``durable_lsn`` then says how far a reply
  may be sent. It is computed from the segment the flush wrote (its file
  offsets), never from a count read at another moment, so a log switch
  racing with a flush can never make it claim bytes it did not write. Under
  ``everysec`` and ``no`` a reply still waits for write() (so a process
  crash loses nothing acknowledged); ``sync`` is then called about once a
  second (``everysec``) or never (``no``: the OS decides).
* Disk errors: a failed write() keeps the data buffered (LogWriter) and sets
  ``write_error``: writes are refused (``refusal``) while it is set; the next
  successful flush clears it, so writes resume by themselves. A failed fsync
  (whatever the policy, and of an old log at a switch too) is never
  retried-and-trusted: ``sync_failed`` is set for good and every later write
  is refused until a restart.
* Deleted files: before each flush, and about once a second from the shell
  (``check_files``), the log checks that its file still has a name
  (``fstat`` ``st_nlink``) and that the data directory is still the one it
  opened (same device and inode). If the file or the directory was deleted,
  renamed or replaced, every write it acknowledged from then on would be
  lost on restart, so ``files_lost`` is set and writes are refused
  (``-MISCONF``). Recreating the directory does not lift it (the records
  that were in it are gone), and a restart would start from whatever the
  path then holds. The way back keeps the data: a compaction (BGREWRITEAOF,
  BGSAVE, SAVE) rebuilds the files from memory (``prepare_rebuild``:
  recreate the directory, which must hold no trio_kv files, and take its
  lock; the compaction then writes a new log and a snapshot; then
  ``finish_rebuild`` lifts the refusal). Writes stay refused until the
  snapshot is installed, so snapshot plus new log is the whole state.
* A log switch (compaction step 1) starts under the write lock with no IO:
  ``begin_switch`` puts a writer for ``log.G+1`` in place that buffers in
  memory. The next ``flush`` finishes it: the old log is flushed, fsynced and
  closed, and only then is ``log.G+1`` created and opened. So a torn tail can
  only ever be in the newest log, and the store lock is never held for IO.
  Finishing a switch may fail (ENOSPC) and is retried by the next flush;
  every step of it can run twice.
* ``flush``, finishing a switch, installing a snapshot and closing are
  serialized by one IO lock. The background ``sync`` (everysec) does not
  take it, so a slow fsync never holds up the write() a reply waits for; it
  takes a sync lock that finishing a switch and closing also take, so a
  writer is never closed under a running fsync. The segment pointers are
  swapped under a small lock of their own that is never held across IO.
* Sizes (``current_size``, ``base_size``) count every file recovery would
  read (snapshot and logs), as Redis' ``aof_current_size`` and
  ``aof_base_size`` do, so automatic compaction compares like with like.

Test hook: with ``KV_TEST_SYNCED_LOG=<path>`` in the environment, each
successful fsync of a log, and each log switch, overwrites ``<path>`` with
one line ``<log file path> <synced offset>``: truncating that log to that
offset is what a power cut may leave. Read once, at construction; unset, it
costs nothing.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .data_dir import DataDir
from .records import HEADER_BYTES, encode_record
from .snapshot import keyspace_chunks, write_snapshot
from .writer import LogWriter

log = logging.getLogger(__name__)

FSYNC_POLICIES = ("always", "everysec", "no")
SYNCED_LOG_ENV = "KV_TEST_SYNCED_LOG"


def _identity(path: str) -> tuple[int, int]:
    """(st_dev, st_ino): the same path naming another directory differs."""
    status = os.stat(path)
    return status.st_dev, status.st_ino


@dataclass(frozen=True, slots=True)
class _Segment:
    """One log file being appended to, and where its bytes sit in LSN space."""

    writer: LogWriter
    generation: int
    # The LSN of the byte at file offset ``start`` (where this process began appending).
    base_lsn: int
    start: int

    def lsn_at(self, offset: int) -> int:
        return self.base_lsn + (offset - self.start)


class LogClosed(RuntimeError):
    """A log switch was asked for after ``close`` (a compaction racing shutdown)."""


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
        writer = data_dir.open_log_for_append()
        generation = data_dir.current_generation
        if generation is None:
            raise ValueError("the data directory must be recovered before its log is opened")
        self._segment = _Segment(writer, generation, 0, writer.flushed_offset)
        # (old, new) from begin_switch until a flush has finished the switch.
        self._switch: tuple[_Segment, _Segment] | None = None
        self._segment_lock = threading.Lock()
        self._io_lock = threading.Lock()
        # Taken inside _io_lock when both are needed (see the docstring).
        self._sync_lock = threading.Lock()
        self.appended_lsn = 0
        self.durable_lsn = 0
        # Set while writes must be refused; see the module docstring.
        self.write_error: str | None = None
        self.sync_failed: str | None = None
        self.files_lost: str | None = None
        # Between prepare_rebuild and finish_rebuild: flushes may finish the
        # log switch into the recreated directory (writes are still refused).
        self._rebuilding = False
        # The data directory's (st_dev, st_ino) when the log opened (check_files).
        self._dir_identity = _identity(data_dir.path)
        self.closed = False
        # Bytes of the live files other than the current log (the snapshot,
        # older logs not yet retired): see current_size.
        self._other_bytes = self._live_bytes_besides(generation)
        self.base_size = self.current_size()
        # Records appended since start; the count when the newest snapshot's switch happened.
        self.records = 0
        self._records_at_switch = 0
        self._records_at_save = 0
        self.last_save_time = int(time.time())
        self.last_write_ok = True
        self.last_rewrite_ok = True
        self.rewrites = 0
        self.rewrite_failures_in_row = 0
        self.rewrite_in_progress = False
        self._rewrite_started = 0.0
        self.last_rewrite_seconds = -1
        # What the recovery before this log opened found (set by the shell).
        self.loaded_keys = 0
        self.loaded_expired = 0
        self._synced_log_path = os.environ.get(SYNCED_LOG_ENV) or None
        self._synced_log_lock = threading.Lock()
        if self._synced_log_path is not None:
            self._record_synced(writer.path, writer.synced_offset)

    def _live_bytes_besides(self, generation: int) -> int:
        snapshots, logs = self.data_dir.generations()
        base = snapshots[-1] if snapshots else 0
        paths = [self.data_dir.snapshot_path(base)] if snapshots else []
        paths += [self.data_dir.log_path(g) for g in logs if base <= g < generation]
        return sum(os.path.getsize(path) for path in paths)

    @property
    def writer(self) -> LogWriter:
        """The writer new records go to."""
        return self._segment.writer

    # --- engine side (store write lock held; no IO) ---------------------------

    def refusal(self) -> str | None:
        """Why writes are refused right now, or None."""
        return self.sync_failed or self.files_lost or self.write_error

    def log(self, effects: list[tuple[object, ...]]) -> int:
        """Append one record (one atomic unit); returns the LSN a reply waits for."""
        record = encode_record(effects)
        self._segment.writer.append(record)
        self.appended_lsn += len(record)
        self.records += 1
        return self.appended_lsn

    def begin_switch(self) -> int:
        """Compaction step 1: new appends go to generation G+1 from now on.
        Returns G+1. The file is created by the next ``flush``."""
        if self._switch is not None:
            raise RuntimeError("a log switch is already in progress")
        if self.closed:
            raise LogClosed("the log is closed")
        old = self._segment
        generation = old.generation + 1
        writer = LogWriter(self.data_dir.log_path(generation), expected_size=HEADER_BYTES)
        new = _Segment(writer, generation, self.appended_lsn, HEADER_BYTES)
        with self._segment_lock:
            self._segment = new
            self._switch = (old, new)
        self._records_at_switch = self.records
        return generation

    # --- disk side (a disk worker thread) -------------------------------------

    def _record_synced(self, path: str, offset: int) -> None:
        # Test hook (module docstring): replaced whole, so a kill -9 never leaves half a line.
        synced_log_path = self._synced_log_path
        if synced_log_path is None:
            return
        tmp = synced_log_path + ".tmp"
        with self._synced_log_lock:
            with open(tmp, "w") as file:
                file.write(f"{path} {offset}\n")
            os.replace(tmp, synced_log_path)

    def _sync_segment(self, segment: _Segment) -> None:
        writer = segment.writer
        try:
            offset = writer.sync()
        except OSError as error:
            if self.sync_failed is None:
                self.sync_failed = (
                    f"fsync of {writer.path} failed ({error.strerror or error}); writes refused until a restart"
                )
                log.critical("%s", self.sync_failed)
            raise
        if self._synced_log_path is not None:
            self._record_synced(writer.path, offset)

    def _finish_switch(self, old: _Segment, new: _Segment) -> None:
        old.writer.flush()
        with self._sync_lock:
            self._sync_segment(old)
            if not old.writer.closed:
                old.writer.close()
                self._other_bytes += old.writer.flushed_offset
        if not new.writer.is_open:
            self.data_dir.create_log(new.generation)
            new.writer.open()
        with self._segment_lock:
            self._switch = None
        if self._synced_log_path is not None:
            self._record_synced(new.writer.path, new.writer.synced_offset)

    def check_files(self) -> str | None:
        """Whether the log's file or the data directory was deleted, renamed
        or replaced; sets ``files_lost`` (for good) if so and returns it."""
        with self._io_lock:
            return self._check_files()

    def _check_files(self) -> str | None:
        # Called with _io_lock held, so no switch or close swaps the file
        # descriptor (and its number cannot be reused) under the fstat.
        if self._rebuilding:
            return None
        if self.files_lost is not None:
            return self.files_lost
        writer = self._segment.writer
        path = self.data_dir.path
        problem = None
        if writer.link_count() == 0:
            problem = f"the log file {writer.path} was deleted"
        else:
            try:
                identity = _identity(path)
            except FileNotFoundError:
                problem = f"the data directory {path} was deleted"
            else:
                if identity != self._dir_identity:
                    problem = f"the data directory {path} was replaced"
        if problem is not None:
            self.files_lost = f"{problem}; writes refused until BGREWRITEAOF rebuilds the files from memory"
            self.last_write_ok = False
            log.critical("%s (writes acknowledged from now on would be lost on restart)", self.files_lost)
        return self.files_lost

    def prepare_rebuild(self) -> None:
        """Before a compaction that rebuilds lost files (see the docstring):
        recreate the data directory and take its lock. Raises OSError (or
        DataDirInUse) and changes nothing when it cannot."""
        with self._io_lock:
            if self.files_lost is None or self.sync_failed is not None:
                raise RuntimeError("prepare_rebuild: no lost files to rebuild")
            data_dir = self.data_dir
            os.makedirs(data_dir.path, exist_ok=True)
            snapshots, logs = data_dir.generations()
            # Only this log's own file may be there (left by a rebuild that failed).
            writer = self._segment.writer
            own = [g for g in logs if g == self._segment.generation and _identity(writer.path) == writer.file_identity()]
            if snapshots or len(own) != len(logs):
                raise FileExistsError(
                    errno.EEXIST, f"{data_dir.path} holds other trio_kv files; move them away to rebuild"
                )
            data_dir.unlock()
            data_dir.lock()
            self._rebuilding = True

    def finish_rebuild(self, ok: bool) -> None:
        """After that compaction: lift the refusal if it wrote its snapshot."""
        with self._io_lock:
            if not self._rebuilding:
                return
            self._rebuilding = False
            if not ok:
                return
            self._dir_identity = _identity(self.data_dir.path)
            self.files_lost = None
            self.write_error = None
            self.last_write_ok = True
            log.warning("rebuilt %s from memory (a snapshot and a new log); accepting writes", self.data_dir.path)

    def flush(self, *, check_files: bool = True) -> int:
        """write() everything appended (fsync too under ``always``); returns
        ``durable_lsn``. Raises OSError after recording it (see the docstring).
        ``check_files=False``: skip the check that the files still exist (two
        stat calls), for a caller that flushes after every write and calls
        ``check_files`` about once a second itself (the embedded library)."""
        with self._io_lock:
            with self._segment_lock:
                switch = self._switch
                segment = self._segment
            try:
                lost = self._check_files() if check_files else self.files_lost
                if lost is not None:
                    raise FileNotFoundError(errno.ENOENT, lost)
                if switch is not None:
                    self._finish_switch(*switch)
                segment.writer.flush()
                if self.fsync_policy == "always":
                    self._sync_segment(segment)
            except OSError as error:
                self.last_write_ok = False
                if self.files_lost is not None:
                    raise  # logged once, when noticed
                if self.sync_failed is None:
                    self.write_error = f"{error.strerror or error}"
                log.error("writing %s failed: %s; refusing writes", segment.writer.path, error)
                raise
            writer = segment.writer
            if self.write_error is not None or not self.last_write_ok:
                if self.write_error is not None:
                    log.warning("writing %s works again; accepting writes", writer.path)
                self.write_error = None
                self.last_write_ok = True
            offset = writer.synced_offset if self.fsync_policy == "always" else writer.flushed_offset
            durable = segment.base_lsn + (offset - segment.start)  # segment.lsn_at, inline: every write pays it
            if durable > self.durable_lsn:
                self.durable_lsn = durable
            return self.durable_lsn

    def sync(self) -> None:
        """``everysec``: fsync what has been written (beside flushes, not
        after them: see the docstring)."""
        with self._sync_lock:
            with self._segment_lock:
                switch = self._switch
                segment = self._segment
            if switch is None and not segment.writer.closed:
                self._sync_segment(segment)

    def close(self) -> None:
        """Shutdown: flush, fsync (whatever the policy) and close. The data
        directory stays locked (``data_dir.unlock()``, once no compaction
        can still be writing)."""
        self.closed = True  # no switch starts from now on
        self.flush()
        with self._io_lock, self._sync_lock:
            segment = self._segment
            self._sync_segment(segment)
            segment.writer.close()

    # --- compaction (disk thread; takes the store's read lock per chunk) ------

    def current_size(self) -> int:
        """Bytes recovery would read now: snapshot, older live logs, this log."""
        return self._other_bytes + self._segment.writer.appended_offset

    def changes_since_save(self) -> int:
        """Records appended since the switch of the newest snapshot (or the start)."""
        return self.records - self._records_at_save

    def wants_rewrite(self) -> bool:
        """Redis' auto-aof-rewrite rule: the files grew by ``rewrite_percentage``
        since the last compaction (or the start) and are at least
        ``rewrite_min_bytes``."""
        if self.rewrite_percentage <= 0 or self.rewrite_in_progress:
            return False
        size = self.current_size()
        growth_limit = self.base_size * (100 + self.rewrite_percentage) // 100
        return size >= self.rewrite_min_bytes and size >= growth_limit

    def rewrite_started(self) -> None:
        self.rewrite_in_progress = True
        self._rewrite_started = time.monotonic()

    def rewrite_finished(self, ok: bool) -> None:
        self.rewrite_in_progress = False
        self.last_rewrite_ok = ok
        self.last_rewrite_seconds = int(time.monotonic() - self._rewrite_started)
        if ok:
            self.rewrites += 1
            self.rewrite_failures_in_row = 0
        else:
            self.rewrite_failures_in_row += 1

    def write_snapshot(
        self, generation: int, keyspace, store_lock, crash_hook: Callable[[str], None], versions=None
    ) -> None:
        """Compaction steps 2 and 3: the snapshot of the keyspace (and its
        versions, in cluster mode) as of (at least) the switch, then its
        installation and the old files' retirement."""
        tmp = self.data_dir.snapshot_tmp_path(generation)
        started = time.perf_counter()
        stats = write_snapshot(tmp, keyspace_chunks(keyspace, store_lock, versions=versions), generation)
        crash_hook("snapshot-written")
        with self._io_lock:
            retired = self.data_dir.install_snapshot(tmp, generation)
            self._other_bytes = stats.bytes
        crash_hook("snapshot-installed")
        self.base_size = self.current_size()
        self._records_at_save = self._records_at_switch
        self.last_save_time = int(time.time())
        log.info(
            "compaction to generation %d: %d keys in %.3f s; retired %d file(s)",
            generation,
            stats.keys,
            time.perf_counter() - started,
            len(retired),
        )

    # --- reporting ----------------------------------------------------------------

    def info(self) -> dict[str, int | str]:
        """INFO persistence's fields that the log knows, by Redis' names
        (plus ``appendfsync``). Safe to call from any thread."""
        writer = self._segment.writer
        return {
            "rdb_changes_since_last_save": self.changes_since_save(),
            "rdb_bgsave_in_progress": int(self.rewrite_in_progress),
            "rdb_last_save_time": self.last_save_time,
            "rdb_last_bgsave_status": "ok" if self.last_rewrite_ok else "err",
            "rdb_last_bgsave_time_sec": self.last_rewrite_seconds,
            "rdb_current_bgsave_time_sec": self._current_rewrite_seconds(),
            "rdb_saves": self.rewrites,
            "rdb_last_load_keys_expired": self.loaded_expired,
            "rdb_last_load_keys_loaded": self.loaded_keys,
            "aof_enabled": 1,
            "aof_rewrite_in_progress": int(self.rewrite_in_progress),
            "aof_rewrite_scheduled": 0,
            "aof_last_rewrite_time_sec": self.last_rewrite_seconds,
            "aof_current_rewrite_time_sec": self._current_rewrite_seconds(),
            "aof_last_bgrewrite_status": "ok" if self.last_rewrite_ok else "err",
            "aof_rewrites": self.rewrites,
            "aof_rewrites_consecutive_failures": self.rewrite_failures_in_row,
            "aof_last_write_status": "ok" if self.last_write_ok and self.sync_failed is None else "err",
            "aof_current_size": self.current_size(),
            "aof_base_size": self.base_size,
            "aof_pending_rewrite": 0,
            "aof_buffer_length": writer.pending_bytes,
            "aof_pending_bio_fsync": 0,
            "aof_delayed_fsync": 0,
            "appendfsync": self.fsync_policy,
        }

    def _current_rewrite_seconds(self) -> int:
        return int(time.monotonic() - self._rewrite_started) if self.rewrite_in_progress else -1
