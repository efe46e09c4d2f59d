"""A client's session sees its own acknowledged writes (R + W > N), and a
read whose target goes silent asks a spare member, in the simulated cluster.

* Read-modify-write on a coordinator that missed writes: node 3 is down
  while keys are SET through node 1 (W=2: nodes 1 and 2 hold them); node 3
  restarts, and a client of node 3 sends DEL, INCR, APPEND, SETNX, EXISTS
  and SET GET. Each must act on the state a read quorum holds (DEL answers
  1 and the key is gone everywhere; INCR counts from the written value...),
  in both write context modes: a non-blind write first gathers R members'
  versions.
* The gathering asks a spare too: the same, with node 3's first other
  target cut off from it (a partition, before anyone has noticed it).
* Spare members for reads: with R=2 of N=3 and the read's other target cut
  off mid-read (a partition no node has noticed yet: the member is still
  believed up), the coordinator asks the third member after
  ``spare after`` and the read succeeds within the write timeout.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from trio_kv.cluster.slots import key_slot
from trio_kv.protocol.replies import Error, SimpleString

from . import determinism
from .cluster import SimCluster, wait_until
from .node import SimNode

OK = SimpleString("OK")
WRITE_TIMEOUT_SECONDS = 2.0


def _other_target(coordinator: SimNode, key: bytes) -> str:
    """The host of the member a quorum read (R=2) of ``key`` on
    ``coordinator`` asks besides itself."""
    running = coordinator.running
    assert running is not None
    view = running.cluster.view()
    preference = view.ring.preference_list(key_slot(key))
    others = [member for member in preference if member != view.myself]
    return others[0].host


def _rmw_run(seed: int, data_root: Path, *, cut_gather_target: bool, **config: object) -> dict[str, object]:
    cluster = SimCluster(seed, data_root, count=3, cluster_write_timeout_seconds=WRITE_TIMEOUT_SECONDS, **config)
    first, _, late = cluster.nodes
    result: dict[str, object] = {}

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await cluster.start_all(nursery)
            await wait_until(cluster.all_up)
            late.crash()
            await wait_until(lambda: cluster.all_up(cluster.nodes[:2]) and not late.up)
            writer = await cluster.client(nursery, first)
            for key, value in [(b"{rmw}d", b"1"), (b"{rmw}n", b"41"), (b"{rmw}a", b"x"), (b"{rmw}s", b"old"), (b"{rmw}e", b"1"),
                               (b"{rmw}g", b"before")]:
                assert await writer.call(b"SET", key, value) == OK
            await late.start(nursery)
            await wait_until(cluster.all_up)
            if cut_gather_target:
                # The keys' other target is cut off from node 3: the gathering
                # must ask the spare (node 3 still believes the member up).
                # (The keys share a slot: one target.)
                cluster.network.partition([late.member.host], [_other_target(late, b"{rmw}d")])
            client = await cluster.client(nursery, late, host="10.0.1.2")
            requests = {
                "del": [b"DEL", b"{rmw}d"], "incr": [b"INCR", b"{rmw}n"], "append": [b"APPEND", b"{rmw}a", b"y"],
                "setnx": [b"SETNX", b"{rmw}s", b"new"], "exists": [b"EXISTS", b"{rmw}e"],
                "set_get": [b"SET", b"{rmw}g", b"after", b"GET"],
            }
            for name, request in requests.items():
                # Each is answered within the write timeout (a spare included).
                with trio.fail_after(WRITE_TIMEOUT_SECONDS):
                    result[name] = await client.call(*request)
            cluster.network.heal()
            reader = await cluster.client(nursery, first, host="10.0.1.3")
            with trio.fail_after(WRITE_TIMEOUT_SECONDS * 3):
                result["after"] = [await reader.call(b"GET", key) for key in (b"{rmw}d", b"{rmw}n", b"{rmw}a", b"{rmw}s", b"{rmw}g")]
            nursery.cancel_scope.cancel()

    determinism.run(seed, main)
    return result


EXPECTED = {
    "del": 1, "incr": 42, "append": 2, "setnx": 0, "exists": 1, "set_get": b"before",
    "after": [None, b"42", b"xy", b"old", b"after"],
}


@pytest.mark.parametrize("context", ["local", "read"])
def test_read_modify_writes_on_a_coordinator_that_missed_writes_act_on_the_quorum_state(
    tmp_path: Path, context: str
) -> None:
    result = _rmw_run(5, tmp_path, cut_gather_target=False, cluster_write_context=context)
    assert result == EXPECTED


def test_the_write_context_gathering_asks_a_spare_when_its_target_is_cut_off(tmp_path: Path) -> None:
    result = _rmw_run(5, tmp_path, cut_gather_target=True)
    assert result == EXPECTED


def test_a_quorum_read_asks_a_spare_member_when_its_target_goes_silent(tmp_path: Path) -> None:
    cluster = SimCluster(7, tmp_path, count=3, cluster_write_timeout_seconds=WRITE_TIMEOUT_SECONDS)
    coordinator = cluster.nodes[0]
    result: dict[str, object] = {}

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await cluster.start_all(nursery)
            await wait_until(cluster.all_up)
            client = await cluster.client(nursery, coordinator)
            assert await client.call(b"SET", b"spare", b"v") == OK
            silent = _other_target(coordinator, b"spare")
            cluster.network.partition([coordinator.member.host], [silent])
            started = trio.current_time()
            with trio.fail_after(WRITE_TIMEOUT_SECONDS + 1):
                result["get"] = await client.call(b"GET", b"spare")
            result["seconds"] = trio.current_time() - started
            running = coordinator.running
            assert running is not None
            # Nobody noticed the partition: the silent member was still believed up.
            result["believed_up"] = silent in {member.host for member in running.cluster.view().up}
            nursery.cancel_scope.cancel()

    determinism.run(7, main)
    assert result["get"] == b"v", result
    assert result["seconds"] < WRITE_TIMEOUT_SECONDS, result
    assert result["believed_up"], result
    assert not isinstance(result["get"], Error)
