"""Replicas exchanging versions (``Versions.apply_remote``, TKV.REPL.PUT /
GET) and clients resolving siblings (TKV.SIBLINGS, TKV.PUTCTX): concurrent
writes become siblings on every replica, GET answers the greatest
(timestamp, node id), a context resolves exactly what it saw."""

from __future__ import annotations

import pytest

from trio_kv.cluster import dvvset, key_state
from trio_kv.cluster.dvvset import Version
from trio_kv.cluster.key_state import STRING_TYPE, KeyState
from trio_kv.commands.peer import repl
from trio_kv.commands.session import Session
from trio_kv.commands.table import CommandTable
from trio_kv.protocol.replies import OK, Error, Map, NullArray
from trio_kv.store.engine import Job, run_batch

from ..effect_recorder import EffectRecorder
from ..fake_clock import FakeClock
from .cluster_store import NODE_A, NODE_B, clock_of, cluster_session, states, versions_of
from .redis_session import call, run

PEER_TABLE = CommandTable(repl.SPECS, unknown_command=lambda args: Error("ERR unknown"), wrong_arity=lambda s: Error("ERR arity"))


def peer_call(session: Session, *args: bytes) -> object:
    one = Job(session, PEER_TABLE, [list(args)], 0.0)
    run_batch(session.store, [one])
    return one.replies[0]


def ship(source: Session, target: Session, key: bytes) -> bool:
    """What a coordinator does: the source's clock of ``key`` to the target."""
    packed = versions_of(source).clock_of(key)
    assert packed is not None
    changed = versions_of(target).apply_remote(key, packed)
    target.keyspace.effects.end_command()  # the unit ends, as after any write command
    return changed


def pair() -> tuple[Session, Session, FakeClock]:
    clock = FakeClock()
    return cluster_session(NODE_A, clock), cluster_session(NODE_B, clock), clock


def _s(value: bytes) -> KeyState:
    return KeyState(STRING_TYPE, value)


def test_a_replicated_write_is_the_same_everywhere_and_makes_no_dot() -> None:
    a, b, _ = pair()
    call(a, "SET k v")
    assert ship(a, b, b"k") is True
    assert call(b, "GET k") == b"v"
    assert versions_of(b).clock_of(b"k") == versions_of(a).clock_of(b"k")
    assert ship(a, b, b"k") is False  # already held: nothing changes
    assert ship(b, a, b"k") is False


def test_concurrent_writes_become_siblings_and_the_greatest_wins() -> None:
    a, b, clock = pair()
    call(a, "SET k from-a")
    clock.advance(1)
    call(b, "SET k from-b")  # later: b's wins
    ship(a, b, b"k")
    ship(b, a, b"k")
    for node in (a, b):
        assert call(node, "GET k") == b"from-b"
        assert states(node, b"k") == [_s(b"from-b"), _s(b"from-a")]
        assert dvvset.size(clock_of(node, b"k")) == 2
    assert versions_of(a).clock_of(b"k") == versions_of(b).clock_of(b"k")
    # Same timestamp on both nodes: the greater node id wins.
    c, d, _ = pair()
    call(c, "SET t from-a")
    call(d, "SET t from-b")
    assert dvvset.last(clock_of(c, b"t")).timestamp == dvvset.last(clock_of(d, b"t")).timestamp
    ship(c, d, b"t")
    ship(d, c, b"t")
    assert call(c, "GET t") == call(d, "GET t") == b"from-b"


def test_a_plain_set_supersedes_what_this_node_has_seen_only() -> None:
    a, b, clock = pair()
    call(a, "SET k 1")
    ship(a, b, b"k")
    call(b, "SET k 2")  # b saw 1: supersedes it
    ship(b, a, b"k")
    assert states(a, b"k") == [_s(b"2")]
    call(a, "SET k 3")  # concurrent with b's next write
    call(b, "SET k 4")
    ship(a, b, b"k")
    assert sorted(state.data for state in states(b, b"k") if state) == [b"3", b"4"]


