"""The coordinator's write promises when its peers go silent, in the
simulated cluster (mock clock): a write whose peers are cut off (still
believed up: the partition is younger than the node timeout) is answered
``-NOREPLICAS`` once ``--cluster-write-timeout`` has passed, not before;
its replication is not abandoned: once the partition heals, the peers'
late acks are counted and WAIT on the same connection sees them, and the
peers hold the write.
"""

from __future__ import annotations

from pathlib import Path

import trio

from trio_kv.protocol.replies import Error, SimpleString

from . import determinism
from .cluster import SimCluster, wait_until

WRITE_TIMEOUT_SECONDS = 1.0


def test_a_write_peers_never_ack_in_time_is_refused_at_the_timeout_and_late_acks_count_for_wait(
    tmp_path: Path,
) -> None:
    cluster = SimCluster(
        7, tmp_path, count=3,
        cluster_write_timeout_seconds=WRITE_TIMEOUT_SECONDS, cluster_node_timeout_seconds=30.0,
    )
    a, b, c = cluster.nodes
    seen: dict[str, object] = {}

    async def main() -> None:
        with trio.fail_after(60):
            await run()

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            await cluster.start_all(nursery)
            await wait_until(cluster.all_up)
            client = await cluster.client(nursery, a)
            seen["before"] = await client.call(b"SET", b"before", b"1")
            cluster.network.partition([a.member.host], [b.member.host, c.member.host])
            started = trio.current_time()
            seen["reply"] = await client.call(b"SET", b"key", b"value")
            seen["elapsed"] = trio.current_time() - started
            seen["wait_cut"] = await client.call(b"WAIT", b"1", b"100")
            cluster.network.heal()
            seen["wait_healed"] = await client.call(b"WAIT", b"2", b"5000")
            held = []
            for node in (b, c):
                assert node.running is not None
                held.append(node.running.store.versions.clock_of(b"key") is not None)
            seen["held"] = held
            await client.close()
            nursery.cancel_scope.cancel()

    determinism.run(7, main)
    assert seen["before"] == SimpleString("OK")
    reply = seen["reply"]
    assert isinstance(reply, Error) and reply.message == "NOREPLICAS Not enough good replicas to write.", reply
    assert isinstance(seen["elapsed"], float) and seen["elapsed"] >= WRITE_TIMEOUT_SECONDS
    assert seen["wait_cut"] == 0
    assert seen["wait_healed"] == 2
    assert seen["held"] == [True, True]
