"""Redis generic key commands through the engine (``run_batch``), no sockets.

Every expected reply and error wording here was checked against a real
redis-server 7.0. Time is a fake keyspace clock, so TTLs are exact.
"""

from __future__ import annotations

import pytest

from trio_kv.commands.keys import parse_scan_cursor
from trio_kv.commands.redis import REDIS_COMMANDS
from trio_kv.commands.session import Session
from trio_kv.protocol.replies import OK, Error, SimpleString

from ..fake_clock import START_MS
from .redis_session import call, key_spec, make_session, reply_after, run

START_S = START_MS // 1000
NOT_INTEGER = Error("ERR value is not an integer or out of range")
SYNTAX = Error("ERR syntax error")
NX_CONFLICT = Error("ERR NX and XX, GT or LT options at the same time are not compatible")
GT_LT_CONFLICT = Error("ERR GT and LT options at the same time are not compatible")


def invalid_expire(command: str) -> Error:
    return Error(f"ERR invalid expire time in '{command}' command")


# (setup commands, request, expected reply)
CASES = [
    # DEL / UNLINK / EXISTS
    (["SET a 1", "SET b 2"], "DEL a a b c", 2),
    (["SET a 1", "DEL a"], "GET a", None),
    (["SET a 1"], "UNLINK a a", 1),
    ([], "DEL", Error("ERR wrong number of arguments for 'del' command")),
    (["SET a 1", "SET b 1"], "EXISTS a a a b c", 4),
    ([], "EXISTS a", 0),
    # EXPIRE family: options, then the number, then the key
    (["SET k v"], "EXPIRE k 100", 1),
    (["SET k v", "EXPIRE k 100"], "TTL k", 100),
    (["SET k v", "PEXPIRE k 1500"], "PTTL k", 1500),
    (["SET k v", f"EXPIREAT k {START_S + 60}"], "TTL k", 60),
    (["SET k v", f"PEXPIREAT k {START_MS + 60}"], "PTTL k", 60),
    ([], "EXPIRE k 100", 0),
    (["SET k v"], "EXPIRE k -1", 1),  # a time already past deletes the key
    (["SET k v", "EXPIRE k -1"], "EXISTS k", 0),
    (["SET k v", "EXPIRE k 0"], "EXISTS k", 0),
    (["SET k v", f"EXPIREAT k {START_S}"], "EXISTS k", 0),
    (["SET k v", f"PEXPIREAT k {START_MS + 1}"], "EXISTS k", 1),
    (["SET k v"], "EXPIRE k 100 XX", 0),
    (["SET k v"], "EXPIRE k 100 GT", 0),  # no TTL counts as infinite
    (["SET k v"], "EXPIRE k 100 LT", 1),
    (["SET k v"], "EXPIRE k 100 NX", 1),
    (["SET k v EX 100"], "EXPIRE k 200 NX", 0),
    (["SET k v EX 100"], "EXPIRE k 200 XX", 1),
    (["SET k v EX 100"], "EXPIRE k 50 GT", 0),
    (["SET k v EX 100"], "EXPIRE k 100 GT", 0),
    (["SET k v EX 100"], "EXPIRE k 200 gt", 1),
    (["SET k v EX 100", "EXPIRE k 200 GT"], "TTL k", 200),
    (["SET k v EX 100"], "EXPIRE k 300 LT", 0),
    (["SET k v EX 100"], "EXPIRE k 10 lt", 1),
    (["SET k v EX 100"], "EXPIRE k 20 XX GT", 0),
    (["SET k v EX 100"], "EXPIRE k 200 XX GT", 1),
    (["SET k v EX 100"], "EXPIRE k 10 LT LT", 1),
    (["SET k v"], "EXPIRE k 0 XX", 0),
    (["SET k v"], "EXPIRE k 0 LT", 1),
    (["SET k v"], "EXPIRE k 10 NX XX", NX_CONFLICT),
    (["SET k v"], "EXPIRE k 10 NX GT", NX_CONFLICT),
    (["SET k v"], "EXPIRE k 10 LT NX", NX_CONFLICT),
    (["SET k v"], "EXPIRE k 10 GT LT", GT_LT_CONFLICT),
    (["SET k v"], "EXPIRE k 10 foo", Error("ERR Unsupported option foo")),
    ([], "EXPIRE k abc foo", Error("ERR Unsupported option foo")),
    ([], "EXPIRE k abc", NOT_INTEGER),
    ([], "EXPIRE k 10.5", NOT_INTEGER),
    ([], "EXPIRE k", Error("ERR wrong number of arguments for 'expire' command")),
    ([], "EXPIRE k 9223372036854775", invalid_expire("expire")),  # now + n overflows
    ([], "EXPIRE k 9223370000000000", 0),
    ([], "EXPIREAT k 9223372036854775", 0),
    ([], "EXPIRE k 9223372036854776", invalid_expire("expire")),
    ([], "EXPIRE k -9223372036854775", 0),
    ([], "EXPIRE k -9223372036854776", invalid_expire("expire")),
    ([], "PEXPIRE k 9223372036854775807", invalid_expire("pexpire")),
    ([], "EXPIREAT k 9223372036854776", invalid_expire("expireat")),
    ([], "expireat k -9223372036854775808", invalid_expire("expireat")),
    ([], "PEXPIREAT k 9223372036854775807", 0),
    (["SET k v"], "PEXPIREAT k 9223372036854775807", 1),
    # TTL / PTTL / EXPIRETIME / PEXPIRETIME / PERSIST
    ([], "TTL k", -2),
    (["SET k v"], "TTL k", -1),
    ([], "PTTL k", -2),
    (["SET k v"], "PTTL k", -1),
    (["SET k v PX 1499"], "TTL k", 1),  # rounds: (ms + 500) // 1000
    (["SET k v PX 1500"], "TTL k", 2),
    (["SET k v PX 499"], "TTL k", 0),
    ([], "EXPIRETIME k", -2),
    (["SET k v"], "EXPIRETIME k", -1),
    (["SET k v EX 100"], "EXPIRETIME k", START_S + 100),
    (["SET k v PX 1500"], "PEXPIRETIME k", START_MS + 1500),
    (["SET k v PX 1500"], "EXPIRETIME k", START_S + 2),
    (["SET k v EX 100"], "PERSIST k", 1),
    (["SET k v EX 100", "PERSIST k"], "TTL k", -1),
    (["SET k v"], "PERSIST k", 0),
    ([], "PERSIST k", 0),
    # TYPE
    (["SET k v"], "TYPE k", SimpleString("string")),
    ([], "TYPE k", SimpleString("none")),
    # RENAME / RENAMENX
    ([], "RENAME a b", Error("ERR no such key")),
    ([], "RENAME a a", Error("ERR no such key")),
    ([], "RENAMENX a b", Error("ERR no such key")),
    (["SET a 1"], "RENAME a a", OK),
    (["SET a 1"], "RENAMENX a a", 0),
    (["SET a 1"], "RENAME a b", OK),
    (["SET a 1", "RENAME a b"], "MGET a b", [None, b"1"]),
    (["SET a 1 EX 100", "RENAME a b"], "TTL b", 100),
    (["SET a 1", "SET b 2 EX 100", "RENAME a b"], "TTL b", -1),
    (["SET a 1", "SET b 2"], "RENAMENX a b", 0),
    (["SET a 1", "SET b 2", "RENAMENX a b"], "MGET a b", [b"1", b"2"]),
    (["SET a 1 EX 100"], "RENAMENX a b", 1),
    (["SET a 1 EX 100", "RENAMENX a b"], "TTL b", 100),
    # RANDOMKEY / KEYS / DBSIZE
    ([], "RANDOMKEY", None),
    (["SET only 1"], "RANDOMKEY", b"only"),
    ([], "KEYS *", []),
    ([], "KEYS", Error("ERR wrong number of arguments for 'keys' command")),
    (["SET a 1", "SET b 1"], "DBSIZE", 2),
    # SCAN argument errors
    ([], "SCAN abc", Error("ERR invalid cursor")),
    ([], "SCAN ' 0'", Error("ERR invalid cursor")),
    ([], "SCAN 18446744073709551616", Error("ERR invalid cursor")),
    ([], "SCAN 0 COUNT 0", SYNTAX),
    ([], "SCAN 0 COUNT -1", SYNTAX),
    ([], "SCAN 0 COUNT abc", NOT_INTEGER),
    ([], "SCAN 0 COUNT", SYNTAX),
    ([], "SCAN 0 MATCH", SYNTAX),
    ([], "SCAN 0 FOO bar", SYNTAX),
    ([], "SCAN", Error("ERR wrong number of arguments for 'scan' command")),
    (["SET k v"], "SCAN 0", [b"0", [b"k"]]),
    (["SET k v"], "SCAN 0 TYPE STRING", [b"0", [b"k"]]),
    (["SET k v"], "SCAN 0 TYPE hash", [b"0", []]),
    (["SET k v"], "SCAN 0 MATCH x*", [b"0", []]),
    # FLUSHDB / FLUSHALL
    (["SET a 1"], "FLUSHDB", OK),
    (["SET a 1", "FLUSHDB"], "DBSIZE", 0),
    (["SET a 1", "FLUSHALL ASYNC"], "DBSIZE", 0),
    (["SET a 1", "flushall sync"], "DBSIZE", 0),
    ([], "FLUSHDB foo", SYNTAX),
    ([], "FLUSHALL ASYNC SYNC", SYNTAX),
]