def test_siblings_and_putctx_resolve_them() -> None:
    a, b, clock = pair()
    call(a, "SET k x")
    clock.advance(1)
    call(b, "SET k y")
    ship(b, a, b"k")
    context, values = call(a, "TKV.SIBLINGS k")
    assert values == [b"y", b"x"]
    assert call(a, "TKV.PUTCTX k " + context.decode() + " merged") == OK
    assert call(a, "TKV.SIBLINGS k")[1] == [b"merged"]
    assert call(a, "GET k") == b"merged" and call(a, "TTL k") == -1
    ship(a, b, b"k")
    assert states(b, b"k") == [_s(b"merged")]


def test_a_stale_context_keeps_the_writes_it_did_not_see() -> None:
    a, b, clock = pair()
    call(a, "SET k x")
    ship(a, b, b"k")
    context, _ = call(a, "TKV.SIBLINGS k")
    clock.advance(1)
    call(b, "SET k concurrent")
    ship(b, a, b"k")  # arrives after the client read
    call(a, "TKV.PUTCTX k " + context.decode() + " resolved")
    assert call(a, "TKV.SIBLINGS k")[1] == [b"resolved", b"concurrent"]
    # A context from before the client's own write: both stay too.
    stale, _ = call(a, "TKV.SIBLINGS fresh")
    call(a, "SET fresh 1")
    call(a, "TKV.PUTCTX fresh " + stale.decode() + " 2")
    assert call(a, "TKV.SIBLINGS fresh")[1] == [b"2", b"1"]


def test_a_tombstone_beats_what_it_saw_and_is_a_sibling_of_what_it_did_not() -> None:
    a, b, clock = pair()
    call(a, "SET k old")
    ship(a, b, b"k")
    clock.advance(1)
    call(b, "DEL k")  # saw "old"
    ship(b, a, b"k")
    assert call(a, "GET k") is None and states(a, b"k") == [None]
    # A write concurrent with a delete, and later: it wins, the delete stays a sibling.
    call(a, "SET j v1")
    ship(a, b, b"j")
    call(b, "DEL j")
    clock.advance(1)
    call(a, "SET j v2")
    ship(b, a, b"j")
    ship(a, b, b"j")
    for node in (a, b):
        assert call(node, "GET j") == b"v2"
        assert states(node, b"j") == [_s(b"v2"), None]
        assert call(node, "TKV.SIBLINGS j")[1] == [b"v2", None]
    # An older concurrent write loses to a later delete (a tombstone winner).
    call(a, "SET t early")
    clock.advance(1)
    call(b, "SET t x")
    call(b, "DEL t")
    ship(a, b, b"t")
    assert call(b, "GET t") is None and states(b, b"t") == [None, _s(b"early")]


def test_a_remote_state_replaces_a_typed_value_and_keeps_its_expiry() -> None:
    a, b, clock = pair()
    call(a, "HSET h f v")
    call(a, "PEXPIRE h 5000")
    ship(a, b, b"h")
    assert call(b, "HGETALL h") == Map([(b"f", b"v")])
    assert call(b, "PTTL h") == 5000
    clock.advance(1)
    call(b, "SET h now-a-string")
    ship(b, a, b"h")
    assert call(a, "GET h") == b"now-a-string" and call(a, "TTL h") == -1
    context, values = call(a, "TKV.SIBLINGS h")
    assert values == [b"now-a-string"]


def test_the_held_value_is_copied_out_before_a_remote_winner_replaces_it() -> None:
    a, b, clock = pair()
    call(a, "SET k mine")
    clock.advance(1)
    call(b, "SET k theirs")
    ship(b, a, b"k")  # a's held value loses: it must survive as a sibling
    assert call(a, "GET k") == b"theirs"
    assert states(a, b"k") == [_s(b"theirs"), _s(b"mine")]
    held = [v for v in dvvset.values(dvvset.decode(versions_of(a).stored(b"k")[1:])) if key_state.is_held(v.payload)]
    assert [v.actor for v in held] == [NODE_B]


