"""A crashed simulated node restarts from its fsynced bytes only.

The node runs ``appendfsync everysec`` so written-but-unsynced bytes
exist: a client SETs keys one after another (each acknowledged after its
write(), the everysec promise), the node crashes at a seeded moment, and
the crash keeps a seeded cut of the log between what was fsynced and what
was written (a torn tail included). After the restart the keys present
are exactly a prefix of the acknowledged writes (the log replays in
order, the torn record is dropped), that prefix covers every write
acknowledged before the last fsync, and with this seed some acknowledged
writes were lost (what everysec allows, and proof the cut happened).
"""

from __future__ import annotations

from pathlib import Path

import trio

from trio_kv.protocol.replies import SimpleString

from . import determinism
from .cluster import SimCluster, wait_until


def _crash_run(seed: int, data_root: Path) -> tuple[list[str], dict[str, int]]:
    cluster = SimCluster(seed, data_root, count=3, appendfsync="everysec")
    node = cluster.nodes[0]
    result: dict[str, int] = {}

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await cluster.start_all(nursery)
            await wait_until(cluster.all_up)
            client = await cluster.client(nursery, node)
            acked: list[tuple[bytes, float]] = []
            crash_at = trio.current_time() + 2.5 + node.rng.uniform(0, 1)
            index = 0
            while trio.current_time() < crash_at:
                key = b"crash:%04d" % index
                assert await client.call(b"SET", key, b"v") == SimpleString("OK")
                acked.append((key, trio.current_time()))
                index += 1
                await trio.sleep(0.01)
            running = node.running
            assert running is not None
            synced_at = running.flusher.synced_at
            assert synced_at is not None
            node.crash()
            await trio.sleep(1)
            running = await node.start(nursery)
            keyspace = running.store.keyspace
            present = [key for key, _ in acked if keyspace.get(key) is not None]
            keys = [key for key, _ in acked]
            # A prefix of the writes, in order...
            assert present == keys[: len(present)]
            # ...holding every write acknowledged before the last fsync.
            before_sync = sum(1 for _, at in acked if at <= synced_at)
            assert len(present) >= before_sync
            result.update(acked=len(acked), present=len(present), before_sync=before_sync)
            cluster.record(f"crash result {result}")
            nursery.cancel_scope.cancel()

    determinism.run(seed, main)
    return cluster.log, result


def test_a_crashed_node_restarts_from_its_fsynced_bytes_only(tmp_path: Path) -> None:
    log, result = _crash_run(3, tmp_path / "first")
    # This seed's cut lost some acknowledged (everysec) writes.
    assert result["before_sync"] <= result["present"] < result["acked"], result
    assert any(" crash 10.0.0.1:7001: log kept " in line for line in log)
    again, _ = _crash_run(3, tmp_path / "second")
    assert "\n".join(log) == "\n".join(again)
