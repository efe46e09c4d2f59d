"""Local writes in cluster mode: every mutation of a key, whatever command
made it, gives the key one new dot from this node, superseding every
version this replica knew (store/versions.py); reads, and expiry by time,
make none. With cluster mode off nothing of it exists."""

from __future__ import annotations

import pytest

from trio_kv.cluster import dvvset
from trio_kv.cluster.key_state import STRING_TYPE, KeyState
from trio_kv.commands.hash_value import HashValue
from trio_kv.config import Config
from trio_kv.protocol.replies import OK, Error
from trio_kv.store.durability.records import VERSION
from trio_kv.store.engine import Job, run_batch

from ..effect_recorder import EffectRecorder
from ..fake_clock import START_MS, FakeClock
from .cluster_store import NODE_A, clock_of, cluster_session, counter, states, versions_of
from .redis_session import call, job, make_session, run


def _string(value: bytes, at_ms: int | None = None) -> KeyState:
    return KeyState(STRING_TYPE, value, at_ms)


def _hash(**fields: str) -> KeyState:
    value = HashValue()
    value.fields.update({k.encode(): v.encode() for k, v in fields.items()})
    return KeyState(HashValue.TYPE_CODE, value.as_update().encode())


# (setup, the write, the key it changes, its state afterwards: None = deleted)
WRITES = [
    ([], "SET k v", b"k", _string(b"v")),
    (["SET k v"], "SET k w", b"k", _string(b"w")),
    (["SET n 5"], "INCR n", b"n", _string(b"6")),
    ([], "INCRBY n 7", b"n", _string(b"7")),
    (["SET k v"], "APPEND k xy", b"k", _string(b"vxy")),
    (["SET k abc"], "SETRANGE k 1 Z", b"k", _string(b"aZc")),
    ([], "HSET h a 1 b 2", b"h", _hash(a="1", b="2")),
    (["HSET h a 1 b 2"], "HDEL h a", b"h", _hash(b="2")),
    (["HSET h a 1"], "HDEL h a", b"h", None),
    (["SET k v"], "DEL k", b"k", None),
    (["SET k v"], "GETDEL k", b"k", None),
    (["SET k v"], "EXPIRE k 100", b"k", _string(b"v", START_MS + 100_000)),
    (["SET k v EX 100"], "PERSIST k", b"k", _string(b"v")),
    (["SET k v"], "PEXPIREAT k 1", b"k", None),  # an expiry in the past deletes
    (["SET k v EX 100"], "SET k w KEEPTTL", b"k", _string(b"w", START_MS + 100_000)),
    ([], "MSET k v", b"k", _string(b"v")),
    (["SET k v"], "RENAME k {k}2", b"k", None),
    (["SET k v EX 9"], "RENAME k {k}2", b"{k}2", _string(b"v", START_MS + 9_000)),
    (["HSET h a 1"], "RENAME h {h}2", b"{h}2", _hash(a="1")),
]


@pytest.mark.parametrize(("setup", "write", "key", "after"), WRITES, ids=[w for _, w, _, _ in WRITES])
def test_every_local_write_adds_one_dot_superseding_the_rest(
    setup: list[str], write: str, key: bytes, after: KeyState | None
) -> None:
    session = cluster_session()
    assert not any(isinstance(reply, Error) for reply in run(session, *setup))
    before = counter(session, key)
    reply = call(session, write)
    assert not isinstance(reply, Error), reply
    assert counter(session, key) == before + 1
    assert states(session, key) == [after]
    version = dvvset.last(clock_of(session, key))
    assert version.actor == NODE_A


def test_one_dot_per_key_per_unit_and_reads_make_none() -> None:
    session = cluster_session()
    run(session, "MULTI", "SET k 1", "APPEND k 2", "SET j 3", "DEL j", "EXEC")
    assert counter(session, b"k") == 1 and states(session, b"k") == [_string(b"12")]
    assert counter(session, b"j") == 1 and states(session, b"j") == [None]
    run(session, "GET k", "STRLEN k", "TTL k", "EXISTS k", "TKV.SIBLINGS k", "SET k 12 NX", "DEL nothing")
    assert counter(session, b"k") == 1
    assert versions_of(session).stored(b"nothing") is None


def test_timestamps_grow_and_a_local_write_wins_here() -> None:
    clock = FakeClock()
    session = cluster_session(clock=clock)
    call(session, "SET k 1")
    first = dvvset.last(clock_of(session, b"k")).timestamp
    call(session, "SET k 2")  # same millisecond: the logical counter moves
    second = dvvset.last(clock_of(session, b"k")).timestamp
    clock.advance(5)
    call(session, "SET k 3")
    third = dvvset.last(clock_of(session, b"k")).timestamp
    assert first < second < third
    assert third >> 16 == clock.now_ms


def test_expiry_by_time_makes_no_dot() -> None:
    clock = FakeClock()
    session = cluster_session(clock=clock)
    call(session, "SET k v PX 50")
    stored = versions_of(session).stored(b"k")
    clock.advance(100)
    assert call(session, "GET k") is None
    run(session, "SET other x", "DEL k")  # a lazy expiry by a write, then a DEL of nothing
    assert versions_of(session).stored(b"k") == stored
    # The held value has gone: the clock now carries an expired state.
    assert clock_of(session, b"k") != dvvset.EMPTY
    [state] = states(session, b"k")
    assert state is not None and state.expired(clock.now_ms) and state.expire_at_ms == START_MS + 50


def test_delete_of_a_deleted_key_makes_no_new_tombstone() -> None:
    session = cluster_session()
    run(session, "SET k v", "DEL k")
    stored = versions_of(session).stored(b"k")
    run(session, "SET k v PXAT 1")  # stored and gone at once: left absent again
    assert versions_of(session).stored(b"k") == stored