def test_apply_remote_goes_through_the_effects_and_watch() -> None:
    a, b, _ = pair()
    recorder = EffectRecorder(b.keyspace)
    run(b, "WATCH k")
    call(a, "SET k v")
    peer = versions_of(a).clock_of(b"k")
    assert peer_call(b, b"TKV.REPL.PUT", b"k", peer) == 1
    ops = [effect[0] for effect in recorder.take()]
    assert ops == ["SET", "VERSION"]  # no second dot: the VERSION is the merged clock
    assert isinstance(run(b, "MULTI", "SET k mine", "EXEC")[-1], NullArray)  # the WATCH saw the remote write
    # Unchanged: 0, and the clock is written to the log again (the reply waits for it).
    assert peer_call(b, b"TKV.REPL.PUT", b"k", versions_of(b).clock_of(b"k")) == 0
    assert [effect[0] for effect in recorder.take()] == ["VERSION"]
    assert peer_call(b, b"TKV.REPL.GET", b"k") == versions_of(b).clock_of(b"k")
    assert peer_call(b, b"TKV.REPL.GET", b"none") is None


@pytest.mark.parametrize(
    "bad",
    [
        b"garbage",
        dvvset.encode(dvvset.new(Version(1, NODE_A, key_state.TOMBSTONE))),  # anonymous value
        dvvset.encode(dvvset.update(dvvset.new(Version(1, NODE_B, key_state.HELD)), NODE_B)),  # held
        dvvset.encode(dvvset.update(dvvset.new(Version(1, NODE_B, b"\x09")), NODE_B)),  # bad payload
        dvvset.encode(dvvset.update(dvvset.new(Version(1, NODE_B, b"\x01\x63data")), NODE_B)),  # unknown type
        dvvset.encode(dvvset.update(dvvset.new(Version(1, NODE_B, b"\x01\x01\xff")), NODE_B)),  # damaged hash
        dvvset.encode(dvvset.update(dvvset.new(Version(1, NODE_B, b"\x01\x63data")), NODE_A)),  # loses, still refused
    ],
)
def test_a_refused_clock_changes_nothing(bad: bytes) -> None:
    session = cluster_session()
    call(session, "SET k v")
    before = versions_of(session).stored(b"k")
    reply = peer_call(session, b"TKV.REPL.PUT", b"k", bad)
    assert isinstance(reply, Error) and reply.message.startswith("ERR invalid clock")
    assert versions_of(session).stored(b"k") == before and call(session, "GET k") == b"v"


def test_a_put_of_several_pairs_answers_each_pair() -> None:
    # What a coordinator sends per send of its link (server/cluster/replicator.py).
    a, b, _ = pair()
    call(a, "SET k1 v1")
    call(a, "SET k2 v2")
    first, second = versions_of(a).clock_of(b"k1"), versions_of(a).clock_of(b"k2")
    recorder = EffectRecorder(b.keyspace)
    reply = peer_call(b, b"TKV.REPL.PUT", b"k1", first, b"k2", second, b"k1", first)
    assert reply == [1, 1, 0]  # the third pair held nothing new: applied in order
    assert [effect[0] for effect in recorder.take()] == ["SET", "VERSION", "SET", "VERSION", "VERSION"]
    assert call(b, "GET k1") == b"v1" and call(b, "GET k2") == b"v2"
    # A refused clock answers its own pair; the others are applied.
    call(a, "SET k3 v3")
    reply = peer_call(b, b"TKV.REPL.PUT", b"k2", b"garbage", b"k3", versions_of(a).clock_of(b"k3"))
    assert isinstance(reply, list) and isinstance(reply[0], Error) and reply[0].message.startswith("ERR invalid clock")
    assert reply[1] == 1 and call(b, "GET k3") == b"v3" and call(b, "GET k2") == b"v2"
    # A key without its clock: nothing applied.
    recorder.take()
    reply = peer_call(b, b"TKV.REPL.PUT", b"k1", first, b"k2")
    assert isinstance(reply, Error) and recorder.take() == []