@pytest.mark.parametrize(("setup", "command", "expected"), CASES, ids=[case[1] for case in CASES])
def test_command(setup: list[str], command: str, expected: object) -> None:
    assert reply_after(setup, command) == expected


def test_failed_flush_keeps_the_keys() -> None:
    session, _ = make_session()
    assert run(session, "SET a 1", "FLUSHALL foo", "FLUSHDB a b", "DBSIZE") == [OK, SYNTAX, SYNTAX, 1]


def test_ttl_counts_down_with_the_clock() -> None:
    session, clock = make_session()
    run(session, "SET k v", "EXPIRE k 10")
    clock.advance(9_499)
    assert run(session, "TTL k", "PTTL k") == [1, 501]
    clock.advance(500)
    assert run(session, "TTL k", "PTTL k", "EXISTS k") == [0, 1, 1]
    clock.advance(1)
    assert run(session, "TTL k", "PTTL k", "EXISTS k", "TYPE k", "PERSIST k", "EXPIRE k 5") == [
        -2,
        -2,
        0,
        SimpleString("none"),
        0,
        0,
    ]


def test_expired_keys_are_invisible_to_every_command() -> None:
    session, clock = make_session()
    run(session, "SET gone v PX 10", "SET kept v")
    clock.advance(10)
    replies = run(session, "KEYS *", "SCAN 0 COUNT 100", "RANDOMKEY", "RENAME gone x", "DEL gone")
    assert replies == [[b"kept"], [b"0", [b"kept"]], b"kept", Error("ERR no such key"), 0]


