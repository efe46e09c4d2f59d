"""TKV.AAE.ROOTS / SEGMENTS / KEYS (commands/peer/aae.py) through the bus
table and the engine, no sockets: they answer a cluster store's Tictac
trees in their wire form, refuse bad partitions and segments, need the
handshake (key names leave the node only for a peer), and are not client
commands."""

from __future__ import annotations

import time

from trio_kv.cluster.tictac import SEGMENT_COUNT, differing_keys, differing_segments, segment_of, unpack_hashes
from trio_kv.commands.peer.state import PeerState, Stage
from trio_kv.commands.peer.wire import BUS
from trio_kv.commands.redis import REDIS_COMMANDS
from trio_kv.commands.session import Session
from trio_kv.config import Config
from trio_kv.protocol.replies import Error
from trio_kv.store.engine import Job, Store, run_batch
from trio_kv.store.local_control import LocalControl

from .cluster_store import NODE_A, NODE_B, cluster_session
from .redis_session import run
from .test_peer_commands import FakeNode
from .test_versions_replication import pair, ship


def _bus(store_session: Session, *, handshake: bool = True) -> Session:
    store = store_session.store
    session = Session(2, store, LocalControl(store), wire=BUS)
    session.peer = PeerState(FakeNode(None), stage=Stage.DONE if handshake else Stage.NEW)
    session.authenticated = True
    return session


def _call(session: Session, *args: bytes) -> object:
    job = Job(session, BUS.table, [list(args)], time.perf_counter())
    run_batch(session.store, [job])
    return job.replies[0]


def _keys(reply: object) -> list[tuple[bytes, int]]:
    assert isinstance(reply, list)
    return [(reply[i], int.from_bytes(reply[i + 1], "little")) for i in range(0, len(reply), 2)]


def test_roots_segments_and_keys_read_the_trees() -> None:
    node = cluster_session(NODE_A)
    run(node, "SET a 1", "SET b 2", "SET {a}x 3")
    bus = _bus(node)
    trees = node.store.versions.trees  # type: ignore[union-attr]
    partition = trees.partition_of(b"a")
    roots = _call(bus, b"TKV.AAE.ROOTS", b"%d" % partition, b"0", b"63")
    assert isinstance(roots, bytes)
    assert unpack_hashes(roots) == [trees.trees[p].root for p in (partition, 0, 63)]
    segments = _call(bus, b"TKV.AAE.SEGMENTS", b"%d" % partition)
    assert isinstance(segments, bytes) and len(segments) == SEGMENT_COUNT * 8
    assert unpack_hashes(segments) == trees.trees[partition].segments
    asked = sorted({segment_of(b"a"), segment_of(b"{a}x")})
    listed = _keys(_call(bus, b"TKV.AAE.KEYS", b"%d" % partition, *(b"%d" % s for s in asked)))
    assert sorted(key for key, _ in listed) == [b"a", b"{a}x"]
    assert all(trees.trees[partition].get(key, segment_of(key)) == entry for key, entry in listed)


def test_two_replicas_compared_through_the_commands_find_the_key_that_differs() -> None:
    a, b, _ = pair()
    run(a, "SET k1 v", "SET k2 v", "SET k3 v")
    for key in (b"k1", b"k2", b"k3"):
        ship(a, b, key)
    run(b, "SET k2 newer")
    bus_a, bus_b = _bus(a), _bus(b)
    trees = a.store.versions.trees  # type: ignore[union-attr]
    every = [b"%d" % partition for partition in range(trees.partition_count)]
    roots_a = unpack_hashes(_call(bus_a, b"TKV.AAE.ROOTS", *every))  # type: ignore[arg-type]
    roots_b = unpack_hashes(_call(bus_b, b"TKV.AAE.ROOTS", *every))  # type: ignore[arg-type]
    differ = [p for p, x, y in zip(range(len(every)), roots_a, roots_b) if x != y]
    assert differ == [trees.partition_of(b"k2")]
    (partition,) = differ
    segments = differing_segments(
        unpack_hashes(_call(bus_a, b"TKV.AAE.SEGMENTS", b"%d" % partition)),  # type: ignore[arg-type]
        unpack_hashes(_call(bus_b, b"TKV.AAE.SEGMENTS", b"%d" % partition)),  # type: ignore[arg-type]
    )
    assert segments == [segment_of(b"k2")]
    ask = [b"TKV.AAE.KEYS", b"%d" % partition, *(b"%d" % s for s in segments)]
    assert differing_keys(_keys(_call(bus_a, *ask)), _keys(_call(bus_b, *ask))) == [b"k2"]


def test_bad_partitions_and_segments_are_refused() -> None:
    bus = _bus(cluster_session(NODE_B))
    for args in (
        [b"TKV.AAE.ROOTS", b"64"], [b"TKV.AAE.ROOTS", b"-1"], [b"TKV.AAE.SEGMENTS", b"x"],
        [b"TKV.AAE.KEYS", b"0", b"1024"], [b"TKV.AAE.KEYS", b"99", b"0"],
    ):
        reply = _call(bus, *args)
        assert isinstance(reply, Error) and reply.message.startswith("ERR "), (args, reply)
    assert isinstance(_call(bus, b"TKV.AAE.KEYS", b"0"), Error)  # arity: a segment at least


def test_they_need_the_handshake_and_cluster_mode() -> None:
    bus = _bus(cluster_session(NODE_A), handshake=False)
    reply = _call(bus, b"TKV.AAE.ROOTS", b"0")
    assert isinstance(reply, Error) and "handshake" in reply.message and bus.closing
    store = Store(Config())
    plain = Session(3, store, LocalControl(store), wire=BUS)
    plain.peer = PeerState(FakeNode(None), stage=Stage.DONE)
    plain.authenticated = True
    assert _call(plain, b"TKV.AAE.SEGMENTS", b"0") == Error("ERR This instance has cluster support disabled")


def test_they_are_not_client_commands() -> None:
    for name in ("tkv.aae.roots", "tkv.aae.segments", "tkv.aae.keys"):
        assert REDIS_COMMANDS.get(name) is None
        assert BUS.table.get(name) is not None


def test_the_interval_option() -> None:
    import pytest

    from trio_kv.config import parse_config

    assert Config().cluster_aae_interval_seconds == 10.0
    assert parse_config(["--cluster-aae-interval", "1"], environ={}).cluster_aae_interval_seconds == 1.0
    assert parse_config(["--cluster-aae-interval", "0"], environ={}).cluster_aae_interval_seconds == 0.0  # off
    with pytest.raises(SystemExit):
        parse_config(["--cluster-aae-interval", "-1"], environ={})
