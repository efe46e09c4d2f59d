"""A client's delete of a key whose winner is a tombstone (or expired) but
whose versions still hold a live sibling (store/versions.py,
``Versions.delete_hidden``): DEL, UNLINK, GETDEL and the line protocol's
DEL delete that sibling too, with one tombstone dot superseding every
version here, and DEL counts the key. Without a live sibling nothing
changes. The other read-modify-writes act on the winner (GET's view) and,
when they write, supersede every sibling as any local write does."""

from __future__ import annotations

from pathlib import Path

from trio_kv.cluster.key_state import STRING_TYPE, KeyState
from trio_kv.commands import text
from trio_kv.commands.session import Session
from trio_kv.protocol.replies import OK, SimpleString

from ..fake_clock import FakeClock
from .cluster_store import NODE_A, NODE_B, close_durable, cluster_session, counter, open_durable, states, versions_of
from .redis_session import call, run


def _s(value: bytes) -> KeyState:
    return KeyState(STRING_TYPE, value)


def _ship(source: Session, target: Session, key: bytes) -> None:
    packed = versions_of(source).clock_of(key)
    assert packed is not None
    versions_of(target).apply_remote(key, packed)
    target.keyspace.effects.end_command()


def _hidden(keys: tuple[bytes, ...] = (b"k",), value: bytes = b"mine",
            node: Session | None = None, clock: FakeClock | None = None) -> tuple[Session, Session, FakeClock]:
    """Node a's ``keys`` each hold a's ``value`` behind a tombstone from b
    that is concurrent with it and later: GET nil, two siblings."""
    clock = FakeClock() if clock is None else clock
    a = cluster_session(NODE_A, clock) if node is None else node
    b = cluster_session(NODE_B, clock)
    for key in keys:
        call(a, [b"SET", key, b"old"])
        _ship(a, b, key)
        call(a, [b"SET", key, value])  # a's write: b has not seen it
    clock.advance(1)
    for key in keys:
        assert call(b, [b"DEL", key]) == 1  # b saw "old" only, and is later
        _ship(b, a, key)
        assert call(a, [b"GET", key]) is None
        assert states(a, key) == [None, _s(value)]
    return a, b, clock


def test_del_deletes_a_live_sibling_behind_a_tombstone_and_counts_it() -> None:
    a, b, _ = _hidden()
    before = counter(a, b"k")
    assert call(a, "DEL k") == 1
    assert counter(a, b"k") == before + 1  # one tombstone dot of this node
    assert states(a, b"k") == [None]
    [(key, packed)] = versions_of(a).unit_delta()  # what the coordinator replicates
    assert key == b"k" and packed == versions_of(a).clock_of(b"k")
    _ship(a, b, b"k")
    assert states(b, b"k") == [None]
    # Resolved: a second DEL finds nothing and writes nothing.
    stored = versions_of(a).stored(b"k")
    assert call(a, "DEL k") == 0
    assert versions_of(a).stored(b"k") == stored


def test_unlink_getdel_multi_and_the_line_protocol_follow_the_same_rule() -> None:
    a, _, _ = _hidden((b"{x}1", b"{x}2", b"{x}3", b"{x}4", b"{x}5"))
    run(a, "SET {x}plain p")
    assert call(a, "UNLINK {x}1 {x}missing {x}plain") == 2
    assert call(a, "GETDEL {x}2") is None  # GET's answer; the sibling goes all the same
    assert call(a, "MULTI") == OK
    call(a, "DEL {x}3")
    assert call(a, "EXEC") == [1]
    for answer in (text.OK, SimpleString("NOT_FOUND")):
        assert text.cmd_del(a, [b"DEL", b"{x}4"]) == answer
        a.keyspace.effects.end_command()  # the unit ends, as after any write command
    for key in (b"{x}1", b"{x}2", b"{x}3", b"{x}4"):
        assert states(a, key) == [None], key
    assert states(a, b"{x}5") == [None, _s(b"mine")]  # untouched


def test_an_expired_sibling_is_not_live_and_an_expired_winner_hides_a_live_one() -> None:
    clock = FakeClock()
    a = cluster_session(NODE_A, clock)
    b = cluster_session(NODE_B, clock)
    # A tombstone in front of a sibling that has expired: nothing live, nothing written.
    call(a, "SET gone v PX 10")
    clock.advance(1)
    call(b, "SET gone x")
    call(b, "DEL gone")
    _ship(b, a, b"gone")
    _ship(a, b, b"gone")
    clock.advance(100)
    stored = versions_of(b).stored(b"gone")
    assert stored is not None and stored[0] & 0x7F == 2
    assert call(b, "DEL gone") == 0
    assert versions_of(b).stored(b"gone") == stored
    # A winner that expired in front of an older live sibling: DEL deletes that sibling.
    call(a, "SET k older")
    clock.advance(1)
    call(b, "SET k newer PX 10")
    _ship(b, a, b"k")
    clock.advance(100)
    assert call(a, "GET k") is None and call(a, "EXISTS k") == 0
    assert call(a, "DEL k") == 1
    assert states(a, b"k") == [None]


def test_other_read_modify_writes_act_on_the_winner_and_resolve_when_they_write() -> None:
    a, _, _ = _hidden((b"{y}n", b"{y}a", b"{y}s", b"{y}x"), value=b"5")
    assert call(a, "INCR {y}n") == 1  # the winner is absent: counts from 0
    assert call(a, "APPEND {y}a z") == 1
    assert call(a, "SETNX {y}s new") == 1
    assert call(a, "SET {y}x new XX") is None  # the winner is absent: XX writes nothing
    assert states(a, b"{y}n") == [_s(b"1")]
    assert states(a, b"{y}a") == [_s(b"z")]
    assert states(a, b"{y}s") == [_s(b"new")]
    assert states(a, b"{y}x") == [None, _s(b"5")]
    # A live winner with a sibling: a SETNX that writes nothing resolves nothing.
    clock = FakeClock()
    c = cluster_session(NODE_A, clock)
    d = cluster_session(NODE_B, clock)
    call(c, "SET s first")
    clock.advance(1)
    call(d, "SET s second")
    _ship(d, c, b"s")
    stored = versions_of(c).stored(b"s")
    assert call(c, "SETNX s third") == 0
    assert versions_of(c).stored(b"s") == stored
    assert call(c, "DEL s") == 1  # the winner is live: the ordinary delete, both siblings gone
    assert states(c, b"s") == [None]


def test_the_delete_survives_a_restart(tmp_path: Path) -> None:
    clock = FakeClock()
    node = open_durable(tmp_path, NODE_A, clock)
    _hidden(node=node, clock=clock)
    assert call(node, "DEL k") == 1
    stored = versions_of(node).stored(b"k")
    close_durable(node)
    again = open_durable(tmp_path, NODE_A, clock)
    try:
        assert versions_of(again).stored(b"k") == stored
        assert states(again, b"k") == [None]
        assert call(again, "EXISTS k") == 0
    finally:
        close_durable(again)


def test_cluster_mode_off_is_unchanged() -> None:
    from .redis_session import make_session

    session, _ = make_session()
    run(session, "SET k v")
    assert call(session, "DEL k missing") == 1
    assert call(session, "GETDEL k") is None
    assert session.store.versions is None
