"""The cluster bus in one process: nodes on their own loopback addresses
form a full mesh; the bus speaks only TKV.* after the handshake; the secret
is proven, never sent; mismatched peers are refused; nothing opens
without --cluster-enabled."""

from __future__ import annotations

import functools
import logging
import socket

import pytest
import trio
import trio.testing

from trio_kv.cluster.handshake import PROTOCOL_VERSION, Hello, dialer_proof, listener_proof, new_nonce, proof_ok
from trio_kv.config import Config
from trio_kv.protocol.replies import Error, SimpleString
from trio_kv.server.cluster.link import LinkDown
from trio_kv.server.cluster.peer_link import PeerLink
from trio_kv.server.lifecycle import serve

from .cluster_nodes import BusClient, free_cluster_port, node_hosts, seeds_of, start_node, wait_until

WAIT_SECONDS = 15


def _all_up(nodes) -> bool:
    return all(len(node.cluster.node.view().up) == len(nodes) for node in nodes)


async def _mesh(nursery: trio.Nursery, count: int = 3, **overrides):
    hosts = node_hosts(count)
    port = free_cluster_port(hosts)
    seeds = seeds_of(hosts, port)
    nodes = [await start_node(nursery, host, port, seeds, **overrides) for host in hosts]
    return hosts, port, nodes


async def test_three_nodes_form_a_full_mesh_and_learn_each_others_ids() -> None:
    with trio.fail_after(WAIT_SECONDS):
        async with trio.open_nursery() as nursery:
            hosts, port, nodes = await _mesh(nursery)
            await wait_until(lambda: _all_up(nodes))
            ids = {node.cluster.node.myself: node.cluster.node.node_id for node in nodes}
            for node in nodes:
                view = node.cluster.node.view()
                assert dict(view.node_ids) == ids  # learned in the handshake, not placeholders
                links = node.cluster.node.link_statistics()
                assert [link.state for link in links] == ["connected", "connected"]
                await wait_until(lambda: all(link.last_ping_rtt_seconds is not None
                                             for link in node.cluster.node.link_statistics()))
            # CLUSTER answers from the bus's view: every member with its real id,
            # each link in CLUSTER LINKS, the bus's messages in CLUSTER INFO.
            client = await BusClient.connect(hosts[0], port)
            listing = await client.call(b"CLUSTER", b"NODES")
            assert isinstance(listing, bytes)
            assert sorted(line.split()[0].decode() for line in listing.splitlines()) == sorted(ids.values())
            links = await client.call(b"CLUSTER", b"LINKS")
            assert isinstance(links, list) and len(links) == 2
            assert {dict(zip(link[::2], link[1::2]))[b"node"].decode() for link in links} == (
                set(ids.values()) - {nodes[0].cluster.node.node_id}
            )
            info = await client.call(b"CLUSTER", b"INFO")
            assert isinstance(info, bytes) and b"cluster_known_nodes:3" in info
            assert b"cluster_stats_messages_sent:0\r\n" not in info
            for node in nodes:
                node.shutdown.set()


async def test_the_bus_refuses_non_tkv_commands_and_closes() -> None:
    with trio.fail_after(WAIT_SECONDS):
        async with trio.open_nursery() as nursery:
            hosts, port, nodes = await _mesh(nursery, count=2)
            client = await BusClient.connect(hosts[0], port + 10000)
            reply = await client.call(b"SET", b"k", b"v")
            assert isinstance(reply, Error) and "only TKV.*" in reply.message
            assert await client.closed_by_peer()
            # An unauthenticated write-side command: refused too (needs the handshake).
            client = await BusClient.connect(hosts[0], port + 10000)
            assert await client.call(b"TKV.PING") == [b"PONG", 1, nodes[0].cluster.node.ring_hash.encode()]
            reply = await client.call(b"TKV.AUTH", b"00")
            assert isinstance(reply, Error) and reply.message.startswith("TKVREFUSED")
            assert await client.closed_by_peer()
            # The client port does not know the bus's commands.
            plain = await BusClient.connect(hosts[0], port)
            reply = await plain.call(b"TKV.PING")
            assert isinstance(reply, Error) and "unknown command" in reply.message
            for node in nodes:
                node.shutdown.set()


async def test_tkv_ring_without_a_secret_is_readable_for_debugging() -> None:
    with trio.fail_after(WAIT_SECONDS):
        async with trio.open_nursery() as nursery:
            hosts, port, nodes = await _mesh(nursery)
            await wait_until(lambda: _all_up(nodes))
            client = await BusClient.connect(hosts[1], port + 10000)
            document = await client.call(b"TKV.RING")
            assert isinstance(document, list)
            fields = dict(zip(document[::2], document[1::2]))
            assert fields[b"epoch"] == 1 and fields[b"partitions"] == 64 and fields[b"replicas"] == 3
            assert sorted(member[0] for member in fields[b"members"]) == [f"{h}:{port}".encode() for h in sorted(hosts)]
            assert all(member[2] == b"up" for member in fields[b"members"])
            assert len(fields[b"preference_lists"]) == 64
            for node in nodes:
                node.shutdown.set()


