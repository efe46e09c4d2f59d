"""Opening a data directory for a store: the one recovery both shells run
(the server at start, the embedded library's ``open(path)``).

Lock the directory (``DataDir.lock``: one process at a time, whatever the
shell), load the newest snapshot and replay the logs into the store's
keyspace (and versions), open the log for appending, and subscribe it to
the keyspace's effects, so every write from then on is one record per
unit. Synchronous and slow (it reads every file): the server runs it on a
disk thread before any listener opens, the library on the caller's thread.
Everything the caller then needs is on the returned ``Persistence``
(``data_dir`` to unlock at the end, ``loaded_keys``); on any error the
directory is unlocked again and nothing was subscribed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .append_log import Persistence
from .apply import load_keyspace
from .data_dir import DataDir, RecoveryReport

if TYPE_CHECKING:
    from ..store import Store


def open_log(store: Store) -> tuple[Persistence, RecoveryReport]:
    """Recover ``store.config.data_dir`` into ``store`` and open its log (see
    the module docstring). Raises ``DataDirInUse`` when another process (or
    another open of it in this one) holds the directory, ``DurabilityError``
    when the files cannot be trusted."""
    config = store.config
    data_dir = DataDir(config.data_dir)
    data_dir.lock()
    try:
        report = load_keyspace(
            data_dir, store.keyspace, truncate_torn_tail=config.aof_load_truncated, versions=store.versions
        )
        persistence = Persistence(
            data_dir,
            config.appendfsync,
            rewrite_min_bytes=config.aof_rewrite_min_size_bytes,
            rewrite_percentage=config.aof_rewrite_percentage,
        )
    except BaseException:
        data_dir.unlock()  # a store that did not open holds nothing
        raise
    persistence.loaded_keys = report.keys
    persistence.loaded_expired = report.expired_dropped
    # The log takes every write from now on: one record per unit.
    store.keyspace.effects.subscribe(persistence.log)
    return persistence, report
