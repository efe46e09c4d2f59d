"""Versions over the real cluster bus: two nodes (in one process, real
sockets, each on its own loopback address with its own data directory and
``appendfsync always``) exchange a key's clock with TKV.REPL.GET and
TKV.REPL.PUT after the bus handshake, as the coordinator will: a write on
one node reaches the other, concurrent writes become the same siblings on
both, and TKV.PUTCTX on one resolves them everywhere once shipped."""

from __future__ import annotations

from pathlib import Path

import trio

from trio_kv.cluster.handshake import PROTOCOL_VERSION, Hello, new_nonce
from trio_kv.protocol.replies import SimpleString

from .cluster_nodes import BusClient, free_cluster_port, node_hosts, seeds_of, start_node, wait_until
from .test_cluster_bus import _all_up

WAIT_SECONDS = 20


async def _hello(bus: BusClient, node) -> object:
    """The dialing side's TKV.HELLO as a member (no secret: that completes it)."""
    cluster = node.cluster.node
    peer_address = next(member for member in cluster.ring.members if member != cluster.myself).address
    mine = Hello(PROTOCOL_VERSION, cluster.cluster_name, "c" * 40, peer_address, cluster.ring_hash, new_nonce())
    return await bus.call(b"TKV.HELLO", *mine.to_args())


async def test_clocks_travel_over_the_bus_and_converge(tmp_path: Path) -> None:
    with trio.fail_after(WAIT_SECONDS):
        async with trio.open_nursery() as nursery:
            hosts = node_hosts(2)
            port = free_cluster_port(hosts)
            seeds = seeds_of(hosts, port)
            nodes = [
                await start_node(
                    nursery, host, port, seeds, appendonly=True, appendfsync="always",
                    data_dir=str(tmp_path / f"node{index}"),
                )
                for index, host in enumerate(hosts)
            ]
            await wait_until(lambda: _all_up(nodes))
            # This test ships clocks by hand: the coordinator (which would
            # replicate every write itself) steps aside on both nodes.
            for node in nodes:
                assert node.cluster is not None and node.cluster.coordinator is not None
                node.cluster.coordinator.dispatcher.router = None
            clients = [await BusClient.connect(host, port) for host in hosts]
            buses = [await BusClient.connect(host, port + 10000) for host in hosts]
            for bus, node in zip(buses, nodes):
                assert isinstance(await _hello(bus, node), list)

            async def ship(source: int, target: int, key: bytes) -> object:
                clock = await buses[source].call(b"TKV.REPL.GET", key)
                assert isinstance(clock, bytes)
                return await buses[target].call(b"TKV.REPL.PUT", key, clock)

            assert await clients[0].call(b"SET", b"k", b"first") == SimpleString("OK")
            assert await ship(0, 1, b"k") == 1
            assert await clients[1].call(b"GET", b"k") == b"first"
            assert await ship(0, 1, b"k") == 0  # held already: nothing changes
            # Concurrent writes on both nodes: the same siblings on both.
            await clients[0].call(b"SET", b"k", b"zero")
            await clients[1].call(b"SET", b"k", b"one")
            await ship(0, 1, b"k")
            await ship(1, 0, b"k")
            views = [await client.call(b"TKV.SIBLINGS", b"k") for client in clients]
            assert views[0] == views[1]
            context, values = views[0]
            assert sorted(values) == [b"one", b"zero"]
            assert await clients[0].call(b"GET", b"k") == await clients[1].call(b"GET", b"k") == values[0]
            # Resolved on node 1, shipped back: one value everywhere.
            assert await clients[1].call(b"TKV.PUTCTX", b"k", context, b"merged") == SimpleString("OK")
            await ship(1, 0, b"k")
            for client in clients:
                assert (await client.call(b"TKV.SIBLINGS", b"k"))[1] == [b"merged"]
            assert await buses[0].call(b"TKV.REPL.GET", b"k") == await buses[1].call(b"TKV.REPL.GET", b"k")
            for node in nodes:
                node.shutdown.set()
