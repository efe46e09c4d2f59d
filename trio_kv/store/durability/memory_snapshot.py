"""SAVE with ``--appendonly no``: one snapshot file of the whole keyspace.

With the append-only log off there is no log to compact, but SAVE still
means "put the data on disk now" (Redis writes dump.rdb). trio_kv writes
``<data-dir>/dump.snapshot`` in its own snapshot format (snapshot.py: SET
effects, an END record with the key count, CRC-checked records) and, at the
next start with ``--appendonly no``, loads it before any client connects.
With ``--appendonly yes`` the file is neither read nor touched (the log's
own ``snapshot.G`` files are the state there).

Rules kept here:

* The file is written as ``dump.snapshot.tmp``, fsynced, renamed over
  ``dump.snapshot`` and the directory fsynced: the file under its final name
  is always a complete snapshot, the previous one until the rename.
* The keyspace is read in chunks under the read lock (``keyspace_chunks``),
  so writers run between chunks: the file holds every key that existed for
  the whole save, with a value at least as new as the start of the save
  (Redis' SAVE blocks every client instead).
* Loading checks the whole file (``load_snapshot``: a damaged file is
  ``CorruptLog`` and the server does not start), then drops expired keys.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..keyspace import Keyspace
from ..rwlock import ReadWriteLock
from .apply import apply_effects, loading
from .records import Effect
from .data_dir import fsync_directory
from .snapshot import SnapshotStats, keyspace_chunks, load_snapshot, write_snapshot

if TYPE_CHECKING:
    from ..versions import Versions

SNAPSHOT_NAME = "dump.snapshot"
# Snapshots of the log carry its generation; this one stands alone.
MEMORY_SNAPSHOT_GENERATION = 0


def snapshot_path(data_dir: str) -> str:
    return os.path.join(data_dir, SNAPSHOT_NAME)


def save_keyspace(
    keyspace: Keyspace, lock: ReadWriteLock, data_dir: str, versions: Versions | None = None
) -> SnapshotStats:
    """Write ``<data_dir>/dump.snapshot`` (worker thread, no lock held by the
    caller), with the keys' versions in cluster mode."""
    os.makedirs(data_dir, exist_ok=True)
    path = snapshot_path(data_dir)
    tmp_path = path + ".tmp"
    try:
        os.unlink(tmp_path)  # left by a crash during an earlier SAVE
    except FileNotFoundError:
        pass
    stats = write_snapshot(tmp_path, keyspace_chunks(keyspace, lock, versions=versions), MEMORY_SNAPSHOT_GENERATION)
    os.replace(tmp_path, path)
    fsync_directory(data_dir)
    return stats


def load_keyspace(keyspace: Keyspace, data_dir: str, versions: Versions | None = None) -> SnapshotStats | None:
    """Load ``<data_dir>/dump.snapshot`` if there is one (before serving)."""
    path = snapshot_path(data_dir)
    if not os.path.exists(path):
        return None

    def apply(effects: list[Effect]) -> None:
        apply_effects(keyspace, effects, versions)

    with loading(keyspace, versions), keyspace.expiry_paused():
        stats = load_snapshot(path, apply, generation=MEMORY_SNAPSHOT_GENERATION)
    keyspace.purge_expired()
    return stats
