"""The data directory: which files exist, recovery at start, and the file
steps of a log switch and a compaction.

Files (G, g: generation numbers, from 1):

* ``snapshot.G``: the whole state when generation G began (fuzzily, see
  snapshot.py). None exists before the first compaction.
* ``log.g``: the effects appended since generation g began.
* ``*.tmp``: a file being created; never read, deleted at start.

Recovery loads the newest ``snapshot.G`` (or starts empty when there is
none) and replays ``log.G``, ``log.G+1``, ... in order.

Compaction, and why a crash at any step recovers the old or the new state:

1. ``switch_log``: the current log is flushed and fsynced, then ``log.G+1``
   is created (header, fsync, rename from a temporary name, directory
   fsync); new appends go there (the engine does this under the write lock).
   A crash now: snapshot.G + log.G + log.G+1 is still the whole history.
2. The snapshot is written to ``snapshot.G+1.tmp`` and fsynced (deleted as
   a temporary file if the process dies meanwhile).
3. ``install_snapshot``: rename to ``snapshot.G+1``, directory fsync; from
   here recovery uses snapshot.G+1 + log.G+1. Then ``snapshot.G`` and
   ``log.g`` (g <= G) are deleted; leftovers of a crash in the middle are
   deleted by the next recovery.

Rules kept here:

* Never guess: a torn tail is tolerated only in the newest log (truncated
  with a WARNING naming the file and offset, or refused); anything else
  (damage inside a file, a torn older log, a damaged snapshot, a missing
  generation) raises and the server must not start.
* Old files are retired only once a newer snapshot is safely in place and
  (at start) only after everything loaded.
* Every creation, rename, truncation and deletion is followed by the fsync
  (file and directory) that makes it survive a power loss.
* New records are never appended to a log of an older format version (a
  log written by an older build): recovery then starts ``log.G+1`` in the
  current version, so a file never holds effects its header's version does
  not know (records.py, "Versions").
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .reader import CorruptLog, DurabilityError, RecordReader
from .records import FORMAT_VERSION, HEADER_BYTES, KIND_LOG, Effect, RecordFormatError, decode_record, encode_header
from .snapshot import load_snapshot
from .writer import LogWriter

log = logging.getLogger(__name__)

LOG_PREFIX = "log."
SNAPSHOT_PREFIX = "snapshot."
TMP_SUFFIX = ".tmp"
LOCK_NAME = "LOCK"
FIRST_GENERATION = 1
# A log or snapshot file name: kind (as records.KIND_*), generation.
FILE_NAME = re.compile(r"(log|snapshot)\.([0-9]+)")


class InconsistentDataDir(DurabilityError):
    """The set of files cannot be a state this code left (a missing generation)."""


class DataDirInUse(DurabilityError):
    """Another process holds the data directory's lock."""


class TornTailRefused(DurabilityError):
    """The newest log has a torn tail and truncating it was not allowed."""

    def __init__(self, path: str, offset: int, reason: str) -> None:
        self.path = path
        self.offset = offset
        self.reason = reason
        super().__init__(f"{path}: torn tail at offset {offset} ({reason}); not truncated (truncation refused by configuration)")


@dataclass(frozen=True, slots=True)
class TruncatedTail:
    path: str
    offset: int  # where the good data ended (the file's new length, or a fresh header's)
    bytes_removed: int
    reason: str


@dataclass(slots=True)
class RecoveryReport:
    snapshot_generation: int | None = None
    log_generations: list[int] = field(default_factory=list)
    # SET effects read from the snapshot.
    keys_loaded: int = 0
    records_replayed: int = 0
    effects_replayed: int = 0
    seconds: float = 0.0
    truncated: list[TruncatedTail] = field(default_factory=list)
    removed_temporary: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    # The generation new appends belong to (open_log_for_append's default).
    current_generation: int = FIRST_GENERATION
    # Set when the newest log had an older format version and appends go to a new generation.
    upgraded_from_version: int | None = None
    # Filled by apply.load_keyspace: keys whose time ran out, and keys live after loading.
    expired_dropped: int = 0
    keys: int = 0


def fsync_directory(path: str | os.PathLike[str]) -> None:
    """Make the directory's entries (creations, renames, deletions) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def truncate_file(path: str | os.PathLike[str], length: int) -> None:
    """Cut a file to ``length`` bytes, durably."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, length)
        os.fsync(fd)
    finally:
        os.close(fd)


