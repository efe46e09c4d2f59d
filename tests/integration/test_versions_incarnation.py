"""A cluster node that did not stop cleanly writes its versions as a new
actor (cluster/actor.py, store/durability/incarnation.py), so a dot it
issued before losing its log's tail is never issued again for another
value.

* The loss, reproduced in-process: node A writes v1 and it is replicated
  to B; A "loses power" (it restarts from a copy of its data directory
  taken before the write, as a power loss with ``appendfsync everysec``
  leaves it) and writes v2; replicated to B, v2 must stay (the winner or a
  sibling). With the node id as the actor, A issued the dot of v1 again and
  B dropped v2 as already seen.
* Real processes: a SIGTERM restart keeps the actor (a key rewritten after
  it has one actor in its clock), a ``kill -9`` restart makes a new one;
  the node id (CLUSTER MYID, the ``node-id`` file) never changes.
* Versions written by earlier actors are read back after restarts from the
  log and from a snapshot (SAVE), siblings included.
"""

from __future__ import annotations

import functools
import shutil
import signal
from pathlib import Path

import trio

from trio_kv.cluster import dvvset
from trio_kv.cluster.actor import actor_id
from trio_kv.config import Config
from trio_kv.server.lifecycle import serve
from trio_kv.store.durability.incarnation import CLEAN_SHUTDOWN_FILE, INCARNATION_FILE

from ..unit.cluster_store import NODE_B, cluster_session, states, versions_of
from .durable_server import EXIT_SECONDS, Resp, started

TEST_SECONDS = 30
FLAGS = ("--cluster-enabled", "yes", "--appendonly", "yes", "--appendfsync", "everysec")


async def _write_and_ship(config: Config, value: bytes, ship, before_write=lambda: None) -> tuple[str, bool]:
    """Start node A on ``config``, call ``before_write``, SET k ``value``
    through a client, hand A's clock of k to ``ship`` (a replica), stop A
    cleanly. Returns A's node id and what ``ship`` said (whether the
    replica's clock changed)."""
    async with trio.open_nursery() as nursery:
        server = await nursery.start(functools.partial(serve, config))
        client = await trio.to_thread.run_sync(Resp, server.main)
        try:
            await trio.to_thread.run_sync(before_write)
            assert await trio.to_thread.run_sync(client.call, "SET", "k", value) == "OK"
            node_id = await trio.to_thread.run_sync(client.call, "CLUSTER", "MYID")
            assert server.store.versions is not None
            packed = server.store.versions.clock_of(b"k")
            assert packed is not None
            return node_id.decode(), ship(packed)
        finally:
            client.close()
            server.shutdown.set()


async def test_a_node_that_lost_its_log_tail_does_not_reuse_a_dot(tmp_path: Path) -> None:
    data_dir, copy = tmp_path / "a", tmp_path / "a-before-the-write"
    replica = cluster_session(NODE_B)

    def ship(packed: bytes) -> bool:
        changed = versions_of(replica).apply_remote(b"k", packed)
        replica.keyspace.effects.end_command()
        return changed

    def config(directory: Path) -> Config:
        return Config(
            port=0, redis_port=None, cluster_enabled=True, appendonly=True, appendfsync="everysec",
            data_dir=str(directory),
        )

    with trio.fail_after(TEST_SECONDS):
        # The running node's directory just before the write: what a power
        # loss that takes the write's record with it leaves.
        node_id, changed = await _write_and_ship(
            config(data_dir), b"v1", ship, before_write=lambda: shutil.copytree(data_dir, copy)
        )
        assert changed
        again, changed = await _write_and_ship(config(copy), b"v2", ship)
    assert again == node_id  # the same node (CLUSTER MYID), a new actor
    assert changed, "the replica took the restarted node's write as already seen: v2 lost"
    values = sorted(state.data for state in states(replica, b"k") if state is not None)
    assert values == [b"v1", b"v2"]  # concurrent: siblings
    actors = dvvset.ids(dvvset.decode(versions_of(replica).clock_of(b"k") or b""))
    assert sorted(actors) == sorted([actor_id(node_id, 0), actor_id(node_id, 1)])


