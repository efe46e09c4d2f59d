"""The data commands through the real ``redis`` client (redis-py), sync and
asyncio, RESP3 and RESP2, against a real server process.

The server is ``python -m trio_kv --port 0`` in a subprocess (redis-py's sync
client blocks, so it cannot share Trio's thread); its port is read from the
log line it prints once it listens, and SIGTERM stops it. Every test starts
from an empty keyspace (FLUSHALL).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio
from redis.exceptions import DataError, ExecAbortError, ResponseError, WatchError

from harness.server_process import ServerProcess

from ..conftest import REPO

SOCKET_TIMEOUT_SECONDS = 10
ASYNC_TEST_SECONDS = 20
PROTOCOLS = [3, 2]


@pytest.fixture(scope="module")
def server_address(tmp_path_factory) -> Iterator[tuple[str, int]]:
    with ServerProcess.start(REPO, data_dir=tmp_path_factory.mktemp("trio_kv") / "data") as server:
        yield server.address


@pytest.fixture(params=PROTOCOLS, ids=lambda protocol: f"resp{protocol}")
def r(request, server_address) -> Iterator[redis.Redis]:
    host, port = server_address
    client = redis.Redis(host=host, port=port, protocol=request.param, socket_timeout=SOCKET_TIMEOUT_SECONDS)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def other(server_address) -> Iterator[redis.Redis]:
    """A second connection, to write between another client's WATCH and EXEC."""
    host, port = server_address
    client = redis.Redis(host=host, port=port, socket_timeout=SOCKET_TIMEOUT_SECONDS)
    yield client
    client.close()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# --- strings ---------------------------------------------------------------------


def test_get_set_and_options(r: redis.Redis) -> None:
    assert r.get("k") is None
    assert r.set("k", "v") is True
    assert r.get("k") == b"v"
    assert r.set("k", "w", nx=True) is None
    assert r.set("new", "w", nx=True) is True
    assert r.set("absent", "w", xx=True) is None
    assert r.set("k", "w", xx=True) is True
    assert r.set("k", "x", get=True) == b"w"
    assert r.set("k", "y", ex=100) is True
    assert 99 <= r.ttl("k") <= 100
    assert r.set("k", "y", px=5000) is True
    assert 4000 < r.pttl("k") <= 5000
    assert r.set("k", "z", keepttl=True) is True
    assert 4000 < r.pttl("k") <= 5000
    assert r.set("k", "y", exat=int(time.time()) + 100) is True
    assert 98 <= r.ttl("k") <= 100
    assert r.set("k", "y", pxat=now_ms() + 100_000) is True
    assert 98 <= r.ttl("k") <= 100
    assert r.set("k", "plain") is True and r.ttl("k") == -1
    assert r.set("gone", "v", pxat=1) is True and r.get("gone") is None
    with pytest.raises(ResponseError, match="^invalid expire time in 'set' command$"):
        r.set("k", "v", ex=0)
    with pytest.raises(ResponseError, match="^syntax error$"):
        r.execute_command("SET", "k", "v", "NX", "XX")
    with pytest.raises(DataError):
        r.set("k", "v", nx=True, xx=True)  # refused by the client before sending


@pytest.mark.filterwarnings("ignore:Call to deprecated setex:DeprecationWarning")
def test_set_variants(r: redis.Redis) -> None:
    assert r.setnx("k", "v") is True
    assert r.setnx("k", "w") is False
    assert r.setex("s", 100, "v") is True and 99 <= r.ttl("s") <= 100
    assert r.psetex("p", 100_000, "v") is True and 99_000 < r.pttl("p") <= 100_000
    assert r.getset("k", "new") == b"v"
    assert r.getset("absent", "x") is None
    assert r.getdel("k") == b"new" and r.exists("k") == 0
    assert r.getdel("k") is None
    with pytest.raises(ResponseError, match="^invalid expire time in 'setex' command$"):
        r.setex("s", -1, "v")


