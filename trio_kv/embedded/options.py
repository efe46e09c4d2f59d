"""The embedded library's options: the server's, by the same names.

``trio_kv.open(path, appendfsync="always")`` takes the server's option of
that name (``--appendfsync``), checked by the same parser
(``config.parse_option``), so a value the server refuses the library
refuses too. Only the options that mean something without listeners are
accepted (``LIBRARY_OPTIONS``); any other name is a ``TypeError``, as an
unexpected keyword argument is, so a typo is never silently ignored.

``path`` is the data directory: given, the append-only log is on (and the
directory locked while the store is open); None, the store is memory only.

The snapshot limits are the server's too (``--snapshot-max-undo-bytes``,
``--snapshot-idle-timeout-seconds``): a snapshot past either expires, its
reads raise ``trio_kv.SnapshotExpired`` and a transaction on it fails to
commit with ``trio_kv.Conflict``, as ``ERR snapshot expired`` in the server.
"""

from __future__ import annotations

import dataclasses
import os

from ..config import Config, parse_option

# Option name -> what it does in the library (the README lists these).
LIBRARY_OPTIONS: dict[str, str] = {
    "appendfsync": "always (fsync before a write returns), everysec (default) or no",
    "aof_rewrite_percentage": "compact when the files grew this many percent (0: never)",
    "aof_rewrite_min_size_bytes": "no automatic compaction while the files are smaller",
    "aof_load_truncated": "yes: cut a torn log tail when opening (with a warning); no: refuse",
    "active_expire_interval_seconds": "how often expired keys are swept (at a write in the sync shell)",
    "sorted_index": "yes (default): keep keys in byte order for scan (about 9 bytes a key; 17 with table=compact); no: scan refuses",
    "snapshot_max_undo_bytes": "old values open snapshots may keep (default 256 MiB); past it the oldest expires",
    "snapshot_idle_timeout_seconds": "a snapshot unread this long expires (default 300)",
    "table": "objects (default) or compact: the keyspace's hash table (compact: packed records, about 100 bytes a key less)",
    "workers": "open_trio: worker threads of the group dispatcher",
}


def library_config(path: str | os.PathLike[str] | None, options: dict[str, object]) -> Config:
    """The store's configuration for ``open(path, **options)``."""
    unknown = sorted(set(options) - set(LIBRARY_OPTIONS))
    if unknown:
        raise TypeError(
            f"unknown option(s) {', '.join(unknown)}; the library takes {', '.join(sorted(LIBRARY_OPTIONS))}"
        )
    values = {name: parse_option(name, value) for name, value in options.items()}
    if path is None:
        return dataclasses.replace(Config(), appendonly=False, **values)
    return dataclasses.replace(Config(), data_dir=os.fspath(path), appendonly=True, **values)