async def _handshake(client: BusClient, node, secret: str | None) -> object:
    """The dialing side, by hand: HELLO as a member (the node's own peer address), then AUTH."""
    cluster = node.cluster.node
    peer_address = next(member for member in cluster.ring.members if member != cluster.myself).address
    mine = Hello(PROTOCOL_VERSION, cluster.cluster_name, "c" * 40, peer_address, cluster.ring_hash, new_nonce())
    reply = await client.call(b"TKV.HELLO", *mine.to_args())
    assert isinstance(reply, list), reply
    theirs = Hello.from_args(reply[:6])
    if secret is not None:
        # The listener proves the secret too (checked with the right one).
        assert proof_ok(listener_proof("right secret", mine, theirs), reply[6].decode())
    return await client.call(b"TKV.AUTH", dialer_proof(secret, mine, theirs).encode())


async def test_a_secret_gates_everything_but_the_handshake() -> None:
    with trio.fail_after(WAIT_SECONDS):
        async with trio.open_nursery() as nursery:
            hosts, port, nodes = await _mesh(nursery, count=2, cluster_secret="right secret")
            await wait_until(lambda: _all_up(nodes))  # same secret: they mesh
            bus = (hosts[0], port + 10000)
            client = await BusClient.connect(*bus)
            reply = await client.call(b"TKV.PING")
            assert isinstance(reply, Error) and "needs the bus handshake" in reply.message
            assert await client.closed_by_peer()
            wrong = await BusClient.connect(*bus)
            reply = await _handshake(wrong, nodes[0], "wrong secret")
            assert isinstance(reply, Error) and "wrong cluster secret" in reply.message
            assert await wrong.closed_by_peer()
            right = await BusClient.connect(*bus)
            assert await _handshake(right, nodes[0], "right secret") == SimpleString("OK")
            ping = await right.call(b"TKV.PING")
            assert isinstance(ping, list) and ping[0] == b"PONG"
            for node in nodes:
                node.shutdown.set()


async def test_peers_with_another_secret_name_or_ring_are_refused_with_a_logged_reason(caplog) -> None:
    caplog.set_level(logging.WARNING)
    hosts = node_hosts(2)
    port = free_cluster_port(hosts)
    seeds = seeds_of(hosts, port)
    cases = [
        ({"cluster_secret": "one"}, {"cluster_secret": "two"}, "wrong cluster secret"),
        ({"cluster_secret": "one"}, {}, "cluster secret"),
        ({"cluster_name": "a"}, {"cluster_name": "b"}, "cluster name"),
        ({"cluster_partitions": 64}, {"cluster_partitions": 32}, "ring hash"),
    ]
    for first, second, reason in cases:
        caplog.clear()
        with trio.fail_after(WAIT_SECONDS):
            async with trio.open_nursery() as nursery:
                a = await start_node(nursery, hosts[0], port, seeds, **first)
                b = await start_node(nursery, hosts[1], port, seeds, **second)
                links = [a.cluster.node.links, b.cluster.node.links]
                await wait_until(lambda: all(reason in link.last_error for group in links for link in group.values()))
                assert len(a.cluster.node.view().up) == 1 and len(b.cluster.node.view().up) == 1
                assert any(reason in record.getMessage() for record in caplog.records)
                a.shutdown.set()
                b.shutdown.set()