def test_keys_patterns() -> None:
    session, _ = make_session()
    run(session, "MSET hello 1 hallo 1 hxllo 1 hllo 1 heeeello 1 'h llo' 1 x 1")
    cases = {
        "*": {"hello", "hallo", "hxllo", "hllo", "heeeello", "h llo", "x"},
        "h?llo": {"hello", "hallo", "hxllo", "h llo"},
        "h*llo": {"hello", "hallo", "hxllo", "hllo", "heeeello", "h llo"},
        "h[ae]llo": {"hello", "hallo"},
        "h[^e]llo": {"hallo", "hxllo", "h llo"},
        "h[a-b]llo": {"hallo"},
        "nothing*": set(),
        "x": {"x"},
    }
    for pattern, expected in cases.items():
        assert {key.decode() for key in call(session, [b"KEYS", pattern.encode()])} == expected, pattern


def scan_all(session: Session, *options: str) -> tuple[list[bytes], int]:
    """Every key a full SCAN returns (duplicates kept) and the number of calls."""
    cursor = b"0"
    keys: list[bytes] = []
    calls = 0
    while True:
        reply = call(session, [b"SCAN", cursor, *(word.encode() for word in options)])
        cursor, batch = reply
        assert isinstance(cursor, bytes) and isinstance(batch, list)
        keys += batch
        calls += 1
        if cursor == b"0":
            return keys, calls


