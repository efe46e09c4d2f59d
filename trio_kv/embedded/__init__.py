"""The embedded library: trio_kv's store without a server.

* ``open(path | None, **options) -> DB``: synchronous, every call on the
  caller's thread (embedded/sync_db.py).
* ``open_trio(path | None, **options)``: an async context manager giving a
  ``TrioDB`` whose calls are awaitable and go through the server's group
  dispatcher (embedded/trio_db.py).

Both open the same ``Store`` the server runs, with the same append-only log,
snapshots and recovery (``path``: the data directory, locked while open, so
a server and a library, or two of either, never share one; None: memory
only), and both call the store's typed API (store/direct.py). Options are
the server's, by name (embedded/options.py). Keys and values are bytes;
nothing is pickled.

``trio_kv`` re-exports these names; this package imports trio only when
``open_trio`` is called, so a sync program never loads it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..commands.values import WrongType
from ..store.direct import Conflict, Delete, LogRefused, Put
from ..store.durability.data_dir import DataDirInUse
from ..store.snapshots import SnapshotExpired
from ..store.durability.open_log import open_log
from ..store.store import Store
from .options import LIBRARY_OPTIONS, library_config
from .sync_db import DB, Closed
from .sync_log import SyncLog

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from .trio_db import TrioDB

__all__ = [
    "DB", "Closed", "Conflict", "DataDirInUse", "Delete", "LIBRARY_OPTIONS", "LogRefused", "Put", "SnapshotExpired",
    "WrongType",
    "open", "open_trio",
]


def open(path: str | os.PathLike[str] | None = None, **options: object) -> DB:
    """Open the store in data directory ``path`` (created if missing;
    recovered from its snapshot and logs) or, with None, in memory.
    ``options``: ``LIBRARY_OPTIONS``, named and checked as the server's.
    Raises ``DataDirInUse`` when a server or another open store holds the
    directory."""
    return open_store(Store(library_config(path, options)))


def open_store(store: Store) -> DB:
    """``open``'s body, for a store built by the caller (tests pass one
    whose keyspace reads a fake clock): with ``store.config.appendonly``,
    recovery from ``store.config.data_dir`` and its log."""
    if not store.config.appendonly:
        return DB(store, None)
    persistence, _report = open_log(store)
    store.persistence = persistence  # the typed API logs from now on
    return DB(store, SyncLog(store, persistence))


def open_trio(path: str | os.PathLike[str] | None = None, **options: object) -> AbstractAsyncContextManager[TrioDB]:
    """``async with trio_kv.open_trio(path) as db:``: the store as ``open``
    opens it, its calls awaitable through the group dispatcher; the block's
    end closes it."""
    from .trio_db import open_store as open_trio_store  # trio only for Trio programs

    return open_trio_store(Store(library_config(path, options)))
