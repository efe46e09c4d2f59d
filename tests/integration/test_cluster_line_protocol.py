"""The line protocol in a cluster (three in-process nodes, N=2): SET, GET,
DEL and TTL name their key, so a node forwards those for keys it does not
replicate and reads the others at quorum, as it does RESP's; ``VALUE`` and
``TTL`` lines come back over the bus intact. (The same with real processes
and the real ``nc``: test_cluster_every_node.py, slow.)"""

from __future__ import annotations

import trio

from .cluster_nodes import BusClient, free_cluster_port, node_hosts, seeds_of, start_node, wait_until

WAIT_SECONDS = 30
# Three nodes share this test's event loop on a loaded machine: generous
# timeouts, so a late ping or ack never turns into a down peer or NOREPLICAS.
SLOW_MACHINE = {"cluster_node_timeout_seconds": 5.0, "cluster_write_timeout_seconds": 10.0}
KEYS = [f"line:{i}" for i in range(30)]  # with N=2 of 3, some forwarded by every node (all local: p < 2e-5)


async def _lines(host: str, port: int, requests: list[str]) -> list[str]:
    """One line-protocol connection: send every request, read one reply line each."""
    stream = await trio.open_tcp_stream(host, port)
    async with stream:
        await stream.send_all("".join(request + "\n" for request in requests).encode())
        received = b""
        while received.count(b"\n") < len(requests):
            data = await stream.receive_some(65536)
            assert data, f"closed after {received!r}"
            received += data
    return received.decode().splitlines()


async def _forwarded(host: str, port: int) -> int:
    client = await BusClient.connect(host, port)
    async with client.stream:
        info = await client.call(b"INFO", b"cluster")
    assert isinstance(info, bytes)
    fields = dict(line.split(":", 1) for line in info.decode().splitlines() if ":" in line)
    return int(fields["cluster_forwarded"])


async def test_line_protocol_requests_are_routed_like_resp_ones() -> None:
    with trio.fail_after(WAIT_SECONDS):
        async with trio.open_nursery() as nursery:
            hosts = node_hosts(3)
            port = free_cluster_port(hosts)
            nodes = [await start_node(nursery, host, port, seeds_of(hosts, port), cluster_replicas=2, **SLOW_MACHINE)
                     for host in hosts]
            await wait_until(lambda: all(len(node.cluster.node.view().up) == 3 for node in nodes))
            for writer, host in enumerate(hosts):
                before = await _forwarded(host, port)
                sets = [f'SET {key} "node {writer} {key}"' for key in KEYS]
                assert await _lines(host, port, sets) == ["OK"] * len(KEYS)
                assert 0 < await _forwarded(host, port) - before < len(KEYS)  # some here, some forwarded
                for reader in hosts:
                    replies = await _lines(reader, port, [f"GET {key}" for key in KEYS] + [f"TTL {KEYS[0]}"])
                    assert replies == [f"VALUE node {writer} {key}" for key in KEYS] + ["TTL -1"]
            assert await _lines(hosts[0], port, [f"DEL {key}" for key in KEYS]) == ["OK"] * len(KEYS)
            for reader in hosts[1:]:
                replies = await _lines(reader, port, [f"GET {key}" for key in KEYS] + [f"DEL {KEYS[0]}"])
                assert replies == ["NOT_FOUND"] * (len(KEYS) + 1)
            for node in nodes:
                node.shutdown.set()