def test_scan_visits_every_key() -> None:
    session, _ = make_session()
    names = [b"key:%d" % i for i in range(1000)]
    run(session, [b"MSET", *(part for name in names for part in (name, b"v"))])
    keys, calls = scan_all(session)
    assert set(keys) == set(names)
    assert calls > 10  # COUNT 10 by default: many small steps
    keys, calls = scan_all(session, "COUNT", "5000")
    assert sorted(keys) == sorted(names) and calls == 1
    matched, _ = scan_all(session, "MATCH", "key:1?", "COUNT", "50")
    assert sorted(matched) == sorted(b"key:1%d" % i for i in range(10))
    typed, _ = scan_all(session, "TYPE", "string", "COUNT", "100")
    assert set(typed) == set(names)
    assert scan_all(session, "TYPE", "list")[0] == []


def test_scan_survives_writes_between_calls() -> None:
    session, _ = make_session()
    stable = [b"stable:%d" % i for i in range(300)]
    run(session, [b"MSET", *(part for name in stable for part in (name, b"v"))])
    cursor, seen, step = b"0", set(), 0
    while True:
        cursor, batch = call(session, [b"SCAN", cursor, b"COUNT", b"20"])
        seen.update(batch)
        # Grow the table (forcing resizes) while the scan runs.
        run(session, [b"MSET", *(part for i in range(50) for part in (b"new:%d:%d" % (step, i), b"v"))])
        step += 1
        if cursor == b"0":
            break
    assert set(stable) <= seen


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (b"0", 0),
        (b"", 0),
        (b"+5", 5),
        (b"-0", 0),
        (b"-1", 2**64 - 1),
        (b"18446744073709551615", 2**64 - 1),
        (b"18446744073709551616", None),
        (b"-18446744073709551616", None),
        (b" 1", None),
        (b"1 ", None),
        (b"0x10", None),
        (b"+", None),
        (b"abc", None),
    ],
)
def test_scan_cursor_parses_like_strtoul(token: bytes, expected: int | None) -> None:
    assert parse_scan_cursor(token) == expected


def test_counters_and_keyspace_hits() -> None:
    session, _ = make_session()
    run(session, "MSET a 1 b 2")
    session.stats.reset()
    run(
        session,
        "EXISTS a b c",  # 2 hits, 1 miss
        "TTL a",  # hit
        "PTTL c",  # miss
        "TYPE b",  # hit
        "EXPIRE a 100",  # a write lookup: not counted
        "DEL a c",  # dels
        "UNLINK b",  # dels
        "SCAN 0 TYPE string",  # one hit per key returned (none left)
    )
    counters = session.stats.counters()
    assert (counters["dels"], counters["gets"], counters["sets"]) == (2, 0, 0)
    assert (counters["keyspace_hits"], counters["keyspace_misses"]) == (4, 2)


def test_specs_match_redis_command_info() -> None:
    expected = {
        # name: (arity, flags, first key, last key, step)
        "del": (-2, {"write"}, 1, -1, 1),
        "unlink": (-2, {"write", "fast"}, 1, -1, 1),
        "exists": (-2, {"readonly", "fast"}, 1, -1, 1),
        "expire": (-3, {"write", "fast"}, 1, 1, 1),
        "pexpireat": (-3, {"write", "fast"}, 1, 1, 1),
        "ttl": (2, {"readonly", "fast"}, 1, 1, 1),
        "persist": (2, {"write", "fast"}, 1, 1, 1),
        "type": (2, {"readonly", "fast"}, 1, 1, 1),
        "rename": (3, {"write"}, 1, 2, 1),
        "renamenx": (3, {"write", "fast"}, 1, 2, 1),
        "randomkey": (1, {"readonly"}, 0, 0, 0),
        "keys": (2, {"readonly"}, 0, 0, 0),
        "scan": (-2, {"readonly"}, 0, 0, 0),
        "dbsize": (1, {"readonly", "fast"}, 0, 0, 0),
        "flushdb": (-1, {"write"}, 0, 0, 0),
        "flushall": (-1, {"write"}, 0, 0, 0),
    }
    for name, info in expected.items():
        assert key_spec(name) == info, name
        spec = REDIS_COMMANDS.get(name)
        assert spec.group == "generic" and spec.summary