class DataDir:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        os.makedirs(self.path, exist_ok=True)
        self._lock_fd: int | None = None
        # Generation of the log appends go to; set by replay() and switch_log().
        self.current_generation: int | None = None

    def lock(self) -> None:
        """Take the directory for this process (an exclusive ``flock`` on
        ``LOCK``, released when the process exits): two servers appending to
        one log would corrupt it. Raises ``DataDirInUse``."""
        path = os.path.join(self.path, LOCK_NAME)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DataDirInUse(f"{self.path} is in use by another trio_kv process") from None
        self._lock_fd = fd

    def unlock(self) -> None:
        """Release ``lock`` (for a server that stops but whose process goes
        on, as in tests; a process that exits releases it anyway)."""
        if self._lock_fd is not None:
            fd, self._lock_fd = self._lock_fd, None
            os.close(fd)

    def log_path(self, generation: int) -> str:
        return os.path.join(self.path, f"{LOG_PREFIX}{generation}")

    def snapshot_path(self, generation: int) -> str:
        return os.path.join(self.path, f"{SNAPSHOT_PREFIX}{generation}")

    def snapshot_tmp_path(self, generation: int) -> str:
        return self.snapshot_path(generation) + TMP_SUFFIX

    def generations(self) -> tuple[list[int], list[int]]:
        """Sorted generations of the snapshots and of the logs present."""
        snapshots: list[int] = []
        logs: list[int] = []
        for name in os.listdir(self.path):
            match = FILE_NAME.fullmatch(name)
            if match:
                (logs if match[1] == "log" else snapshots).append(int(match[2]))
        return sorted(snapshots), sorted(logs)

    def remove_temporary_files(self) -> list[str]:
        removed = [os.path.join(self.path, name) for name in os.listdir(self.path) if name.endswith(TMP_SUFFIX)]
        for path in removed:
            os.unlink(path)
            log.info("removed unfinished file %s", path)
        if removed:
            fsync_directory(self.path)
        return removed

    # --- start ------------------------------------------------------------------

    def replay(self, apply_effects: Callable[[list[Effect]], None], *, truncate_torn_tail: bool = True) -> RecoveryReport:
        """Feed the newest snapshot's records, then every later log record, to
        ``apply_effects`` in order. A torn tail in the newest log is cut off
        (or ``TornTailRefused`` when ``truncate_torn_tail`` is False); any
        other damage raises ``CorruptLog`` or ``InconsistentDataDir``."""
        started = time.perf_counter()
        report = RecoveryReport()
        report.removed_temporary = self.remove_temporary_files()
        snapshots, logs = self.generations()
        base = snapshots[-1] if snapshots else None
        replay = [g for g in logs if base is None or g >= base]
        expected_first = FIRST_GENERATION if base is None else base
        if replay and replay[0] != expected_first:
            missing = self.snapshot_path(replay[0]) if base is None else self.log_path(base)
            raise InconsistentDataDir(f"{missing} is missing: cannot load {self.log_path(replay[0])} without it")
        for before, after in zip(replay, replay[1:]):
            if after != before + 1:
                raise InconsistentDataDir(f"{self.log_path(before + 1)} is missing (found {before} and {after})")
        if base is not None:
            path = self.snapshot_path(base)
            stats = load_snapshot(path, apply_effects, generation=base)
            report.snapshot_generation = base
            report.keys_loaded = stats.keys
            log.info("loaded %s: %d keys", path, stats.keys)
        newest_version = FORMAT_VERSION
        for index, generation in enumerate(replay):
            newest_version = self._replay_log(
                generation, apply_effects, report, newest=index == len(replay) - 1, truncate_torn_tail=truncate_torn_tail
            )
        report.log_generations = replay
        if base is not None:
            report.retired = self.retire_before(base)
        report.current_generation = replay[-1] if replay else (FIRST_GENERATION if base is None else base)
        if newest_version != FORMAT_VERSION:
            # An older build's log: continue in a new one of this version.
            report.current_generation += 1
            report.upgraded_from_version = newest_version
            self._create_log(report.current_generation)
            log.info(
                "%s has format version %d: appending to %s (version %d)",
                self.log_path(replay[-1]),
                newest_version,
                self.log_path(report.current_generation),
                FORMAT_VERSION,
            )
        self.current_generation = report.current_generation
        report.seconds = time.perf_counter() - started
        log.info(
            "recovered %s in %.3f s: snapshot %s, logs %s, %d records replayed",
            self.path,
            report.seconds,
            base,
            replay,
            report.records_replayed,
        )
        return report

    def _replay_log(
        self,
        generation: int,
        apply_effects: Callable[[list[Effect]], None],
        report: RecoveryReport,
        *,
        newest: bool,
        truncate_torn_tail: bool,
    ) -> int:
        """Replay one log; returns its format version (the current one for
        a log torn before its first record, which is made anew)."""
        path = self.log_path(generation)
        effects_replayed = 0
        with RecordReader(path, expect_kind=KIND_LOG, expect_generation=generation) as reader:
            version = reader.header.version if reader.header is not None else FORMAT_VERSION
            for offset, payload in reader:
                try:
                    effects = decode_record(payload, version)
                except RecordFormatError as error:
                    raise CorruptLog(path, offset, str(error)) from None
                apply_effects(effects)
                effects_replayed += len(effects)
            report.records_replayed += reader.records
            report.effects_replayed += effects_replayed
            torn = reader.torn
            size = reader.file_size
        if torn is None:
            return version
        if not newest:
            raise CorruptLog(path, torn.offset, f"torn tail in a log that is not the newest: {torn.reason}")
        if not truncate_torn_tail:
            raise TornTailRefused(path, torn.offset, torn.reason)
        if torn.offset < HEADER_BYTES:
            # Torn before its first record: an empty log, made whole again.
            self._create_log(generation)
        else:
            truncate_file(path, torn.offset)
        log.warning("%s: torn tail at offset %d (%s): truncated %d bytes", path, torn.offset, torn.reason, size - torn.offset)
        report.truncated.append(TruncatedTail(path, torn.offset, size - torn.offset, torn.reason))
        return FORMAT_VERSION if torn.offset < HEADER_BYTES else version

    # --- appending ------------------------------------------------------------

    def _create_log(self, generation: int) -> str:
        """Create ``log.<generation>`` holding only its header, durably. An
        existing file is replaced only if it holds no record: shorter than a
        header (a log torn before its first record), or just a header (a
        creation that failed after the rename, at its directory fsync, and is
        being retried)."""
        path = self.log_path(generation)
        try:
            if os.path.getsize(path) > HEADER_BYTES:
                raise FileExistsError(f"{path} already exists")
        except FileNotFoundError:
            pass
        tmp = path + TMP_SUFFIX
        with open(tmp, "wb") as file:
            file.write(encode_header(KIND_LOG, generation))
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
        fsync_directory(self.path)
        return path

    def create_log(self, generation: int) -> str:
        """Create ``log.<generation>`` (header only, durably) for a log switch
        whose writer is already buffering (``LogWriter(expected_size=...)``)."""
        path = self._create_log(generation)
        self.current_generation = generation
        return path

    def open_log_for_append(self, generation: int | None = None) -> LogWriter:
        """A writer appending to ``log.<generation>`` (default: the current
        one), creating the file if it does not hold a header yet."""
        if generation is None:
            generation = self._current()
        path = self.log_path(generation)
        try:
            size = os.path.getsize(path)
        except FileNotFoundError:
            size = 0
        if size < HEADER_BYTES:
            self._create_log(generation)
        return LogWriter(path)

    def switch_log(self, current_writer: LogWriter | None = None) -> int:
        """Start generation G+1: flush and fsync ``current_writer`` (so the
        old log is complete before a newer one exists, and a torn tail can
        only ever be in the newest), create ``log.G+1``; returns G+1. Open it
        with ``open_log_for_append``. The writer's flush and sync may be done
        before taking the write lock to keep the locked part short."""
        if current_writer is not None:
            current_writer.flush()
            current_writer.sync()
        generation = self._current() + 1
        self._create_log(generation)
        self.current_generation = generation
        return generation

    def _current(self) -> int:
        if self.current_generation is None:
            raise RuntimeError("DataDir.replay() must run first")
        return self.current_generation

    # --- compaction -----------------------------------------------------------

    def install_snapshot(self, tmp_path: str | os.PathLike[str], generation: int) -> list[str]:
        """Make a written, fsynced ``snapshot.<generation>.tmp`` the base
        state, then retire what it replaces; returns the removed paths."""
        if not os.path.exists(self.log_path(generation)):
            # Its log must exist first, or the appends since would be retired with the old log.
            raise ValueError(f"switch the log to generation {generation} before installing its snapshot")
        os.replace(tmp_path, self.snapshot_path(generation))
        fsync_directory(self.path)
        log.info("installed %s", self.snapshot_path(generation))
        return self.retire_before(generation)

    def retire_before(self, generation: int) -> list[str]:
        """Delete snapshots, then logs, of generations below ``generation``."""
        snapshots, logs = self.generations()
        doomed = [self.snapshot_path(g) for g in snapshots if g < generation]
        doomed += [self.log_path(g) for g in logs if g < generation]
        for path in doomed:
            os.unlink(path)
        if doomed:
            fsync_directory(self.path)
            log.info("retired %s", ", ".join(os.path.basename(path) for path in doomed))
        return doomed