def test_getex(r: redis.Redis) -> None:
    r.set("k", "v")
    assert r.getex("k") == b"v" and r.ttl("k") == -1
    assert r.getex("k", ex=100) == b"v" and 99 <= r.ttl("k") <= 100
    assert r.getex("k", px=50_000) == b"v" and 49_000 < r.pttl("k") <= 50_000
    assert r.getex("k", exat=int(time.time()) + 200) == b"v" and 198 <= r.ttl("k") <= 200
    assert r.getex("k", pxat=now_ms() + 300_000) == b"v" and 298 <= r.ttl("k") <= 300
    assert r.getex("k", persist=True) == b"v" and r.ttl("k") == -1
    assert r.getex("absent", ex=10) is None
    with pytest.raises(DataError):
        r.getex("k", ex=1, persist=True)  # the client checks this one itself
    with pytest.raises(ResponseError, match="^syntax error$"):
        r.execute_command("GETEX", "k", "EX", "1", "PERSIST")


def test_multi_key_strings(r: redis.Redis) -> None:
    assert r.mset({"a": "1", "b": "2"}) is True
    assert r.mget("a", "b", "c") == [b"1", b"2", None]
    assert r.msetnx({"c": "3", "d": "4"}) is True
    assert r.msetnx({"d": "x", "e": "5"}) is False
    assert r.mget(["d", "e"]) == [b"4", None]
    with pytest.raises(ResponseError, match="^wrong number of arguments for 'mset' command$"):
        r.execute_command("MSET", "a", "1", "b")


def test_counters(r: redis.Redis) -> None:
    assert r.incr("n") == 1
    assert r.incr("n", 10) == 11
    assert r.incrby("n", 5) == 16
    assert r.decr("n") == 15
    assert r.decrby("n", 20) == -5
    assert r.incrbyfloat("f", 10.5) == 10.5
    assert r.incrbyfloat("f", 0.1) == 10.6
    assert r.get("f") == b"10.6"
    r.set("big", 2**63 - 1)
    with pytest.raises(ResponseError, match="^increment or decrement would overflow$"):
        r.incr("big")
    r.set("text", "abc")
    with pytest.raises(ResponseError, match="^value is not an integer or out of range$"):
        r.incr("text")
    with pytest.raises(ResponseError, match="^value is not a valid float$"):
        r.incrbyfloat("text", 1)
    with pytest.raises(ResponseError, match="^increment would produce NaN or Infinity$"):
        r.incrbyfloat("f", "inf")


def test_append_and_ranges(r: redis.Redis) -> None:
    assert r.append("k", "Hello") == 5
    assert r.append("k", " World") == 11
    assert r.strlen("k") == 11 and r.strlen("absent") == 0
    assert r.getrange("k", 0, 4) == b"Hello"
    assert r.getrange("k", -5, -1) == b"World"
    assert r.getrange("k", 5, 2) == b""
    assert r.substr("k", 6) == b"World"
    assert r.setrange("k", 6, "Redis") == 11
    assert r.get("k") == b"Hello Redis"
    assert r.setrange("pad", 3, "x") == 4 and r.get("pad") == b"\0\0\0x"
    with pytest.raises(ResponseError, match="^offset is out of range$"):
        r.setrange("k", -1, "x")
    with pytest.raises(ResponseError, match=r"^string exceeds maximum allowed size \(proto-max-bulk-len\)$"):
        r.setrange("k", 2**29, "x")


# --- keys ------------------------------------------------------------------------


def test_delete_and_exists(r: redis.Redis) -> None:
    r.mset({"a": "1", "b": "2", "c": "3"})
    assert r.exists("a", "a", "b", "zz") == 3
    assert r.delete("a", "a", "zz") == 1
    assert r.unlink("b", "c") == 2
    assert r.dbsize() == 0


def test_expiry_commands(r: redis.Redis) -> None:
    r.set("k", "v")
    assert r.ttl("k") == -1 and r.pttl("k") == -1 and r.ttl("absent") == -2 and r.pttl("absent") == -2
    assert r.expire("k", 100) is True and 99 <= r.ttl("k") <= 100
    assert r.expire("k", 50, gt=True) is False
    assert r.expire("k", 200, gt=True) is True
    assert r.expire("k", 300, lt=True) is False
    assert r.expire("k", 10, lt=True) is True
    assert r.expire("k", 10, nx=True) is False
    assert r.expire("k", 20, xx=True) is True and 19 <= r.ttl("k") <= 20
    assert r.pexpire("k", 50_000) is True and 49_000 < r.pttl("k") <= 50_000
    at = int(time.time()) + 500
    assert r.expireat("k", at) is True and r.expiretime("k") == at
    at_ms = now_ms() + 600_000
    assert r.pexpireat("k", at_ms) is True and r.pexpiretime("k") == at_ms
    assert r.persist("k") is True and r.persist("k") is False and r.ttl("k") == -1
    assert r.expire("absent", 10) is False
    assert r.pexpireat("k", 1) is True and r.exists("k") == 0  # a past time deletes
    with pytest.raises(ResponseError, match="^NX and XX, GT or LT options at the same time are not compatible$"):
        r.expire("k", 10, nx=True, xx=True)
    with pytest.raises(ResponseError, match="^Unsupported option FOO$"):
        r.execute_command("EXPIRE", "k", "10", "FOO")