def _actors(client: Resp, key: str) -> dict[bytes, int]:
    """The key's version vector, from its TKV.SIBLINGS context."""
    context, _ = client.call("TKV.SIBLINGS", key)
    return dict(dvvset.decode_context(context))


def test_a_clean_restart_keeps_the_actor_and_kill_9_makes_a_new_one(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with started(data_dir, *FLAGS) as server:
        with Resp(server.address) as client:
            node_id = client.call("CLUSTER", "MYID").decode()
            assert client.call("SET", "k", "1") == "OK"
            assert _actors(client, "k") == {bytes.fromhex(node_id): 1}
        assert server.terminate(EXIT_SECONDS) == 0
    assert (data_dir / CLEAN_SHUTDOWN_FILE).read_text() == "0\n"
    with started(data_dir, *FLAGS) as server:
        assert not (data_dir / CLEAN_SHUTDOWN_FILE).exists()
        with Resp(server.address) as client:
            assert client.call("SET", "k", "2") == "OK"
            # The same actor's next dot: no growth.
            assert _actors(client, "k") == {bytes.fromhex(node_id): 2}
        server.send_signal(signal.SIGKILL)
        assert server.wait(EXIT_SECONDS) is not None
    assert not (data_dir / CLEAN_SHUTDOWN_FILE).exists()
    with started(data_dir, *FLAGS) as server:
        assert (data_dir / INCARNATION_FILE).read_text() == "1\n"
        with Resp(server.address) as client:
            assert client.call("CLUSTER", "MYID").decode() == node_id
            assert client.call("GET", "k") == b"2"
            assert client.call("SET", "k", "3") == "OK"
            assert _actors(client, "k") == {bytes.fromhex(node_id): 2, actor_id(node_id, 1): 1}
            assert client.call("GET", "k") == b"3"
    assert (data_dir / "node-id").read_text().strip() == node_id


def _picture(client: Resp, keys: list[str]) -> dict[str, object]:
    return {key: (client.call("TKV.SIBLINGS", key), client.call("GET", key)) for key in keys}


def test_versions_of_earlier_actors_survive_log_and_snapshot_restarts(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    keys = ["old", "both", "siblings", "gone", "new"]
    with started(data_dir, *FLAGS) as server:  # incarnation 0
        with Resp(server.address) as client:
            stale, _ = client.call("TKV.SIBLINGS", "siblings")
            for command in (("SET", "old", "o"), ("SET", "both", "b0"), ("SET", "siblings", "s0"), ("SET", "gone", "g")):
                assert client.call(*command) == "OK"
        server.send_signal(signal.SIGKILL)
        assert server.wait(EXIT_SECONDS) is not None
    with started(data_dir, *FLAGS) as server:  # incarnation 1: writes beside incarnation 0's versions
        with Resp(server.address) as client:
            assert client.call("SET", "both", "b1") == "OK"
            assert client.call("TKV.PUTCTX", "siblings", stale, "s1") == "OK"  # did not see s0
            assert client.call("DEL", "gone") == 1
            before_snapshot = _picture(client, keys)
            assert client.call("SAVE") == "OK"  # a snapshot now holds every clock
            assert client.call("SET", "new", "n1") == "OK"  # and the log the rest
            before = _picture(client, keys)
        server.send_signal(signal.SIGKILL)
        assert server.wait(EXIT_SECONDS) is not None
    assert list(data_dir.glob("snapshot.*"))
    assert {key: before[key] for key in keys if key != "new"} == {
        key: before_snapshot[key] for key in keys if key != "new"
    }
    with started(data_dir, *FLAGS) as server:  # incarnation 2
        with Resp(server.address) as client:
            assert _picture(client, keys) == before
            assert sorted(before["siblings"][0][1]) == [b"s0", b"s1"]
            assert before["gone"][0][1] == [None]
            node_id = client.call("CLUSTER", "MYID").decode()
            assert set(_actors(client, "siblings")) == {actor_id(node_id, 0), actor_id(node_id, 1)}
            # A plain write by the third actor supersedes both siblings.
            assert client.call("SET", "siblings", "s2") == "OK"
            assert client.call("TKV.SIBLINGS", "siblings")[1] == [b"s2"]
            assert len(_actors(client, "siblings")) == 3
