"""An EXEC with arguments ends MULTI at once (Redis 7: ``-EXECABORT
Transaction discarded because of: wrong number of arguments for 'exec'
command``), so the requests pipelined after it are routed by key as any
request outside a transaction, in the simulated cluster: with N=2 of 3
nodes, a SET after it sent to the node outside the key's preference list
is forwarded (no copy left there) and replicated, and a GET after it is a
quorum read. Before, the coordinator kept them with the queued part (run
here, unrouted)."""

from __future__ import annotations

from pathlib import Path

import trio

from trio_kv.cluster.slots import key_slot
from trio_kv.protocol.replies import Error, SimpleString

from . import determinism
from .cluster import SimCluster, wait_until
from .node import SimNode

OK = SimpleString("OK")
QUEUED = SimpleString("QUEUED")
EXEC_ARITY = Error("EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command")
SEED = 3


def _outside(node: SimNode, count: int) -> bytes:
    """A key whose preference list leaves ``node`` out."""
    running = node.running
    assert running is not None
    view = running.cluster.view()
    for index in range(count):
        key = b"x%d" % index
        if view.myself not in view.ring.preference_list(key_slot(key)):
            return key
    raise AssertionError("no key outside this node's partitions")


def test_requests_after_an_exec_with_arguments_are_routed_by_key(tmp_path: Path) -> None:
    cluster = SimCluster(SEED, tmp_path, count=3, cluster_replicas=2, cluster_write_timeout_seconds=2.0)
    far = cluster.nodes[0]
    result: dict[str, object] = {}

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await cluster.start_all(nursery)
            await wait_until(cluster.all_up)
            key = _outside(far, 1000)
            client = await cluster.client(nursery, far)
            with trio.fail_after(10):
                result["replies"] = await client.link.request_many([
                    [b"MULTI"], [b"SET", key, b"queued"], [b"EXEC", b"x"], [b"SET", key, b"after"], [b"GET", key],
                    [b"EXEC"],
                ])
            result["held"] = {
                node.member.host: node.running.store.keyspace.get(key)
                for node in cluster.nodes if node.running is not None
            }
            nursery.cancel_scope.cancel()

    determinism.run(SEED, main)
    assert result["replies"] == [OK, QUEUED, EXEC_ARITY, OK, b"after", Error("ERR EXEC without MULTI")]
    held = result["held"]
    assert isinstance(held, dict)
    assert held.pop(far.member.host) is None  # forwarded: no copy on the node outside the list
    assert list(held.values()) == [b"after", b"after"]  # W=2 of N=2: both replicas acknowledged
