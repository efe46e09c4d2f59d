"""Anti-entropy's pacing on the simulated cluster
(server/cluster/anti_entropy.py): the repair rate
(``--cluster-aae-max-keys-per-second``, cluster/repair_rate.py) bounds
the keys each node repairs in any span of simulated time, every peer's
exchange together; and a root difference that is gone when the roots are
read again (a write that had reached one replica first) is not repaired
(Riak's second root check)."""

from __future__ import annotations

from pathlib import Path

import trio

from trio_kv.cluster.repair_rate import RepairRate
from trio_kv.commands.session import Session
from trio_kv.commands.wire import RESP
from trio_kv.server.cluster.anti_entropy import AAE_TABLE
from trio_kv.store.engine import Job, Store, run_batch
from trio_kv.store.local_control import LocalControl

from . import determinism
from .cluster import SimCluster, wait_until
from .test_sim_anti_entropy import CONVERGE_WITHIN_SECONDS, tree_roots, write_directly

RATE_KEYS_PER_SECOND = 100
BURST_KEYS = 25


class RecordedRate(RepairRate):
    """The rate, with each grant recorded: (when the keys go, how many)."""

    def __init__(self, log: list[tuple[float, int]]) -> None:
        super().__init__(RATE_KEYS_PER_SECOND, BURST_KEYS)
        self.log = log

    def reserve(self, now_seconds: float, keys: int) -> float:
        wait = super().reserve(now_seconds, keys)
        self.log.append((now_seconds + wait, min(keys, BURST_KEYS)))
        return wait


def test_each_node_repairs_at_most_its_rate(tmp_path: Path) -> None:
    count = 600
    cluster = SimCluster(13, tmp_path, count=3, cluster_aae_interval_seconds=1.0)
    granted: list[list[tuple[float, int]]] = [[] for _ in cluster.nodes]  # per node: (when, keys)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await cluster.start_all(nursery)
            await wait_until(cluster.all_up)
            for index, node in enumerate(cluster.nodes):
                assert node.running is not None and node.running.handle.anti_entropy is not None
                node.running.handle.anti_entropy.rate = RecordedRate(granted[index])
            stores = [node.running.store for node in cluster.nodes if node.running is not None]
            write_directly(stores[0], count)
            started = trio.current_time()
            with trio.fail_after(60):
                await wait_until(lambda: len({tuple(tree_roots(store)) for store in stores}) == 1)
            print(f"anti-entropy at {RATE_KEYS_PER_SECOND} keys/s a node: {count} keys on 2 replicas in"
                  f" {trio.current_time() - started:.1f} s (simulated)")
            nursery.cancel_scope.cancel()

    determinism.run(13, main)
    assert sum(keys for log in granted for _, keys in log) >= 2 * count
    for log in granted:
        for i, (start, _) in enumerate(log):
            total = 0
            for end, keys in log[i:]:
                total += keys
                assert total <= RATE_KEYS_PER_SECOND * (end - start) + BURST_KEYS + 1e-6


def _put_directly(store: Store, clocks: list[tuple[bytes, bytes]]) -> None:
    session = Session(1, store, LocalControl(store), wire=RESP)
    session.authenticated = True
    run_batch(store, [Job(session, AAE_TABLE, [[b"TKV.REPL.PUT", key, clock] for key, clock in clocks], 0.0)])


def test_a_root_difference_gone_by_the_second_look_is_not_repaired(tmp_path: Path) -> None:
    cluster = SimCluster(17, tmp_path, count=3, cluster_aae_interval_seconds=1.0)
    seen: dict[str, int] = {}

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await cluster.start_all(nursery)
            await wait_until(cluster.all_up)
            stores = [node.running.store for node in cluster.nodes if node.running is not None]
            write_directly(stores[0], 20)  # on node 0 only, as a write whose replication is on its way
            versions = stores[0].versions
            assert versions is not None
            clocks = [(key, versions.clock_of(key)) for key in versions.keys()]
            for node in cluster.nodes:
                assert node.running is not None and node.running.handle.anti_entropy is not None
                anti_entropy = node.running.handle.anti_entropy
                differing_roots = anti_entropy._differing_roots

                async def first_look(member, partitions, differing_roots=differing_roots):  # type: ignore[no-untyped-def]
                    differing = await differing_roots(member, partitions)
                    if differing and not seen:
                        # The write's replication lands between the two looks.
                        seen["first_look_differing"] = len(differing)
                        for store in stores[1:]:
                            _put_directly(store, clocks)  # type: ignore[arg-type]
                    return differing

                anti_entropy._differing_roots = first_look  # type: ignore[method-assign]
            with trio.fail_after(CONVERGE_WITHIN_SECONDS):
                await wait_until(lambda: len({tuple(tree_roots(store)) for store in stores}) == 1 and bool(seen))
            await trio.sleep(3.5)  # more rounds: nothing left to repair
            for node in cluster.nodes:
                assert node.running is not None and node.running.handle.anti_entropy is not None
                counts = node.running.handle.anti_entropy.statistics()
                for name in ("segments_requests", "keys_requests", "repair_requests", "keys_repaired"):
                    seen[name] = seen.get(name, 0) + counts[name]
                seen["partitions_settled"] = seen.get("partitions_settled", 0) + counts["partitions_settled"]
            nursery.cancel_scope.cancel()

    determinism.run(17, main)
    assert seen["first_look_differing"] > 0
    assert seen["partitions_settled"] >= seen["first_look_differing"]
    assert seen["segments_requests"] == seen["keys_requests"] == seen["repair_requests"] == seen["keys_repaired"] == 0
