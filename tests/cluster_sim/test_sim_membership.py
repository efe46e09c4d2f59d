"""Membership and links under faults in the simulated cluster: every
node's up/down opinion converges after a partition heals, and a run
replays byte for byte from its seed."""

from __future__ import annotations

from pathlib import Path

import trio

from . import determinism
from .cluster import Faults, SimCluster, wait_until

FLAKY = Faults(latency_min_seconds=0.0005, latency_max_seconds=0.02, stall_probability=0.002, stall_max_seconds=0.5)


def _partition_and_heal(seed: int, data_root: Path) -> list[str]:
    cluster = SimCluster(seed, data_root, count=3, faults=FLAKY)
    a, b, c = cluster.nodes

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await cluster.start_all(nursery)
            await wait_until(cluster.all_up)
            cluster.record(f"all up {cluster.opinions()}")
            cluster.network.partition([a.member.host], [b.member.host, c.member.host])
            # Down after the node timeout (2 s) of silence, on both sides.
            await wait_until(lambda: cluster.opinions() == [
                (a.member.address, [a.member.address]),
                (b.member.address, sorted([b.member.address, c.member.address])),
                (c.member.address, sorted([b.member.address, c.member.address])),
            ])
            cluster.record(f"split {cluster.opinions()}")
            await trio.sleep(3)
            cluster.network.heal()
            await wait_until(cluster.all_up)
            cluster.record(f"healed {cluster.opinions()}")
            nursery.cancel_scope.cancel()

    determinism.run(seed, main)
    return cluster.log


def test_opinions_converge_after_a_partition_heals_and_the_seed_replays(tmp_path: Path) -> None:
    first = _partition_and_heal(7, tmp_path / "first")
    second = _partition_and_heal(7, tmp_path / "second")
    assert any(line.split(" ", 1)[1].startswith("healed") for line in first)
    assert "\n".join(first) == "\n".join(second)
