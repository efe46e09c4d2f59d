"""Forwarding through a node that does not replicate a key, with real
processes (three nodes, N=2, so each key has one node outside its
preference list): a RESP3 client gets RESP3 replies (the same bytes as
from a node that coordinates the key itself, and Redis' shapes), and
MULTI/EXEC and WATCH leave no copy on that node (the transaction runs
whole on the slot's first live member) while WATCH conflicts still abort.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster

from .redis_cluster_reference import HOST, TypedResp, redis_node
from .test_cluster_data_path import Cluster

pytestmark = pytest.mark.slow

_tags = itertools.count()


@pytest.fixture(scope="module")
def cluster():
    nodes = Cluster(3, "--cluster-replicas", "2")
    try:
        nodes.start_all()
        yield nodes
    finally:
        nodes.stop()


def _keys_held(cluster: Cluster, index: int) -> int:
    return int(cluster.client(index).info("keyspace").get("db0", {}).get("keys", 0))


def _outsider(cluster: Cluster) -> tuple[str, int, list[int]]:
    """A fresh hash tag, the node outside its preference list, and the two
    in it (found by which nodes' keyspace a first write grew)."""
    tag = f"{{t{next(_tags)}}}"
    before = [_keys_held(cluster, index) for index in range(3)]
    for index in range(3):  # with --cluster-redirect moved, the outsider answers MOVED
        try:
            assert cluster.client(index).set(f"{tag}probe", "p") is True
            break
        except redis.exceptions.MovedError:
            continue
    after = [_keys_held(cluster, index) for index in range(3)]
    grown = [index for index in range(3) if after[index] > before[index]]
    assert len(grown) == 2, (before, after)
    (outside,) = set(range(3)) - set(grown)
    return tag, outside, grown


def _typed(cluster: Cluster, index: int) -> TypedResp:
    connection = TypedResp((cluster.hosts[index], cluster.port))
    assert connection.call("HELLO", 3)[0] == "map"
    return connection


def test_a_resp3_client_gets_resp3_replies_from_a_forwarded_request(cluster: Cluster, tmp_path: Path) -> None:
    tag, outside, (inside, _other) = _outsider(cluster)
    hash_key, missing = f"{tag}h", f"{tag}missing"
    assert cluster.client(0).hset(hash_key, "f", "v") == 1
    commands = [
        ["HGETALL", hash_key], ["HRANDFIELD", hash_key, -2, "WITHVALUES"], ["GET", missing], ["HGET", hash_key, "x"],
        ["MGET", missing, hash_key], ["HINCRBYFLOAT", hash_key, "n", "1.5"], ["EXISTS", hash_key],
    ]
    forwarded_before = cluster.counters(outside)["forwarded"]
    with _typed(cluster, outside) as far, _typed(cluster, inside) as near:
        through_outsider = far.pipeline(commands)
        assert near.call("HDEL", hash_key, "n") == ("int", 1)  # so the same commands meet the same state
        here = near.pipeline(commands)
    assert cluster.counters(outside)["forwarded"] >= forwarded_before + len(commands)
    assert through_outsider == here
    assert through_outsider[0] == ("map", [(("bulk", b"f"), ("bulk", b"v"))])
    assert through_outsider[2] == ("null",)
    # Redis' own RESP3 shapes for the same commands.
    with redis_node(tmp_path / "redis", cluster=False) as port, TypedResp((HOST, port)) as reference:
        assert reference.call("HELLO", 3)[0] == "map"
        assert reference.call("HSET", hash_key, "f", "v") == ("int", 1)
        assert reference.pipeline(commands) == through_outsider
    # A RESP3 transaction forwarded whole: EXEC's array holds the map.
    transaction = [["MULTI"], ["HGETALL", hash_key], ["HSTRLEN", hash_key, "f"], ["EXEC"]]
    with _typed(cluster, outside) as far, _typed(cluster, inside) as near:
        forwarded_exec = far.pipeline(transaction)
        assert forwarded_exec == near.pipeline(transaction)
    assert forwarded_exec[-1] == ("array", [
        ("map", [(("bulk", b"f"), ("bulk", b"v")), (("bulk", b"n"), ("bulk", b"1.5"))]), ("int", 1),
    ])
    # HELLO 3 in the same batch as the forwarded request, and back to 2.
    with TypedResp((cluster.hosts[outside], cluster.port)) as raw:
        hello, hgetall, back, flat = raw.pipeline([["HELLO", 3], ["HGETALL", hash_key], ["HELLO", 2],
                                                   ["HGETALL", hash_key]])
        assert hello[0] == "map" and back[0] == "array"
        assert hgetall == ("map", [(("bulk", b"f"), ("bulk", b"v")), (("bulk", b"n"), ("bulk", b"1.5"))])
        assert flat == ("array", [("bulk", b"f"), ("bulk", b"v"), ("bulk", b"n"), ("bulk", b"1.5")])
    # And redis-py's RESP3 parser: a dict, not a flat list.
    plain = cluster.client(outside, protocol=3)
    assert plain.hgetall(hash_key) == {b"f": b"v", b"n": b"1.5"}
    cluster_client = RedisCluster(host=cluster.hosts[outside], port=cluster.port, protocol=3, socket_timeout=10)
    try:
        assert cluster_client.hgetall(hash_key) == {b"f": b"v", b"n": b"1.5"}
    finally:
        cluster_client.close()


def test_a_transaction_through_a_node_outside_the_preference_list_leaves_no_copy_there(cluster: Cluster) -> None:
    tag, outside, inside = _outsider(cluster)
    held_before = _keys_held(cluster, outside)
    client = cluster.client(outside)
    # One round trip (redis-py's transaction pipeline)...
    pipe = client.pipeline(transaction=True)
    pipe.set(f"{tag}a", "1").incr(f"{tag}a").incr(f"{tag}n").get(f"{tag}a")
    assert pipe.execute() == [True, 2, 1, b"2"]
    # ... and one request per round trip, as redis-cli sends them.
    with TypedResp((cluster.hosts[outside], cluster.port)) as raw:
        assert raw.call("MULTI") == ("simple", "OK")
        assert raw.call("INCR", f"{tag}n") == ("simple", "QUEUED")
        assert raw.call("SET", f"{tag}b", "x") == ("simple", "QUEUED")
        assert raw.call("EXEC") == ("array", [("int", 2), ("simple", "OK")])
        # WAIT counts the replicas the coordinator that ran it needed (W=2: one besides it).
        assert raw.call("WAIT", 1, 1000) == ("int", 1)
    assert _keys_held(cluster, outside) == held_before
    for index in inside:
        node = cluster.client(index)
        node.execute_command("TKV.CONSISTENCY", "ONE")  # its own copy
        assert node.mget(f"{tag}a", f"{tag}n", f"{tag}b") == [b"2", b"2", b"x"]
    # A transaction of keys this node replicates still runs here and is replicated.
    near = cluster.client(inside[0]).pipeline(transaction=True)
    near.set(f"{tag}c", "near").incr(f"{tag}n")
    assert near.execute() == [True, 3]
    other = cluster.client(inside[1])
    other.execute_command("TKV.CONSISTENCY", "ONE")
    assert other.mget(f"{tag}c", f"{tag}n") == [b"near", b"3"]
    assert _keys_held(cluster, outside) == held_before


def test_watch_through_a_node_outside_the_preference_list_aborts_when_the_key_changes(cluster: Cluster) -> None:
    tag, outside, inside = _outsider(cluster)
    key = f"{tag}w"
    assert cluster.client(0).set(key, "0") is True
    held_before = _keys_held(cluster, outside)
    for writer in (inside[0], outside):  # a change coordinated elsewhere, and one forwarded from here
        pipe = cluster.client(outside).pipeline(transaction=True)
        pipe.watch(key)
        assert pipe.get(key) is not None  # immediate mode after WATCH: a routed read
        cluster.client(writer).set(key, f"changed-by-{writer}")
        pipe.multi()
        pipe.set(key, "mine")
        with pytest.raises(redis.WatchError):
            pipe.execute()
        assert cluster.client(0).get(key) == f"changed-by-{writer}".encode()
    # Unchanged: the transaction runs.
    pipe = cluster.client(outside).pipeline(transaction=True)
    pipe.watch(key)
    pipe.multi()
    pipe.set(key, "mine").get(key)
    assert pipe.execute() == [True, b"mine"]
    assert cluster.client(inside[1]).get(key) == b"mine"
    assert _keys_held(cluster, outside) == held_before


def test_redis_cluster_transaction_pipeline_runs_on_the_slots_node(cluster: Cluster) -> None:
    tag, outside, inside = _outsider(cluster)
    client = RedisCluster(host=cluster.hosts[outside], port=cluster.port, socket_timeout=10)
    try:
        pipe = client.pipeline(transaction=True)
        pipe.set(f"{tag}x", "1").incrby(f"{tag}x", 4).get(f"{tag}x")
        # (redis-py 8.2's cluster transactions leave SET's reply b"OK", not True.)
        assert pipe.execute() in ([True, 5, b"5"], [b"OK", 5, b"5"])
        with client.pipeline(transaction=True) as watched:
            watched.watch(f"{tag}x")
            current = int(watched.get(f"{tag}x"))
            watched.multi()
            watched.set(f"{tag}x", current + 1)
            assert watched.execute() in ([True], [b"OK"])
        assert client.get(f"{tag}x") == b"6"
    finally:
        client.close()
    for index in inside:
        node = cluster.client(index)
        node.execute_command("TKV.CONSISTENCY", "ONE")
        assert node.get(f"{tag}x") == b"6"


def test_redirect_moved_answers_exec_with_moved_and_discards(tmp_path: Path) -> None:
    nodes = Cluster(3, "--cluster-replicas", "2", "--cluster-redirect", "moved")
    try:
        nodes.start_all()
        tag, outside, inside = _outsider(nodes)
        # An EXEC with arguments is the engine's to refuse, as on a node that serves the slot.
        bad_exec = [["MULTI"], ["SET", f"{tag}m", "1"], ["EXEC", "x"], ["EXEC"]]
        with (TypedResp((nodes.hosts[outside], nodes.port)) as far,
              TypedResp((nodes.hosts[inside[0]], nodes.port)) as near):
            refused = far.pipeline(bad_exec)
            assert refused == near.pipeline(bad_exec)
            assert refused[2][0] == "error" and refused[3][0] == "error", refused
        with TypedResp((nodes.hosts[outside], nodes.port)) as raw:
            assert raw.call("MULTI") == ("simple", "OK")
            assert raw.call("SET", f"{tag}m", "1") == ("simple", "QUEUED")
            moved = raw.call("EXEC")
            assert moved[0] == "error" and moved[1].startswith("MOVED "), moved
            assert raw.call("EXEC") == ("error", "ERR EXEC without MULTI")
        assert _keys_held(nodes, outside) == 0
    finally:
        nodes.stop()


def test_client_reply_off_and_skip_batches_through_a_node_outside_the_preference_list(cluster: Cluster) -> None:
    tag, outside, inside = _outsider(cluster)
    held_before = _keys_held(cluster, outside)
    with TypedResp((cluster.hosts[outside], cluster.port)) as raw:
        # One batch: no replies while OFF, one dropped after SKIP; the rest in order.
        raw.send(("CLIENT", "REPLY", "OFF"), ("SET", f"{tag}q", "1"), ("INCR", f"{tag}q"), ("GET", f"{tag}q"),
                 ("CLIENT", "REPLY", "ON"), ("CLIENT", "REPLY", "SKIP"), ("INCR", f"{tag}q"), ("GET", f"{tag}q"))
        assert raw.read() == ("simple", "OK")  # CLIENT REPLY ON's
        assert raw.read() == ("bulk", b"3")
        # One request per round trip.
        raw.send(("CLIENT", "REPLY", "SKIP"))
        raw.send(("SET", f"{tag}r", "x"))
        assert raw.call("GET", f"{tag}r") == ("bulk", b"x")
        raw.send(("CLIENT", "REPLY", "SKIP"), ("MULTI",))
        assert raw.call("INCR", f"{tag}q") == ("simple", "QUEUED")
        assert raw.call("EXEC") == ("array", [("int", 4)])
        # A forwarded EXEC while replies are OFF.
        raw.send(("CLIENT", "REPLY", "OFF"))
        raw.send(("MULTI",), ("INCR", f"{tag}q"))
        raw.send(("EXEC",))
        raw.send(("CLIENT", "REPLY", "ON"))
        assert raw.read() == ("simple", "OK")
        assert raw.call("GET", f"{tag}q") == ("bulk", b"5")
    assert _keys_held(cluster, outside) == held_before
    node = cluster.client(inside[0])
    node.execute_command("TKV.CONSISTENCY", "ONE")
    assert node.mget(f"{tag}q", f"{tag}r") == [b"5", b"x"]
