"""Sloppy quorum between real ``trio-kv`` processes (4 nodes, N=3, W=2,
anti-entropy off so only hints can bring a missed write back):

Nodes 1 and 2 are killed; the first 20 keys are written (one by one)
before node 0 marks them down: their links refuse or fail the puts, which
are diverted to node 3 all the same. Node 0 runs with ``--cluster-sloppy-quorum yes``,
node 3 without. For the 1,000 keys whose preference list is {0, 1, 2},
node 0 coordinates and node 3 (the only node past the list) stands in for
one of the down members: the writes answer OK at W=2 (node 0's own copy
plus node 3's durable hint); node 3 holds them in its hint log
(``hints_held``). A key whose preference list is {1, 2, 3}, written
through node 3 (no sloppy quorum there), answers NOREPLICAS: what every
coordinator answered before the option. A quorum read of a sloppy key is
refused meanwhile (reads ask the preference list only: node 0 is its only
live member).

Nodes 1 and 2 are restarted: both get every key (their own copy, read at
ONE), from node 3's hints and node 0's own; the time from node 3 marking
them up to the last key being on them is printed (the README's figure);
every key then reads at ALL, and node 3's hint files are gone.

The NOREPLICAS half is the control: the same situation on a coordinator
without the option (one cluster serves both, to keep CI time small).
"""

from __future__ import annotations

import glob
import os
import time

import pytest
import redis

from trio_kv.cluster.ring import Member, claim
from trio_kv.cluster.slots import key_slot

from .process_cluster import ProcessCluster

pytestmark = pytest.mark.slow

KEYS = 1_000
# Of them, written one by one right after the kills, before the failure detector marks the nodes down.
EARLY = 20
POLL_SECONDS = 0.05
DELIVERED_WITHIN_SECONDS = 30.0
FLAGS = ("--cluster-aae-interval", "0", "--cluster-write-timeout", "10")


def _keys_with_list(cluster: ProcessCluster, wanted: set[int], count: int, prefix: str) -> list[str]:
    """``count`` keys whose preference list is exactly nodes ``wanted`` (the seeds' ring)."""
    members = [Member(host, cluster.port) for host in cluster.hosts]
    ring = claim(members, replicas=3, partition_count=64)
    want = {members[index] for index in wanted}
    keys: list[str] = []
    index = 0
    while len(keys) < count:
        key = f"{prefix}:{index}"
        if set(ring.preference_list(key_slot(key.encode()))) == want:
            keys.append(key)
        index += 1
    return keys


def _own_copies(cluster: ProcessCluster, index: int, keys: list[str]) -> list[bytes | None]:
    with cluster.client(index) as own:
        own.execute_command("TKV.CONSISTENCY", "ONE")
        pipe = own.pipeline(transaction=False)
        for key in keys:
            pipe.get(key)
        return pipe.execute()


def _hint_files(cluster: ProcessCluster, index: int) -> list[str]:
    return glob.glob(os.path.join(cluster.data_dir(index), "hints", "*.hints"))


def test_fallback_holds_a_w2_write_for_two_down_replicas_and_hands_it_back() -> None:
    sloppy_on_node_0 = lambda index: ("--cluster-sloppy-quorum", "yes") if index == 0 else ()  # noqa: E731
    with ProcessCluster(4, *FLAGS, node_flags=sloppy_on_node_0) as cluster:
        cluster.start_all()
        keys = _keys_with_list(cluster, {0, 1, 2}, KEYS, "sloppy")
        early = keys[:EARLY]
        [strict_key] = _keys_with_list(cluster, {1, 2, 3}, 1, "strict")
        cluster.kill(1)
        cluster.kill(2)
        # Before node 0 marks them down: their links refuse or fail the puts, which go to node 3.
        with cluster.client(0) as writer:
            for number, key in enumerate(early):
                assert writer.set(key, f"v{number}")
        cluster.wait_for(lambda: cluster.members_up(0) == 2 and cluster.members_up(3) == 2)

        with cluster.client(0) as writer:
            assert writer.config_get("cluster-sloppy-quorum") == {"cluster-sloppy-quorum": "yes"}
            pipe = writer.pipeline(transaction=False)
            for number, key in enumerate(keys):
                pipe.set(key, f"v{number}")
            assert pipe.execute() == [True] * KEYS
            # Reads ask the preference list only: one live member, R=2.
            with pytest.raises(redis.ResponseError, match="NOREPLICAS"):
                writer.get(keys[0])
        with cluster.client(3) as strict:
            assert strict.config_get("cluster-sloppy-quorum") == {"cluster-sloppy-quorum": "no"}
            with pytest.raises(redis.ResponseError, match="NOREPLICAS"):
                strict.set(strict_key, "x")
        held = cluster.counters(3)
        assert held["hints_held"] >= KEYS, held
        assert cluster.counters(0)["fallback_pairs"] >= KEYS
        assert _hint_files(cluster, 3)

        cluster.start(1)
        cluster.start(2)
        cluster.wait_for(lambda: cluster.members_up(3) == 4 and cluster.members_up(0) == 4, seconds=15)
        marked_up = time.monotonic()
        expected = [f"v{number}".encode() for number in range(KEYS)]
        while not (_own_copies(cluster, 1, keys) == expected and _own_copies(cluster, 2, keys) == expected):
            assert time.monotonic() - marked_up < DELIVERED_WITHIN_SECONDS, (cluster.counters(3), cluster.counters(0))
            time.sleep(POLL_SECONDS)
        handed_back_seconds = time.monotonic() - marked_up
        print(f"sloppy quorum: {KEYS} writes held by a fallback were on both restarted replicas"
              f" {handed_back_seconds:.2f} s after the fallback marked them up"
              f" (fallback replayed {cluster.counters(3)['hints_replayed']},"
              f" coordinator replayed {cluster.counters(0)['hints_replayed']})")
        with cluster.client(0) as reader:
            reader.execute_command("TKV.CONSISTENCY", "ALL")
            pipe = reader.pipeline(transaction=False)
            for key in keys:
                pipe.get(key)
            assert pipe.execute() == expected
        cluster.wait_for(lambda: not _hint_files(cluster, 3), seconds=10)
        assert cluster.counters(3)["hints_pending_records"] == 0