def test_putctx_refuses_a_bad_context() -> None:
    session = cluster_session()
    assert call(session, "TKV.PUTCTX k !! v") == Error("ERR invalid context")
    assert call(session, [b"TKV.PUTCTX", b"k", b"", b"v"]) == Error("ERR invalid context")
    assert call(session, "GET k") is None


def test_siblings_of_a_key_without_versions() -> None:
    session = cluster_session()
    assert call(session, "TKV.SIBLINGS nothing") == [dvvset.encode_context(()), []]
    versions = versions_of(session)
    with versions.paused():  # a key written while nothing stamped (as before cluster mode)
        session.keyspace.set(b"old", b"value")
    assert call(session, "TKV.SIBLINGS old") == [dvvset.encode_context(()), [b"value"]]


def test_the_bus_table_runs_repl_only_after_the_handshake() -> None:
    from trio_kv.commands.peer.state import PeerState
    from trio_kv.commands.peer.wire import BUS

    from .test_peer_commands import FakeNode, _peer_hello

    source = cluster_session(NODE_B)
    call(source, "SET k v")
    packed = versions_of(source).clock_of(b"k")
    assert packed is not None
    replica = cluster_session(NODE_A)
    bus = Session(2, replica.store, replica.control, wire=BUS)
    bus.peer = PeerState(FakeNode(None))

    def bus_call(*args: bytes) -> object:
        one = Job(bus, BUS.table, [list(args)], 0.0)
        run_batch(bus.store, [one])
        return one.replies[0]

    refused = bus_call(b"TKV.REPL.PUT", b"k", packed)
    assert isinstance(refused, Error) and "handshake" in refused.message and bus.closing
    assert call(replica, "GET k") is None
    bus.closing = False
    bus.peer = PeerState(FakeNode(None))
    assert isinstance(bus_call(b"TKV.HELLO", *_peer_hello().to_args()), list)
    assert bus_call(b"TKV.REPL.PUT", b"k", packed) == 1
    assert bus_call(b"TKV.REPL.GET", b"k") == packed
    assert call(replica, "GET k") == b"v"


def _no_clock_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building, merging or encoding a clock object fails from here on."""
    def refuse(*args: object) -> None:
        raise AssertionError("the fast path built a clock")

    for name in ("decode", "encode", "sync2", "map_values", "from_scan"):
        monkeypatch.setattr(dvvset, name, refuse)


def test_the_usual_replicated_writes_and_their_wire_clocks_build_no_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    # A coordinator's SET, its wire clock, a replica taking it (the key new
    # there, then a write that descends from what it holds), the replica's
    # wire clock: bytes spliced, never a clock decoded, merged, re-encoded.
    a, b, clock = pair()
    call(a, "SET k v1 PX 5000")
    _no_clock_objects(monkeypatch)
    first = versions_of(a).clock_of(b"k")
    assert first is not None
    assert versions_of(b).apply_remote(b"k", first) is True
    assert call(b, "GET k") == b"v1" and call(b, "PTTL k") == 5000
    assert versions_of(b).clock_of(b"k") == first
    assert versions_of(b).apply_remote(b"k", first) is False  # a duplicate
    clock.advance(1)
    call(a, "SET k v2")
    second = versions_of(a).clock_of(b"k")
    assert second is not None
    assert versions_of(b).apply_remote(b"k", second) is True
    assert call(b, "GET k") == b"v2" and call(b, "PTTL k") == -1
    assert versions_of(b).clock_of(b"k") == second
    call(a, "DEL k")
    deleted = versions_of(a).clock_of(b"k")
    assert deleted is not None
    assert versions_of(b).apply_remote(b"k", deleted) is True
    assert call(b, "EXISTS k") == 0
    assert versions_of(b).stored(b"k") == b"\x01" + deleted  # a tombstone is stored as it came
