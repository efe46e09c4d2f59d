"""A delete whose key holds a live sibling behind a winning tombstone, in
the simulated cluster (the kill -9 tests' one session anomaly, made
deterministic).

The shape: a session SETs a key and gets ``OK``; another client's DEL of
the key, concurrent with that SET (neither saw the other), left a
tombstone whose timestamp is greater (its node's clock runs ahead), so the
key's versions are ``{tombstone (winner), the session's value}`` and GET
answers nil. The session then DELs the key. The DEL gathers a read
quorum's versions first (cluster/write_context.py), so it sees both
siblings; it must resolve what it saw (a tombstone whose context covers
every sibling, as Riak's delete puts a tombstone with the context of the
fetch before it) and answer 1: a live value was there and is gone. Before
the fix it found the keyspace without the key (the tombstone won the
merge), answered 0, wrote nothing, and the session's value stayed a
sibling that its later reads showed: a read-your-writes violation.

How the state is built, with no timing luck, in both write context modes:
node 3's clock runs 2 s ahead and node 3 is cut off from the others. The
other client's DEL runs on node 3 at consistency ONE (acknowledged there
alone); the session's SET on node 1 (QUORUM: nodes 1 and 2; with
``--cluster-write-context read`` it gathers from them first) has not seen
the tombstone. The network heals and the session switches to consistency
ALL, so its reads and its DEL's gathering ask node 3 too: they see both
siblings, the tombstone winning.

The other read-modify-writes on the same sibling shape act on the winner
(absent) and, since they write, supersede every sibling they saw: INCR
counts from 0, APPEND starts from nothing, SETNX sets, GETDEL answers nil
and deletes the live sibling (as DEL), UNLINK is DEL. FLUSHDB (a
multi-node cluster's: the partitions its node is listed first for) deletes
such a key too.
"""

from __future__ import annotations

from pathlib import Path

import trio

from trio_kv.cluster.slots import key_slot
from trio_kv.protocol.replies import SimpleString

from . import determinism
from .cluster import SimCluster, wait_until
from .node import SimNode

OK = SimpleString("OK")
WRITE_TIMEOUT_SECONDS = 2.0
# Node 3's wall clock is this far ahead: its tombstones beat concurrent writes made after them.
AHEAD_MS = 2000
SEED = 11

# request -> (key, what it answers, the key's siblings afterwards as TKV.SIBLINGS shows them)
CASES = {
    "del": ([b"DEL", b"{sib}d"], 1, [None]),
    "unlink": ([b"UNLINK", b"{sib}u"], 1, [None]),
    "getdel": ([b"GETDEL", b"{sib}g"], None, [None]),
    "incr": ([b"INCR", b"{sib}n"], 1, [b"1"]),
    "append": ([b"APPEND", b"{sib}a", b"y"], 1, [b"y"]),
    "setnx": ([b"SETNX", b"{sib}s", b"new"], 1, [b"new"]),
}


def _holds(node: SimNode, key: bytes) -> bool:
    running = node.running
    assert running is not None
    return running.store.keyspace.get(key) is not None


def _flush_key(nodes: list[SimNode]) -> tuple[bytes, SimNode]:
    """A key whose first preference-list member is not the first of the
    cases' slot, and that member (FLUSHDB there leaves the cases alone)."""
    running = nodes[0].running
    assert running is not None
    ring = running.cluster.view().ring
    cases_first = ring.preference_list(key_slot(b"{sib}"))[0]
    for index in range(1000):
        key = b"{fl%d}k" % index
        first = ring.preference_list(key_slot(key))[0]
        if first != cases_first:
            return key, next(node for node in nodes if node.member == first)
    raise AssertionError("every key has the same first member")


def _run(data_root: Path, **config: object) -> dict[str, object]:
    cluster = SimCluster(SEED, data_root, count=3, cluster_write_timeout_seconds=WRITE_TIMEOUT_SECONDS, **config)
    first, second, ahead = cluster.nodes
    ahead.skew_ms = AHEAD_MS
    result: dict[str, object] = {}

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await cluster.start_all(nursery)
            await wait_until(cluster.all_up)
            flushed, flusher = _flush_key(cluster.nodes)
            keys = [request[1] for request, _, _ in CASES.values()] + [flushed]
            session = await cluster.client(nursery, first, host="10.0.1.1")
            other = await cluster.client(nursery, ahead, host="10.0.1.2")
            for key in keys:
                assert await session.call(b"SET", key, b"old") == OK
            # Every replica holds "old" before the cut (N=3: all three).
            await wait_until(lambda: all(_holds(node, key) for node in cluster.nodes for key in keys))
            cluster.network.partition([ahead.member.host], [first.member.host, second.member.host])
            with trio.fail_after(WRITE_TIMEOUT_SECONDS * 3):
                assert await other.call(b"TKV.CONSISTENCY", b"ONE") == OK
                for key in keys:
                    assert await other.call(b"DEL", key) == 1  # node 3 only: nobody else has seen it
                for key in keys:
                    value = b"5" if key == b"{sib}n" else b"mine"
                    assert await session.call(b"SET", key, value) == OK  # nodes 1 and 2
            cluster.network.heal()
            await wait_until(cluster.all_up)
            with trio.fail_after(WRITE_TIMEOUT_SECONDS * 3):
                assert await session.call(b"TKV.CONSISTENCY", b"ALL") == OK
                # The tombstone (node 3's clock, ahead) wins the read: the session's SET is a sibling.
                result["before"] = {key: await session.call(b"TKV.SIBLINGS", key) for key in keys}
                for name, (request, _, _) in CASES.items():
                    result[name] = await session.call(*request)
                result["after"] = {key: (await session.call(b"TKV.SIBLINGS", key))[1] for key in keys}
                # FLUSHDB on the node listed first for the flushed key (and not for the others):
                # its share of the keys goes, a live sibling behind a tombstone too.
                result["flushdb"] = await (await cluster.client(nursery, flusher, host="10.0.1.4")).call(b"FLUSHDB")
            # Another coordinator, reading all three replicas, sees the resolved state.
            late = await cluster.client(nursery, ahead, host="10.0.1.3")
            with trio.fail_after(WRITE_TIMEOUT_SECONDS * 3):
                await late.call(b"TKV.CONSISTENCY", b"ALL")
                result["everywhere"] = {key: (await late.call(b"TKV.SIBLINGS", key))[1] for key in keys}
            nursery.cancel_scope.cancel()

    determinism.run(SEED, main)
    return result


def _check(result: dict[str, object]) -> None:
    before = result["before"]
    assert isinstance(before, dict)
    for key, (_context, values) in before.items():
        # The state the test means to build: the tombstone wins, the session's value is a sibling.
        assert values[0] is None and len(values) == 2 and values[1] in (b"mine", b"5"), (key, values)
    for name, (request, answer, _) in CASES.items():
        assert result[name] == answer, (name, result[name])
    expected = {request[1]: siblings for request, _, siblings in CASES.values()}
    after = result["after"]
    assert isinstance(after, dict)
    [flushed] = set(after) - set(expected)
    assert after == {**expected, flushed: [None, b"mine"]}  # not deleted yet
    assert result["flushdb"] == OK
    assert result["everywhere"] == {**expected, flushed: [None]}


def test_a_delete_resolves_a_live_sibling_behind_a_winning_tombstone(tmp_path: Path) -> None:
    _check(_run(tmp_path))


def test_the_same_with_write_context_read(tmp_path: Path) -> None:
    _check(_run(tmp_path, cluster_write_context="read"))
