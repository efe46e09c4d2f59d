"""The deterministic in-process cluster (design/cluster.md, "Testing on one
2-core machine", layer 2): several real trio_kv nodes in one ``trio.run``
on a mock clock, connected by a seeded faulty in-memory network; the same
seed replays the same history. See ``network``, ``node``, ``determinism``.

Seeded chaos (``test_sim_chaos``): ``schedule`` draws a run's faults from
its seed, ``chaos_run`` runs several clients under them and reads the
final state, ``chaos_checks`` says what is wrong with the outcome."""