def test_type_rename_randomkey_keys(r: redis.Redis) -> None:
    assert r.randomkey() is None
    r.set("a", "1", ex=100)
    assert r.type("a") == b"string" and r.type("absent") == b"none"
    assert r.rename("a", "b") is True
    assert r.get("b") == b"1" and 99 <= r.ttl("b") <= 100
    with pytest.raises(ResponseError, match="^no such key$"):
        r.rename("a", "c")
    r.set("c", "3")
    assert r.renamenx("b", "c") is False
    assert r.renamenx("b", "d") is True
    assert r.randomkey() in {b"c", b"d"}
    r.mset({"hello": "1", "hallo": "1", "hxllo": "1", "other": "1"})
    assert sorted(r.keys("h?llo")) == [b"hallo", b"hello", b"hxllo"]
    assert sorted(r.keys("h[ae]llo")) == [b"hallo", b"hello"]
    assert sorted(r.keys()) == [b"c", b"d", b"hallo", b"hello", b"hxllo", b"other"]


def test_scan_iter_visits_every_key(r: redis.Redis) -> None:
    users = {f"user:{i}".encode() for i in range(2000)}
    others = {f"other:{i}".encode() for i in range(200)}
    r.mset({key: "v" for key in users | others})
    seen = list(r.scan_iter(match="user:*", count=100))
    assert set(seen) == users  # every matching key at least once, nothing else
    assert set(r.scan_iter(count=1000)) == users | others
    assert set(r.scan_iter(_type="STRING", count=500)) == users | others
    assert list(r.scan_iter(_type="hash")) == []
    cursor, keys = r.scan(0, count=10)
    assert isinstance(cursor, int) and isinstance(keys, list)
    with pytest.raises(ResponseError, match="^invalid cursor$"):
        r.execute_command("SCAN", "abc")


def test_flush(r: redis.Redis) -> None:
    r.mset({"a": "1", "b": "2"})
    assert r.flushdb() is True and r.dbsize() == 0
    r.set("a", "1")
    assert r.flushall(asynchronous=True) is True and r.dbsize() == 0
    with pytest.raises(ResponseError, match="^syntax error$"):
        r.execute_command("FLUSHALL", "NOW")


# --- pipelines and transactions -------------------------------------------------


def test_plain_pipeline(r: redis.Redis) -> None:
    with r.pipeline(transaction=False) as pipe:
        for i in range(100):
            pipe.set(f"k{i}", i)
        pipe.incr("k7").get("k7").set("text", "abc").incr("text").mget("k1", "k2")
        results = pipe.execute(raise_on_error=False)
    assert results[:100] == [True] * 100
    assert results[100:103] == [8, b"8", True]
    assert isinstance(results[103], ResponseError)
    assert results[104] == [b"1", b"2"]


def test_transaction_pipeline(r: redis.Redis) -> None:
    with r.pipeline() as pipe:
        pipe.set("a", "1").incr("a").get("a").expire("a", 100).ttl("a")
        assert pipe.execute() == [True, 2, b"2", True, 100]
    # A command failing inside EXEC: the others still run, the error is raised.
    with r.pipeline() as pipe:
        pipe.set("t", "abc").incr("t").set("after", "yes")
        with pytest.raises(ResponseError, match="value is not an integer"):
            pipe.execute()
    assert r.get("after") == b"yes"


