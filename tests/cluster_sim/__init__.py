"""The deterministic in-process cluster (design/cluster.md, "Testing on one
2-core machine", layer 2): several real trio_kv nodes in one ``trio.run``
on a mock clock, connected by a seeded faulty in-memory network; the same
seed replays the same history. See ``network``, ``node``, ``determinism``."""
