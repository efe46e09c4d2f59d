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
"""

__version__ = "0.1.0"
