"""A simulated cluster: N ``SimNode``\\ s on one ``SimNetwork``, clients
that reach them through it, and the waits the tests need (all on the mock
clock, all bounded)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import trio

from trio_kv.cluster.ring import Member
from trio_kv.server.cluster.link import Link, LinkError

from .network import Faults, SimNetwork
from .node import SimNode

BASE_PORT = 7001
POLL_SECONDS = 0.05


def hosts_of(count: int) -> list[str]:
    return [f"10.0.0.{index + 1}" for index in range(count)]


class SimCluster:
    def __init__(
        self, seed: int, data_root: Path, count: int = 3, faults: Faults | None = None,
        node_config: Sequence[dict[str, object]] = (), **config: object,
    ) -> None:
        # node_config[i]: options for node i only, over ``config`` (a clock offset).
        self.seed = seed
        self.network = SimNetwork(seed, faults)
        self.members = [Member(host, BASE_PORT) for host in hosts_of(count)]
        seeds = tuple(member.address for member in self.members)
        self.nodes = [
            SimNode(
                self.network, member, seeds, data_root / f"node{index}", seed, skew_ms=index * 3,
                **{**config, **(node_config[index] if index < len(node_config) else {})},
            )
            for index, member in enumerate(self.members)
        ]

    @property
    def log(self) -> list[str]:
        return self.network.log

    def record(self, event: str) -> None:
        self.network.record(event)

    async def start_all(self, nursery: trio.Nursery) -> None:
        for node in self.nodes:
            await node.start(nursery)

    def opinions(self) -> list[tuple[str, list[str]]]:
        """Each running node's up set, as addresses."""
        return [
            (node.member.address, sorted(member.address for member in node.running.cluster.view().up))
            for node in self.nodes if node.running is not None
        ]

    def all_up(self, nodes: Sequence[SimNode] | None = None) -> bool:
        nodes = self.nodes if nodes is None else nodes
        everyone = frozenset(node.member for node in nodes)
        return all(
            node.running is not None and everyone <= node.running.cluster.view().up for node in nodes
        )

    async def client(self, nursery: trio.Nursery, node: SimNode, host: str = "10.0.1.1") -> SimClient:
        stream = await self.network.connect(host, (node.member.host, node.member.port))
        link = Link(stream, f"client->{node.member.address}")
        nursery.start_soon(link.run)
        return SimClient(link)


class SimClient:
    """A RESP client on one connection (a pipelined ``Link``)."""

    def __init__(self, link: Link) -> None:
        self.link = link

    async def call(self, *args: bytes) -> object:
        return await self.link.request(list(args))

    async def close(self) -> None:
        self.link.close("client done")
        await self.link.stream.aclose()


async def wait_until(predicate: Callable[[], bool], *, seconds: float = 60.0) -> None:
    """Poll ``predicate`` on the mock clock; ``TooSlowError`` after ``seconds``."""
    with trio.fail_after(seconds):
        while not predicate():
            await trio.sleep(POLL_SECONDS)


__all__ = ["Faults", "LinkError", "SimCluster", "SimClient", "wait_until"]
