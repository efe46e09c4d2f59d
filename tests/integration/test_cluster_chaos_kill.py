"""Seeded ``kill -9`` runs against a real 3-node cluster (issue 11's first and second "Tests"; chaos_runs.py).

* Each seed: 5 clients (N=3, W=2, R=2 at QUORUM, moving to another node every
  5 operations) while a seeded node is killed with SIGKILL and restarted on
  its data directory; after the run, hint replay, anti-entropy (1 s
  interval) and read repair bring the replicas to agreement, and 0
  acknowledged writes are lost (on the union of the reads and on every
  replica's own copy).
* Sessions: clients that move to another node after *every* operation,
  reading more than writing, under the same faults: 0 read-your-writes or
  monotonic-reads violations at QUORUM.

The cluster is started once for the module (each run its own key prefix).
``KV_CHAOS_FULL=1`` runs 20 seeds at the issue's timings (a kill every 10 s,
restart 5 s later); ``-s`` prints each run's figures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .chaos_runs import assert_run, chaos_run, seeds, started_cluster
from .process_cluster import ProcessCluster

pytestmark = pytest.mark.slow

@pytest.fixture(scope="module")
def cluster():
    with started_cluster() as started:
        yield started


@pytest.mark.parametrize("seed", seeds(2))
def test_kill_9_and_restart_of_a_seeded_node_loses_no_acknowledged_write(cluster: ProcessCluster, seed: int,
                                                                         tmp_path: Path) -> None:
    assert_run(chaos_run(cluster, "kill", seed, tmp_path))


@pytest.mark.parametrize("seed", seeds(1))
def test_sessions_moving_between_nodes_under_kill_faults_see_their_writes_and_monotonic_reads(
        cluster: ProcessCluster, seed: int, tmp_path: Path) -> None:
    result = chaos_run(cluster, "kill", 1000 + seed, tmp_path, move_every_ops=1, write_fraction=0.35)
    assert_run(result)
    sessions = next(verdict for verdict in result.verdicts if verdict.checker == "sessions")
    assert sessions.counts["reads_checked"] >= 100, sessions.summary()
    # The sessions did move: each client used every node.
    nodes_used: dict[str, set[str | None]] = {}
    for op in result.history.ops:
        nodes_used.setdefault(op.process, set()).add(op.node)
    assert all(len(nodes) == len(cluster.hosts) for nodes in nodes_used.values()), nodes_used
