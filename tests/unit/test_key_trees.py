"""A cluster-mode store's Tictac trees (store/key_trees.py): every change
of a key's versions reaches its partition's tree through the effects sink
(local writes, deletes, FLUSHALL, a replica's state, read repair's merge),
the trees equal a rebuild from the stored clocks, replicas holding the
same versions in different bytes have equal trees, and a restart rebuilds
them from the log."""

from __future__ import annotations

from pathlib import Path

from trio_kv.cluster.tictac import SEGMENT_COUNT
from trio_kv.config import Config
from trio_kv.store.key_trees import KeyTrees
from trio_kv.store.store import Store

from ..fake_clock import FakeClock
from .cluster_store import NODE_A, NODE_B, close_durable, cluster_session, open_durable, versions_of
from .redis_session import make_session, run
from .test_versions_replication import pair, ship


def trees_of(session) -> KeyTrees:
    return versions_of(session).trees


def snapshot(trees: KeyTrees) -> list[tuple[int, list[int], list[tuple[bytes, int]]]]:
    return [
        (tree.root, list(tree.segments), sorted(tree.entries(range(SEGMENT_COUNT)))) for tree in trees.trees
    ]


def rebuilt(trees: KeyTrees) -> list[tuple[int, list[int], list[tuple[bytes, int]]]]:
    before = snapshot(trees)
    trees.rebuild()
    after = snapshot(trees)
    assert snapshot(trees) == after
    return before


def test_every_kind_of_write_reaches_the_trees_and_equals_a_rebuild() -> None:
    session = cluster_session()
    trees = trees_of(session)
    assert trees.statistics()["aae_tree_keys"] == 0
    run(session, "SET a 1", "SET b 2", "MSET c 3 d 4", "APPEND a x", "HSET h f v", "INCR n", "EXPIRE b 100")
    assert trees.statistics()["aae_tree_keys"] == 6
    first = snapshot(trees)
    run(session, "DEL c")  # a tombstone: the key stays, with new versions
    assert trees.statistics()["aae_tree_keys"] == 6
    after_delete = snapshot(trees)
    assert after_delete != first
    assert rebuilt(trees) == snapshot(trees)
    run(session, "MULTI", "SET e 5", "DEL a", "EXEC", "FLUSHALL")
    assert trees.statistics()["aae_tree_keys"] == 7
    assert rebuilt(trees) == snapshot(trees)


def test_a_key_sits_in_its_partition_and_segment() -> None:
    session = cluster_session()
    trees = trees_of(session)
    run(session, "SET {user}:1 v")
    partition = trees.partition_of(b"{user}:1")
    assert partition == trees.partition_of(b"user")
    tree = trees.trees[partition]
    assert tree.key_count == 1 and tree.root != 0
    assert all(other.key_count == 0 for index, other in enumerate(trees.trees) if index != partition)


def test_replicas_with_the_same_versions_have_the_same_trees() -> None:
    a, b, clock = pair()
    run(a, "SET k v", "SET gone x", "DEL gone", "SET t v PX 10")
    clock.advance(20)  # t expires on A (held there); B gets it already expired (not held)
    for key in (b"k", b"gone", b"t"):
        ship(a, b, key)
    assert versions_of(a).stored(b"t") != versions_of(b).stored(b"t")  # different bytes...
    assert snapshot(trees_of(a)) == snapshot(trees_of(b))  # ...the same versions
    run(b, "SET k w")  # B moves on: the trees differ in k's segment only
    mine, theirs = trees_of(a), trees_of(b)
    partition = mine.partition_of(b"k")
    assert mine.trees[partition].root != theirs.trees[partition].root
    ship(b, a, b"k")
    assert snapshot(mine) == snapshot(theirs)


def test_concurrent_writes_merged_both_ways_converge() -> None:
    a, b, _ = pair()
    run(a, "SET k from-a")
    run(b, "SET k from-b")  # concurrent: siblings once merged
    assert snapshot(trees_of(a)) != snapshot(trees_of(b))
    ship(a, b, b"k")
    ship(b, a, b"k")
    assert snapshot(trees_of(a)) == snapshot(trees_of(b))


def test_a_restart_rebuilds_the_trees_from_the_log(tmp_path: Path) -> None:
    clock = FakeClock()
    session = open_durable(tmp_path, NODE_A, clock)
    run(session, "SET a 1", "SET b 2", "DEL a", "HSET h f v")
    before = snapshot(trees_of(session))
    close_durable(session)
    again = open_durable(tmp_path, NODE_A, clock)
    assert snapshot(trees_of(again)) == before
    run(again, "SET c 3")  # still subscribed after the load
    assert trees_of(again).statistics()["aae_tree_keys"] == 4
    close_durable(again)


def test_without_cluster_mode_there_are_no_trees() -> None:
    session, _ = make_session(Config())
    assert session.store.versions is None
    assert not session.store.keyspace.effects.subscribed
    run(session, "SET a 1")
    assert Store(Config()).versions is None


def test_the_partition_count_follows_the_config() -> None:
    session = cluster_session(NODE_B, config=Config(cluster_enabled=True, cluster_partitions=16))
    assert len(trees_of(session).trees) == 16
