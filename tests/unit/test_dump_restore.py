"""DUMP and RESTORE through the engine (commands/dump_restore.py): the value,
the TTL rules, the effects the log and replication see, WATCH, the limits."""

from __future__ import annotations

from tests.effect_recorder import EffectRecorder
from tests.rdb_builders import payload, rdb_length, rdb_string
from trio_kv.config import Config
from trio_kv.protocol.rdb_payload import HashObject, ListObject, StringObject, decode_payload, encode_payload
from trio_kv.protocol.replies import OK, Error

from .redis_session import call, make_session, run

STRING = encode_payload(StringObject(b"value"))
HASH = encode_payload(HashObject(((b"f", b"1"), (b"g", b"2"))))


def test_dump_gives_the_value_of_either_family() -> None:
    session, _ = make_session()
    run(session, "SET s 12", "HSET h a 1 b 2")
    session.stats.reset()
    assert decode_payload(call(session, "DUMP s")) == StringObject(b"12")  # type: ignore[arg-type]
    assert decode_payload(call(session, "DUMP h")) == HashObject(((b"a", b"1"), (b"b", b"2")))  # type: ignore[arg-type]
    assert call(session, "DUMP missing") is None
    counters = session.stats.counters()
    assert (counters["keyspace_hits"], counters["keyspace_misses"]) == (2, 1)


def test_restore_ttl_rules() -> None:
    session, clock = make_session()
    assert call(session, [b"RESTORE", b"rel", b"5000", STRING]) == OK
    assert call(session, "PTTL rel") == 5000
    assert call(session, [b"RESTORE", b"abs", str(clock.now_ms + 7000).encode(), HASH, b"ABSTTL"]) == OK
    assert call(session, "PTTL abs") == 7000
    assert call(session, "HGET abs g") == b"2"
    assert call(session, [b"RESTORE", b"none", b"0", STRING]) == OK
    assert call(session, "PTTL none") == -1
    # Already expired: REPLACE still removes the old value, nothing is stored.
    assert call(session, [b"RESTORE", b"none", str(clock.now_ms).encode(), STRING, b"ABSTTL", b"REPLACE"]) == OK
    assert call(session, "EXISTS none") == 0
    assert call(session, [b"RESTORE", b"huge", b"9223372036854775807", STRING]) == OK
    assert call(session, "EXISTS huge") == 0
    clock.advance(5000)
    assert call(session, "EXISTS rel") == 0


def test_restore_replace_and_busy_key() -> None:
    session, _ = make_session()
    run(session, "HSET k x y")
    busy = call(session, [b"RESTORE", b"k", b"0", STRING])
    assert busy == Error("BUSYKEY Target key name already exists.")
    assert call(session, "HGET k x") == b"y"
    assert call(session, [b"RESTORE", b"k", b"0", STRING, b"replace"]) == OK
    assert call(session, "GET k") == b"value"
    assert call(session, [b"RESTORE", b"k", b"0", HASH, b"REPLACE"]) == OK
    assert call(session, "HMGET k f g") == [b"1", b"2"]


def test_restore_effects_are_those_of_set_and_hset() -> None:
    session, clock = make_session()
    recorder = EffectRecorder(session.keyspace)
    run(session, "SET k old")
    recorder.take()
    run(session, [b"RESTORE", b"k", b"1000", HASH, b"REPLACE"])
    effects = recorder.take()
    assert [effect[0] for effect in effects] == ["DEL", "UPDATE", "EXPIRE"]
    assert effects[2] == ("EXPIRE", b"k", clock.now_ms + 1000)
    run(session, [b"RESTORE", b"s", b"0", STRING])
    assert recorder.take() == [("SET", b"s", b"value", None)]


def test_restore_touches_watched_keys() -> None:
    session, _ = make_session()
    run(session, "WATCH k")
    run(session, [b"RESTORE", b"k", b"0", STRING])
    assert type(run(session, "MULTI", "GET k", "EXEC")[-1]).__name__ == "NullArray"  # EXEC aborted


def test_restore_refuses_families_it_does_not_store_and_bad_payloads() -> None:
    session, _ = make_session()
    bad = Error("ERR Bad data format")
    assert call(session, [b"RESTORE", b"l", b"0", encode_payload(ListObject((b"a",)))]) == bad
    assert call(session, [b"RESTORE", b"l", b"0", payload(4, rdb_length(0))]) == bad
    wrong = Error("ERR DUMP payload version or checksum are wrong")
    assert call(session, [b"RESTORE", b"l", b"0", STRING[:-1] + b"?"]) == wrong
    assert call(session, "EXISTS l") == 0


def test_restore_keeps_the_size_limits() -> None:
    session, _ = make_session(Config(max_value_bytes=4))
    problem = call(session, [b"RESTORE", b"k", b"0", payload(0, rdb_string(b"12345"))])
    assert isinstance(problem, Error) and "value too long" in str(problem)
    problem = call(session, [b"RESTORE", b"k", b"0", payload(4, rdb_length(1) + rdb_string(b"f") + rdb_string(b"12345"))])
    assert isinstance(problem, Error) and "value too long" in str(problem)
    assert call(session, "EXISTS k") == 0
