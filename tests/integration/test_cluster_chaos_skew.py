"""Clock skew (issue 11): node 1 runs ``--debug-clock-offset-ms 2000``, its
hybrid logical clock 2 s ahead of the other two (trio_kv/cluster/hlc.py).

* A seeded kill run (chaos_runs.py) on the skewed cluster: still 0
  acknowledged writes lost, and the replicas agree after the heal.
* What skew does to GET's choice among siblings. GET answers the sibling
  with the greatest (timestamp, node id). A node's clock observes every
  timestamp it receives (HLC's receive rule), so while nodes talk, a write
  made after another was seen always wins, whatever the skew. Siblings come
  from writes that did not see each other: here node 1 is isolated (nft)
  and each of ``PAIRS`` keys is written on both sides at level ONE, once on
  the fast node and once on node 2 ``gap`` seconds later in real time.
  After the heal every key holds both values (0 lost), and GET picks the
  fast node's *earlier* write when the gap is below the skew (0.3 s), the
  later write when it is above (3 s): skew reorders concurrent writes up
  to its size, never further, and never drops one. Counts are printed.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness import netns
from harness.history.siblings_reply import sibling_values

from .chaos_runs import assert_run, chaos_run, namespaced_cluster_fixtures, seeds, wait_agreement
from .process_cluster import ProcessCluster

pytestmark = pytest.mark.slow

HOSTS = ["127.0.0.31", "127.0.0.32", "127.0.0.33"]
PORT = 7200
SKEW_MS = 2000
FAST = 0
PAIRS = 10

namespace, cluster = namespaced_cluster_fixtures(
    HOSTS, PORT, node_flags=lambda index: ("--debug-clock-offset-ms", str(SKEW_MS)) if index == FAST else ())


@pytest.mark.parametrize("seed", seeds(1))
def test_a_node_two_seconds_ahead_loses_no_acknowledged_write_under_kill_faults(cluster: ProcessCluster, seed: int,
                                                                                tmp_path: Path) -> None:
    result = chaos_run(cluster, "kill", 2000 + seed, tmp_path)
    print(f"\n(node {FAST + 1} {SKEW_MS} ms ahead)", end="")
    assert_run(result)


def _set_at_one(cluster: ProcessCluster, index: int, keys: list[str], value: str) -> None:
    with cluster.client(index) as client:
        client.execute_command("TKV.CONSISTENCY", "ONE")
        for key in keys:
            assert client.set(key, value) is True


@pytest.mark.parametrize("gap_s", [0.3, 3.0])
def test_get_prefers_the_fast_nodes_concurrent_write_only_within_the_skew(
        cluster: ProcessCluster, namespace: netns.NetworkNamespace, gap_s: float) -> None:
    cluster.wait_for(cluster.meshed)
    keys = [f"skew-{gap_s:g}-{index}" for index in range(PAIRS)]
    fast, slow = cluster.hosts[FAST], cluster.hosts[1]
    namespace.isolate(fast, [host for host in cluster.hosts if host != fast])
    try:
        _set_at_one(cluster, FAST, keys, "c0:1")  # first in real time, on the fast node
        time.sleep(gap_s)
        _set_at_one(cluster, 1, keys, "c1:1")
    finally:
        namespace.heal_all()
    cluster.wait_for(cluster.meshed)
    converge_s, finals = wait_agreement(cluster, keys)
    assert all(sorted(final.values or []) == ["c0:1", "c1:1"] for final in finals), finals
    with cluster.client(2) as client:
        client.execute_command("TKV.CONSISTENCY", "QUORUM")
        chosen = [client.get(key).decode() for key in keys]
        shown_first = [sibling_values(client.execute_command("TKV.SIBLINGS", key))[0] for key in keys]
    earlier = chosen.count("c0:1")
    print(f"\nskew {SKEW_MS} ms ({fast} ahead), {PAIRS} keys written on both sides of a partition, {slow} "
          f"{gap_s:g} s after {fast}: GET chose the fast node's earlier write for {earlier}, the later write for "
          f"{PAIRS - earlier}; both values on every replica {converge_s:.1f} s after the heal")
    assert chosen == shown_first  # TKV.SIBLINGS lists GET's winner first
    assert earlier == (PAIRS if gap_s * 1000 < SKEW_MS else 0), chosen
