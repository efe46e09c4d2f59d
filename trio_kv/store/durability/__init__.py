"""Persistence files (store layer, synchronous): the log, snapshots, recovery.

* ``records``: effect encoding, record framing, file headers (no IO).
* ``reader``: reading a file record by record with the torn-tail rules.
* ``writer``: ``LogWriter``, the append buffer, write() and fsync.
* ``snapshot``: writing (from a fuzzy keyspace iteration) and loading snapshots.
* ``data_dir``: ``DataDir``: file names, replay at start, log switch, snapshot install.
* ``append_log``: ``Persistence``, the running server's append-only log (LSNs,
  flush and fsync, the steps of a compaction).
* ``apply``: applying effects to a ``Keyspace``; ``load_keyspace``.
* ``check``: the ``trio-kv check-log`` command.

docs/persistence-format.md describes the format and the protocols.
"""
