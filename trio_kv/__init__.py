"""trio_kv: a key-value server built on Trio's structured concurrency.

Layers, imports only downward (tests/unit/test_layering.py enforces it):

* ``trio_kv.protocol`` and ``trio_kv.commands``: pure code. Bytes become
  commands, commands become reply values, reply values become bytes. No trio,
  no sockets, no threads.
* ``trio_kv.cluster``: the cluster's pure logic (slots, ring, versions,
  quorum counting); no trio, sockets, threads or store, like ``protocol``.
* ``trio_kv.http``: the HTTP JSON API's pure parts (routes, JSON values,
  OpenAPI, Prometheus text), on top of ``commands``. Pure, like them.
* ``trio_kv.store``: the synchronous store (hash table, reader-writer lock,
  keyspace with expiry, counters). Runs on worker threads; no trio.
* ``trio_kv.server``: the async shell (listener, connections, group dispatch
  to worker threads, lifecycle and signals).
* ``trio_kv.embedded``: the other shell, the store as a library
  (``trio_kv.open``, ``trio_kv.open_trio``), on the store's typed API.

The library's names are importable from here (``trio_kv.open``,
``trio_kv.Put``...) but loaded on first use (PEP 562), so importing any
part of trio_kv does not load the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .embedded import (
        DB as DB,
        Closed as Closed,
        Conflict as Conflict,
        DataDirInUse as DataDirInUse,
        Delete as Delete,
        LogRefused as LogRefused,
        Put as Put,
        SnapshotExpired as SnapshotExpired,
        WrongType as WrongType,
        open as open,
        open_trio as open_trio,
    )
    from .embedded.trio_db import TrioDB as TrioDB

_LIBRARY_NAMES = frozenset({
    "DB", "Closed", "Conflict", "DataDirInUse", "Delete", "LogRefused", "Put", "SnapshotExpired", "WrongType",
    "open", "open_trio",
})

__all__ = sorted(_LIBRARY_NAMES | {"TrioDB", "__version__"})


def __getattr__(name: str) -> Any:
    if name in _LIBRARY_NAMES:
        from . import embedded

        return getattr(embedded, name)
    if name == "TrioDB":
        from .embedded.trio_db import TrioDB

        return TrioDB
    raise AttributeError(f"module 'trio_kv' has no attribute {name!r}")