def test_flushall_tombstones_every_versioned_key() -> None:
    session = cluster_session()
    run(session, "SET a 1", "HSET h f v", "SET gone x", "DEL gone")
    gone = versions_of(session).stored(b"gone")
    before = {key: counter(session, key) for key in (b"a", b"h")}
    assert call(session, "FLUSHALL") == OK
    assert call(session, "DBSIZE") == 0
    for key in (b"a", b"h"):
        assert counter(session, key) == before[key] + 1
        assert states(session, key) == [None]
    assert versions_of(session).stored(b"gone") == gone  # already a lone tombstone


def test_values_are_kept_once_the_winner_is_held() -> None:
    session = cluster_session()
    call(session, "SET k " + "x" * 1000)
    stored = versions_of(session).stored(b"k")
    assert stored is not None and len(stored) == 40  # header + 39: no copy of the value
    wire = versions_of(session).clock_of(b"k")
    assert wire is not None and b"x" * 1000 in wire  # the wire form carries it


def test_the_units_keys_and_clocks_are_collected_for_the_coordinator() -> None:
    session = cluster_session()
    one = job(session, "SET a 1", "GET a", "MSET b 2 c 3", "DEL nothing", "HSET h f v")
    one.version_deltas = []
    run_batch(session.store, [one])
    versions = versions_of(session)
    assert one.version_deltas == [
        (0, [(b"a", versions.clock_of(b"a"))]),
        (2, [(b"b", versions.clock_of(b"b")), (b"c", versions.clock_of(b"c"))]),
        (4, [(b"h", versions.clock_of(b"h"))]),
    ]
    other = job(session, "SET a 2")
    run_batch(session.store, [other])
    assert other.version_deltas is None  # not asked for: not collected


def test_cluster_mode_off_has_no_versions() -> None:
    session, _ = make_session()
    recorder = EffectRecorder(session.keyspace)
    run(session, "SET k v", "HSET h a 1", "DEL k")
    assert session.store.versions is None
    assert all(effect[0] != VERSION for effect in recorder.take())
    disabled = Error("ERR This instance has cluster support disabled")
    assert call(session, "TKV.SIBLINGS h") == disabled
    assert call(session, "TKV.PUTCTX h AQA x") == disabled
    one = Job(session, job(session, "SET k v").table, [[b"SET", b"k", b"v"]], 0.0, version_deltas=[])
    run_batch(session.store, [one])
    assert one.version_deltas == []


def test_versions_reach_the_log_in_the_same_unit() -> None:
    session = cluster_session(config=Config())
    recorder = EffectRecorder(session.keyspace)  # subscribed after the versions: gets their effects
    call(session, "SET k v")
    [unit] = recorder.units
    assert unit[0] == ("SET", b"k", b"v", None)
    assert unit[1][0] == VERSION and unit[1][1] == b"k"
    assert unit[1][2] == versions_of(session).stored(b"k")


def test_the_byte_level_path_writes_what_the_clock_path_would() -> None:
    # Two nodes with the same id and clock, one forced through the decoded
    # clock (dvvset.overwrite, encode): every stored clock byte for byte
    # equal, across counters of one and two varint bytes, TTLs and deletes.
    clock = FakeClock()
    fast, general = cluster_session(NODE_A, clock), cluster_session(NODE_A, clock)
    slow = versions_of(general)
    slow._overwrite = lambda key, present, at_ms: slow._overwrite_clock(key, slow.stored(key), present, at_ms)
    script = ["SET k v", "SET k w PX 500", "DEL k", "DEL k", "SET k x", "PERSIST k", "EXPIRE k 9"] * 30
    for number, command in enumerate(script):
        for node in (fast, general):
            run(node, command)
        assert versions_of(fast).stored(b"k") == versions_of(general).stored(b"k"), (number, command)
        if number % 3 == 0:
            clock.advance(1)
    assert counter(fast, b"k") > 128



def test_a_sets_delta_is_built_from_its_effect_exactly_as_clock_of_gives_it(monkeypatch) -> None:
    """The usual coordinator's write (a SET of a key only this node wrote)
    gets its wire clock from the SET effect, without reading the key back
    (``Versions._wire``), byte for byte what ``clock_of`` gives; other
    units and clocks (several actors) read it back."""
    session = cluster_session()
    versions = versions_of(session)
    remote = cluster_session(actor=bytes(range(20)))
    call(remote, "SET m theirs")
    their_clock = versions_of(remote).clock_of(b"m")
    assert their_clock is not None
    versions.apply_remote(b"m", their_clock)
    session.keyspace.effects.end_command()
    read_back: list[bytes] = []
    wire = versions._wire

    def counting(key: bytes, stored: bytes) -> bytes:
        read_back.append(key)
        return wire(key, stored)

    monkeypatch.setattr(versions, "_wire", counting)
    cases = {  # command -> whether its delta reads the key back
        "SET a 1": False, "SET a 22": False, "SET b x PX 100000": False, "SET b y KEEPTTL": False,
        "SET b z": False, "SET c " + "v" * 300: False, "SET d v EX 100": False, "SET d w GET": False,
        "APPEND a 3": True, "SET m mine": True,
    }
    for command, reads in cases.items():
        one = job(session, command)
        one.version_deltas = []
        read_back.clear()
        run_batch(session.store, [one])
        assert read_back == ([command.split()[1].encode()] if reads else []), command
        key = command.split()[1].encode()
        assert one.version_deltas == [(0, [(key, versions.clock_of(key))])], command
