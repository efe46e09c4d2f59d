"""Anti-entropy between real ``trio-kv`` processes (``--cluster-aae-interval
1``): a node killed with SIGKILL misses 10,000 writes (W=2 acknowledged
them on the other two; hinted handoff is off: ``--cluster-hinted-handoff
no``), is restarted, and holds all
10,000 within the issue's 30 s, repaired by Tictac tree exchanges alone
(nothing reads the keys meanwhile: no read repair), at the default
``--cluster-aae-max-keys-per-second``; then the converged cluster's
exchanges send only roots requests and compare no segment and no key. The convergence time is
printed (a figure, not an assertion beyond the 30 s bound)."""

from __future__ import annotations

import time

import pytest

from .process_cluster import ProcessCluster

pytestmark = pytest.mark.slow

KEYS = 10_000
CONVERGE_WITHIN_SECONDS = 30.0


def test_ten_thousand_keys_a_restarted_node_missed_converge_and_then_only_roots_are_exchanged() -> None:
    # --cluster-write-timeout 10: on a loaded 2-core machine a batch of 1,000 SETs can take node 1 over the
    # default 2 s to ack (a NOREPLICAS failed this test at load 13); the test is about the repair, not the timeout.
    with ProcessCluster(3, "--cluster-aae-interval", "1", "--cluster-hinted-handoff", "no",
                        "--cluster-write-timeout", "10") as cluster:
        cluster.start_all()
        victim = cluster.node(2)
        victim.kill()
        cluster.wait_for(lambda: cluster.up_count(cluster.hosts[0]) == 2)
        writer = cluster.client(0)
        for first in range(0, KEYS, 1000):
            pipe = writer.pipeline(transaction=False)
            for index in range(first, first + 1000):
                pipe.set(f"aae:{index:05d}", f"v{index}")
            assert pipe.execute() == [True] * 1000
        cluster.start(2)
        cluster.wait_for(lambda: all(cluster.up_count(host) == 3 for host in cluster.hosts))
        started = time.monotonic()
        assert cluster.counters(2)["versions_keys"] < KEYS  # it missed them
        cluster.wait_for(
            lambda: all(cluster.counters(index)["versions_keys"] == KEYS for index in range(3)),
            seconds=CONVERGE_WITHIN_SECONDS,
        )
        converged_seconds = time.monotonic() - started
        counts = [cluster.counters(index) for index in range(3)]
        print(f"anti-entropy: {KEYS} keys a restarted node missed converged in {converged_seconds:.1f} s"
              f" (1 s interval, default rate limit; keys repaired per node {[c['aae_keys_repaired'] for c in counts]},"
              f" rate-limit waits {[c['aae_rate_waits'] for c in counts]})")
        assert counts[2]["reads_repaired"] == 0  # anti-entropy did it, not read repair
        # Its own copy (level ONE reads this node's replica): every key, every value.
        own = cluster.client(2)
        own.execute_command("TKV.CONSISTENCY", "ONE")
        pipe = own.pipeline(transaction=False)
        for index in range(KEYS):
            pipe.get(f"aae:{index:05d}")
        assert pipe.execute() == [f"v{index}".encode() for index in range(KEYS)]
        # Converged: let in-flight rounds finish, then only roots go out.
        time.sleep(2.5)
        before = [cluster.counters(index) for index in range(3)]
        assert sum(c["aae_keys_repaired"] for c in before) >= KEYS  # counted once the rounds in flight ended
        time.sleep(3.5)
        after = [cluster.counters(index) for index in range(3)]
        for was, now in zip(before, after):
            assert now["aae_roots_requests"] >= was["aae_roots_requests"] + 2 * 2  # 2 peers, 2+ rounds
            for name in ("aae_segments_requests", "aae_keys_requests", "aae_repair_requests", "aae_keys_repaired",
                         "aae_segments_compared", "aae_keys_compared", "aae_partitions_differing"):
                assert now[name] == was[name], (name, was, now)