def test_transaction_aborted_by_a_queueing_error(r: redis.Redis) -> None:
    with r.pipeline() as pipe:
        pipe.set("a", "1")
        pipe.execute_command("NOSUCHCOMMAND", "x")
        # redis-py reports the queueing error that caused the EXECABORT.
        with pytest.raises(ResponseError, match="unknown command 'NOSUCHCOMMAND', with args beginning with: 'x' "):
            pipe.execute()
    assert r.get("a") is None  # EXECABORT: nothing ran
    # The raw reply, without redis-py's pipeline bookkeeping.
    conn = r.connection_pool.get_connection()
    try:
        conn.send_command("MULTI")
        assert conn.read_response() in (b"OK", "OK")
        conn.send_command("GET")
        with pytest.raises(ResponseError):
            conn.read_response()
        conn.send_command("EXEC")
        with pytest.raises(ExecAbortError, match="Transaction discarded because of previous errors"):
            conn.read_response()
    finally:
        r.connection_pool.release(conn)


def test_watch_detects_another_writer(r: redis.Redis, other: redis.Redis) -> None:
    r.set("counter", 1)
    with r.pipeline() as pipe:
        pipe.watch("counter")
        value = int(pipe.get("counter"))
        other.set("counter", 100)
        pipe.multi()
        pipe.set("counter", value + 1)
        with pytest.raises(WatchError):
            pipe.execute()
    assert r.get("counter") == b"100"
    # Unchanged watched key: the transaction commits.
    with r.pipeline() as pipe:
        pipe.watch("counter")
        value = int(pipe.get("counter"))
        pipe.multi()
        pipe.set("counter", value + 1)
        assert pipe.execute() == [True]
    assert r.get("counter") == b"101"


def test_transaction_helper_retries(r: redis.Redis, other: redis.Redis) -> None:
    r.set("n", 0)
    attempts = []

    def add_one(pipe: redis.client.Pipeline) -> None:
        value = int(pipe.get("n"))
        attempts.append(value)
        if len(attempts) == 1:
            other.incr("n")  # breaks the first attempt only
        pipe.multi()
        pipe.set("n", value + 1)

    assert r.transaction(add_one, "n") == [True]
    assert attempts == [0, 1] and r.get("n") == b"2"


def test_exec_and_discard_errors(r: redis.Redis) -> None:
    with pytest.raises(ResponseError, match="^EXEC without MULTI$"):
        r.execute_command("EXEC")
    with pytest.raises(ResponseError, match="^DISCARD without MULTI$"):
        r.execute_command("DISCARD")


# --- asyncio ----------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda protocol: f"resp{protocol}")
def test_asyncio_client(server_address, protocol: int) -> None:
    host, port = server_address

    async def scenario() -> None:
        client = redis.asyncio.Redis(host=host, port=port, protocol=protocol)
        other = redis.asyncio.Redis(host=host, port=port, protocol=protocol)
        try:
            await client.flushall()
            assert await client.set("k", "v", ex=100) is True
            assert await client.get("k") == b"v"
            assert await client.getex("k", persist=True) == b"v"
            assert await client.incrbyfloat("f", 1.5) == 1.5
            assert await client.mset({"a": "1", "b": "2"}) is True
            assert await client.mget("a", "b", "zz") == [b"1", b"2", None]
            assert await client.exists("a", "b", "zz") == 2
            with pytest.raises(ResponseError, match="^value is not an integer or out of range$"):
                await client.incr("k")
            async with client.pipeline(transaction=True) as pipe:
                pipe.incr("n").incr("n").get("n")
                assert await pipe.execute() == [1, 2, b"2"]
            async with client.pipeline(transaction=False) as pipe:
                pipe.set("x", "1").get("x").delete("x")
                assert await pipe.execute() == [True, b"1", 1]
            async with client.pipeline() as pipe:
                await pipe.watch("n")
                await other.set("n", "changed")
                pipe.multi()
                pipe.set("n", "mine")
                with pytest.raises(WatchError):
                    await pipe.execute()
            assert await client.get("n") == b"changed"
            await client.mset({f"s:{i}": "v" for i in range(500)})
            keys = {key async for key in client.scan_iter(match="s:*", count=50)}
            assert keys == {f"s:{i}".encode() for i in range(500)}
        finally:
            await client.aclose()
            await other.aclose()

    asyncio.run(asyncio.wait_for(scenario(), ASYNC_TEST_SECONDS))
