"""DUMP / RESTORE and COMMAND GETKEYS(ANDFLAGS) against a real redis-server 7.0.

* Payloads travel both ways between a trio_kv process and redis-server:
  strings (integer, raw, LZF-compressed by Redis, 1 MiB) and hashes
  (listpack and hash table in Redis) DUMPed by one are RESTOREd by the
  other with the same value and TTL.
* Lists, sets and sorted sets (which trio_kv does not store) at the codec:
  redis-server's DUMP of each encoding it writes decodes to what it holds,
  and ``encode_payload``'s plain encodings, and the older ziplist encodings
  built by tests/rdb_builders.py, RESTORE in redis-server to the same
  elements. trio_kv's RESTORE refuses them with ``-ERR Bad data format``.
* RESTORE's and DUMP's replies, errors included, are byte-identical.
* COMMAND GETKEYS and GETKEYSANDFLAGS of every command trio_kv lists, with
  0 to 6 arguments and some option shapes, in RESP2 and RESP3, answer as
  redis-server does (commands redis-server 7.0 does not have are left out).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.rdb_builders import payload, rdb_length, rdb_string, ziplist
from trio_kv.protocol.rdb_payload import (
    HashObject,
    ListObject,
    SetObject,
    SortedSetObject,
    decode_payload,
    encode_payload,
)

from .durable_server import Resp, RespError, started
from .test_hashes_vs_redis import redis_server, replies

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")

STRINGS = {
    b"s:small": b"hello",
    b"s:int8": b"-12",
    b"s:int32": b"2000000000",
    b"s:int64": b"9223372036854775807",
    b"s:compressible": b"abc" * 400,
    b"s:empty": b"",
    b"s:binary": bytes(range(256)) * 3,
    b"s:mib": bytes(range(251)) * 4178,
}
HASHES = {
    b"h:listpack": {b"a": b"1", b"b": b"-70000", b"c": b"x" * 40, b"big": b"9223372036854775808"},
    b"h:table": {b"f%d" % i: b"%d" % (i * 7) for i in range(300)},
    b"h:longvalue": {b"f": b"v" * 5000},
}


def _fill(client: Resp) -> None:
    for key, value in STRINGS.items():
        assert client.call("SET", key, value) == "OK"
    for key, fields in HASHES.items():
        client.call("HSET", key, *[part for pair in fields.items() for part in pair])
    assert client.call("PEXPIRE", b"s:small", 100_000) == 1


def _check(client: Resp, prefix: bytes) -> None:
    for key, value in STRINGS.items():
        assert client.call("GET", prefix + key) == value, key
    for key, fields in HASHES.items():
        got = client.call("HGETALL", prefix + key)
        assert isinstance(got, list)
        assert dict(zip(got[0::2], got[1::2])) == fields, key
    ttl = client.call("PTTL", prefix + b"s:small")
    assert isinstance(ttl, int) and 90_000 < ttl <= 100_000


def _copy(source: Resp, target: Resp, prefix: bytes) -> None:
    for key in [*STRINGS, *HASHES]:
        dumped = source.call("DUMP", key)
        assert isinstance(dumped, bytes), key
        ttl = source.call("PTTL", key)
        assert isinstance(ttl, int)
        assert target.call("RESTORE", prefix + key, max(ttl, 0), dumped) == "OK", key


def test_payloads_travel_both_ways(tmp_path: Path) -> None:
    with started(tmp_path / "data", "--appendonly", "no") as server, redis_server(tmp_path) as address:
        with Resp(server.address) as ours, Resp(address) as redis:
            _fill(ours)
            _fill(redis)
            _copy(ours, redis, b"from-trio:")
            _copy(redis, ours, b"from-redis:")
            _check(redis, b"from-trio:")
            _check(ours, b"from-redis:")
            # A second trip: redis-server's DUMP of what trio_kv sent restores back here.
            _copy(redis, ours, b"again:")
            for key in STRINGS:
                assert ours.call("GET", b"again:from-trio:" + key) is None
            _check(ours, b"from-redis:")


def _members(client: Resp, key: bytes, kind: str) -> object:
    if kind == "list":
        return client.call("LRANGE", key, 0, -1)
    if kind == "hash":
        got = client.call("HGETALL", key)
        assert isinstance(got, list)
        return list(zip(got[0::2], got[1::2]))
    if kind == "set":
        got = client.call("SMEMBERS", key)
        assert isinstance(got, list)
        return sorted(got)
    got = client.call("ZRANGE", key, 0, -1, "WITHSCORES")
    assert isinstance(got, list)
    return [(member, float(score)) for member, score in zip(got[0::2], got[1::2])]


def _as_members(obj: object) -> object:
    if isinstance(obj, ListObject):
        return list(obj.items)
    if isinstance(obj, SetObject):
        return sorted(obj.members)
    if isinstance(obj, HashObject):
        return list(obj.pairs)
    assert isinstance(obj, SortedSetObject)
    return sorted(obj.entries, key=lambda entry: (entry[1], entry[0]))


def test_other_families_at_the_codec(tmp_path: Path) -> None:
    # Each shape is one of the encodings redis-server 7.0 picks.
    writes = [
        ("list", b"l:listpack", ("RPUSH", b"l:listpack", "a", "1", "-5000", "70000", "x" * 70, "9223372036854775807")),
        ("list", b"l:plain-node", ("RPUSH", b"l:plain-node", "y" * 20000, "z")),
        ("set", b"z:intset", ("SADD", b"z:intset", 1, -2, 70000, 2**40)),
        ("set", b"z:table", ("SADD", b"z:table", "a", "b", "1")),
        ("zset", b"q:listpack", ("ZADD", b"q:listpack", 1, "a", 2.5, "b", -3e100, "c", "inf", "d")),
        ("zset", b"q:skiplist", ("ZADD", b"q:skiplist", *[part for i in range(200) for part in (i / 3, f"m{i}")])),
    ]
    with redis_server(tmp_path) as address, Resp(address) as redis:
        assert redis.call("CONFIG", "SET", "list-max-listpack-size", "4") == "OK"
        redis.call("RPUSH", b"l:quicklist", *range(20))
        writes.append(("list", b"l:quicklist", ()))
        # Listpack entries whose back-length sits at Redis' size thresholds
        # (an entry of 16383 bytes takes a 3-byte back-length).
        assert redis.call("CONFIG", "SET", "hash-max-listpack-value", "100000") == "OK"
        for size in (122, 123, 16377, 16378, 16379):
            writes.append(("hash", b"h:%d" % size, ("HSET", b"h:%d" % size, "f", "x" * size, "g", "1")))
        for kind, key, command in writes:
            if command:
                redis.call(*command)
            dumped = redis.call("DUMP", key)
            assert isinstance(dumped, bytes)
            obj = decode_payload(dumped)
            assert _as_members(obj) == _members(redis, key, kind), key
            assert redis.call("RESTORE", b"back:" + key, 0, encode_payload(obj)) == "OK"
            assert _members(redis, b"back:" + key, kind) == _members(redis, key, kind), key
        older = {
            b"old:list": (payload(10, rdb_string(ziplist([b"a", b"7", b"-300", b"x" * 300]))), "list"),
            b"old:quicklist": (payload(14, rdb_length(1) + rdb_string(ziplist([b"q", b"12"]))), "list"),
            b"old:zset": (payload(12, rdb_string(ziplist([b"m", b"1", b"n", b"2.5"]))), "zset"),
        }
        for key, (dumped, kind) in older.items():
            assert redis.call("RESTORE", key, 0, dumped) == "OK", key
            assert _members(redis, key, kind) == _as_members(decode_payload(dumped)), key
        hash_ziplist = payload(13, rdb_string(ziplist([b"f", b"1", b"g", b"-70000"])))
        assert redis.call("RESTORE", b"old:hash", 0, hash_ziplist) == "OK"
        assert decode_payload(hash_ziplist) == HashObject(((b"f", b"1"), (b"g", b"-70000")))
        assert redis.call("HGETALL", b"old:hash") == [b"f", b"1", b"g", b"-70000"]
        list_payload = redis.call("DUMP", b"l:listpack")
    with started(tmp_path / "data", "--appendonly", "no") as server, Resp(server.address) as ours:
        refused = ours.call("RESTORE", b"l", 0, list_payload)
        assert isinstance(refused, RespError) and str(refused) == "ERR Bad data format"
        assert ours.call("RESTORE", b"h", 0, hash_ziplist) == "OK"
        assert ours.call("HGETALL", b"h") == [b"f", b"1", b"g", b"-70000"]


GOOD = payload(0, rdb_string(b"value"))
REPLY_COMMANDS: list[tuple] = [
    ("DUMP", "missing"),
    ("SET", "k", "v"),
    ("RESTORE", "k", 0, GOOD),
    ("RESTORE", "k", 0, GOOD, "REPLACE"),
    ("GET", "k"),
    ("RESTORE", "n", "x", GOOD),
    ("RESTORE", "n", -1, GOOD),
    ("RESTORE", "n", 0, b"short"),
    ("RESTORE", "n", 0, GOOD[:-1] + b"\x00"),
    ("RESTORE", "n", 0, payload(0, rdb_string(b"v"), version=11)),
    ("RESTORE", "n", 0, payload(0, b"\x05ab")),
    ("RESTORE", "n", 0, payload(42, b"")),
    ("RESTORE", "n", 0, payload(4, rdb_length(0))),
    ("RESTORE", "n", 0, GOOD, "BOGUS"),
    ("RESTORE", "n", 0, GOOD, "IDLETIME"),
    ("RESTORE", "n", 0, GOOD, "IDLETIME", -1),
    ("RESTORE", "n", 0, GOOD, "IDLETIME", "x"),
    ("RESTORE", "n", 0, GOOD, "FREQ", 256),
    ("RESTORE", "n", 0, GOOD, "FREQ", 1, "IDLETIME", 1),
    ("RESTORE", "n", 0, GOOD, "IDLETIME", 10, "ABSTTL", "REPLACE"),
    ("RESTORE", "n", 0, GOOD, "FREQ", 100),
    ("RESTORE", "past", 1, GOOD, "ABSTTL"),
    ("EXISTS", "past"),
    ("RESTORE", "k", 1, GOOD, "ABSTTL", "REPLACE"),
    ("EXISTS", "k"),
    ("RESTORE", "t", 100000, GOOD),
    ("TTL", "t"),
    ("RESTORE", "t", 0, GOOD),
    ("RESTORE",),
    ("RESTORE", "a", 0),
    ("DUMP",),
    ("HSET", "h", "f", "v"),
    ("RESTORE", "h2", 0, payload(4, rdb_length(1) + rdb_string(b"f") + rdb_string(b"v"))),
    ("HGETALL", "h2"),
    ("TYPE", "h2"),
    ("COMMAND", "INFO", "dump", "restore"),
    ("COMMAND", "GETKEYSANDFLAGS", "restore", "k", "0", "x"),
    ("COMMAND", "GETKEYSANDFLAGS", "dump", "k"),
    ("CONFIG", "SET", "sanitize-dump-payload", "yes"),
    ("CONFIG", "GET", "sanitize-dump-payload"),
    ("CONFIG", "SET", "sanitize-dump-payload", "clients"),
    ("CONFIG", "SET", "sanitize-dump-payload", "maybe"),
    ("CONFIG", "GET", "sanitize-dump-payload"),
]


@pytest.mark.parametrize("protocol", [2, 3])
def test_replies_match_redis_server(tmp_path: Path, protocol: int) -> None:
    with started(tmp_path / "data", "--appendonly", "no") as server:
        ours = replies(server.address, REPLY_COMMANDS, protocol)
    with redis_server(tmp_path) as address:
        theirs = replies(address, REPLY_COMMANDS, protocol)
    if ours != theirs:
        for index, (mine, redis) in enumerate(zip(ours.split(b"\r\n"), theirs.split(b"\r\n"))):
            assert mine == redis, (index, ours.split(b"\r\n")[max(0, index - 8) : index + 4])
    assert ours == theirs


GETKEYS_EXTRAS: list[list[bytes]] = [
    [], [b"GET"], [b"get", b"EX", b"10"], [b"NX"], [b"STORE", b"dst"], [b"1", b"k9"], [b"LEFT", b"RIGHT"],
]


def _getkeys_requests(names: list[bytes]) -> list[tuple]:
    requests: list[tuple] = []
    for name in names:
        words = name.split(b"|")
        for count in range(7):
            for sub in (b"GETKEYS", b"GETKEYSANDFLAGS"):
                requests.append((b"COMMAND", sub, *words, *[b"a%d" % i for i in range(count)]))
        for extra in GETKEYS_EXTRAS:
            requests.append((b"COMMAND", b"GETKEYSANDFLAGS", *words, b"k1", b"v1", *extra))
    requests += [
        (b"COMMAND", b"GETKEYS"),
        (b"COMMAND", b"GETKEYS", b"nosuch", b"k"),
        (b"COMMAND", b"GETKEYSANDFLAGS", b"config", b"nosuch", b"x"),
        (b"COMMAND", b"GETKEYSANDFLAGS", b"set", b"k1", b"v1"),
        (b"COMMAND", b"GETKEYSANDFLAGS", b"mset", b"k1", b"v1", b"k2", b"v2"),
    ]
    return requests


@pytest.mark.parametrize("protocol", [2, 3])
def test_getkeys_answers_as_redis_server_for_every_command(tmp_path: Path, protocol: int) -> None:
    with started(tmp_path / "data", "--appendonly", "no") as server, Resp(server.address) as client:
        listed = client.call("COMMAND", "LIST")
        assert isinstance(listed, list)
        with redis_server(tmp_path) as address, Resp(address) as redis:
            known = redis.call("COMMAND", "INFO", *listed)
            assert isinstance(known, list)
            names = [name for name, info in zip(listed, known) if info is not None]
            assert b"dump" in names and b"memory|usage" in names and len(names) > 100
            requests = _getkeys_requests(names)
            theirs = replies(address, requests, protocol)
        ours = replies(server.address, requests, protocol)
    if ours != theirs:
        for index, (mine, redis_line) in enumerate(zip(ours.split(b"\r\n"), theirs.split(b"\r\n"))):
            assert mine == redis_line, (index, ours.split(b"\r\n")[max(0, index - 8) : index + 4])
    assert ours == theirs
