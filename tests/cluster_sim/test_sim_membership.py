"""Membership and links under faults in the simulated cluster: every
node's up/down opinion converges after a partition heals, and a run
replays byte for byte from its seed."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import trio

from . import determinism
from .cluster import Faults, SimCluster, wait_until

FLAKY = Faults(latency_min_seconds=0.0005, latency_max_seconds=0.02, stall_probability=0.002, stall_max_seconds=0.5)


def _partition_and_heal(seed: int, data_root: Path) -> list[str]:
    cluster = SimCluster(seed, data_root, count=3, faults=FLAKY)
    # Which node is cut off is the seed's choice.
    a, b, c = random.Random(seed).sample(cluster.nodes, 3)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await cluster.start_all(nursery)
            await wait_until(cluster.all_up)
            cluster.record(f"all up {cluster.opinions()}")
            cluster.network.partition([a.member.host], [b.member.host, c.member.host])
            # Down after the node timeout (2 s) of silence, on both sides.
            majority = sorted([b.member.address, c.member.address])
            await wait_until(lambda: dict(cluster.opinions()) == {
                a.member.address: [a.member.address], b.member.address: majority, c.member.address: majority,
            })
            cluster.record(f"split {cluster.opinions()}")
            await trio.sleep(3)
            cluster.network.heal()
            await wait_until(cluster.all_up)
            cluster.record(f"healed {cluster.opinions()}")
            nursery.cancel_scope.cancel()

    determinism.run(seed, main)
    return cluster.log


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_opinions_converge_after_a_partition_heals_and_the_seed_replays(seed: int, tmp_path: Path) -> None:
    first = _partition_and_heal(seed, tmp_path / "first")
    second = _partition_and_heal(seed, tmp_path / "second")
    assert any(line.split(" ", 1)[1].startswith("healed") for line in first)
    assert "\n".join(first) == "\n".join(second)


def test_another_seed_gives_another_history(tmp_path: Path) -> None:
    """The seed reaches the history (a replay check that ignored it would pass trivially)."""
    assert _partition_and_heal(7, tmp_path / "seven") != _partition_and_heal(8, tmp_path / "eight")
