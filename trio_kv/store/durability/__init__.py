"""Persistence files (store layer, synchronous): the log, snapshots, recovery.

* ``records``: effect encoding, record framing, file headers (no IO).
* ``reader``: reading a file record by record with the torn-tail rules.
* ``writer``: ``LogWriter``, the append buffer, write() and fsync.
* ``snapshot``: writing (from a fuzzy keyspace iteration) and loading snapshots.
* ``recovery``: ``DataDir``: file names, recovery, log switch, snapshot install.
* ``apply``: applying effects to a ``Keyspace``; ``load_keyspace``.
* ``check``: the ``trio-kv check-log`` command.

docs/persistence-format.md describes the format and the protocols.
"""
