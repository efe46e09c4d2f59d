"""Histories of client operations and the checkers that judge them (stdlib only).

No Jepsen, Knossos, Elle or Porcupine can be installed here, so these are
written for trio_kv (design/cluster.md, "Testing on one 2-core machine").
One idea per module:

* ``model``: an operation (``Op``), a final read (``FinalRead``), a fault
  event, the ``History`` holding them, and the real-time order between operations.
* ``jsonl``: histories as JSON lines, so a failing run can be replayed.
* ``recorder``: the thread-safe recorder clients write into (monotonic times).
* ``outcomes``: which client errors are definite (``fail``) and which leave
  the write in doubt (``unknown``).
* ``survival``: every acknowledged write is present or superseded.
* ``linearizable``: per-key linearizability of a register (Wing-Gong with Lowe's cache).
* ``register_anomalies``: definite stale, future, invented reads and vanished writes, found without a search.
* ``siblings``: sibling counts never exceed the key's writers.
* ``sessions``: monotonic reads and read-your-writes per client.
* ``agreement``: after a repair, every replica shows the same values of every key.
* ``verdict``: what a checker returns; ``checks``: running several on a history.
* ``siblings_reply``: the values in a TKV.SIBLINGS reply.
* ``workload``, ``faults``, ``final_state``: drivers against a list of nodes
  (redis-py threads, a fault schedule, the final read); these need redis-py.
* ``cli``: ``python -m harness.history check FILE.jsonl``.

The checkers (model, jsonl, survival, linearizable, register_anomalies,
siblings, sessions, agreement, verdict, checks, siblings_reply) import only the
standard library: no trio, no redis (tests/unit/test_history_recording.py
checks it).
"""