class _RecordingProxy:
    """Forwards a TCP connection to ``target`` and keeps every byte both ways."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.captured = bytearray()

    async def serve(self, client: trio.SocketStream) -> None:
        server = await trio.open_tcp_stream(*self.target)

        async def pump(source: trio.SocketStream, sink: trio.SocketStream) -> None:
            try:
                while data := await source.receive_some(65536):
                    self.captured += data
                    await sink.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            await trio.aclose_forcefully(sink)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(pump, client, server)
            nursery.start_soon(pump, server, client)


async def test_the_secret_never_crosses_the_wire() -> None:
    secret = "correct horse battery staple"
    with trio.fail_after(WAIT_SECONDS):
        async with trio.open_nursery() as nursery:
            hosts, port, nodes = await _mesh(nursery, count=2, cluster_secret=secret)
            await wait_until(lambda: _all_up(nodes))
            # A second link from node 0 to node 1, through a recording proxy
            # on node 1's address (a link dials its member's host).
            node0 = nodes[0].cluster.node
            target = next(member for member in node0.ring.members if member != node0.myself)
            proxy = _RecordingProxy((target.host, port + 10000))
            listeners = await nursery.start(functools.partial(trio.serve_tcp, proxy.serve, 0, host=target.host))
            proxy_port = listeners[0].socket.getsockname()[1]
            link = PeerLink(target, node0, node_timeout_seconds=1.0, bus_port_offset=proxy_port - target.port)
            nursery.start_soon(link.run)
            await wait_until(lambda: link.connected)
            reply = await link.request([b"TKV.PING"])
            assert isinstance(reply, list) and reply[0] == b"PONG"
            captured = bytes(proxy.captured)
            assert b"TKV.AUTH" in captured and b"TKV.HELLO" in captured
            assert secret.encode() not in captured
            assert secret.encode().hex().encode() not in captured
            for node in nodes:
                node.shutdown.set()
            nursery.cancel_scope.cancel()


async def test_without_cluster_enabled_no_bus_port_opens() -> None:
    hosts = node_hosts(1)
    port = free_cluster_port(hosts)
    with trio.fail_after(WAIT_SECONDS):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(functools.partial(serve, Config(host=hosts[0], port=port, appendonly=False)))
            assert server.bus is None and server.cluster is None
            with pytest.raises(OSError):
                await trio.open_tcp_stream(hosts[0], port + 10000)
            server.shutdown.set()


async def test_a_client_password_does_not_gate_the_bus() -> None:
    # --requirepass is for clients; peers prove the cluster secret instead.
    with trio.fail_after(WAIT_SECONDS):
        async with trio.open_nursery() as nursery:
            hosts, port, nodes = await _mesh(nursery, count=2, requirepass="client password")
            await wait_until(lambda: _all_up(nodes))
            plain = await BusClient.connect(hosts[0], port)
            reply = await plain.call(b"GET", b"k")
            assert isinstance(reply, Error) and reply.message.startswith("NOAUTH")
            for node in nodes:
                node.shutdown.set()


async def test_another_protocol_version_is_refused_at_the_listener() -> None:
    with trio.fail_after(WAIT_SECONDS):
        async with trio.open_nursery() as nursery:
            hosts, port, nodes = await _mesh(nursery, count=2)
            cluster = nodes[0].cluster.node
            hello = Hello(PROTOCOL_VERSION + 1, cluster.cluster_name, "c" * 40, f"{hosts[1]}:{port}",
                          cluster.ring_hash, new_nonce())
            client = await BusClient.connect(hosts[0], port + 10000)
            reply = await client.call(b"TKV.HELLO", *hello.to_args())
            assert isinstance(reply, Error) and "protocol version" in reply.message
            assert await client.closed_by_peer()
            for node in nodes:
                node.shutdown.set()


async def test_a_stopped_peer_fails_requests_at_once_and_is_marked_down() -> None:
    with trio.fail_after(WAIT_SECONDS):
        async with trio.open_nursery() as nursery:
            hosts, port, nodes = await _mesh(nursery, count=2, cluster_node_timeout_seconds=0.5)
            await wait_until(lambda: _all_up(nodes))
            node0 = nodes[0].cluster.node
            link = next(iter(node0.links.values()))
            reply = await link.request_many([[b"TKV.PING"], [b"TKV.RING"]])
            assert reply[0][0] == b"PONG" and isinstance(reply[1], list)
            nodes[1].shutdown.set()
            await wait_until(lambda: not link.connected)
            with pytest.raises(LinkDown) as refused:
                await link.request([b"TKV.PING"])
            assert not refused.value.sent
            await wait_until(lambda: len(node0.view().up) == 1)
            assert link.statistics().state in ("connecting", "backoff")
            nodes[0].shutdown.set()


async def test_bus_connections_have_tcp_keepalive_both_ways() -> None:
    # A peer that vanishes without a FIN must not leave its connection open for hours.
    with trio.fail_after(WAIT_SECONDS):
        async with trio.open_nursery() as nursery:
            hosts, port, nodes = await _mesh(nursery, count=2, cluster_node_timeout_seconds=2.0)
            await wait_until(lambda: _all_up(nodes))
            # Outbound: the link's stream; inbound: a raw client seen from the server side.
            link = next(iter(nodes[0].cluster.node.links.values()))
            outbound = link._link.stream.socket  # type: ignore[union-attr]
            assert outbound.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert outbound.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 2
            client = await BusClient.connect(hosts[1], port + 10000)
            await client.call(b"TKV.PING")
            inbound = [
                connection.stream.socket
                for connection in nodes[1].cluster.inbound.connections.values()
                if connection.stream.socket.getpeername() == client.stream.socket.getsockname()
            ]
            assert len(inbound) == 1
            assert inbound[0].getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert inbound[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3
            for node in nodes:
                node.shutdown.set()
