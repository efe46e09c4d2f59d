"""trio_kv.client's reply table against trio_kv AND a real redis-server 7.0,
RESP2 and RESP3: the cases tests/integration/test_redis_py_data.py runs
through redis-py (strings, counters, ranges, keys, expiry, hashes,
transactions, the error texts), here through the Trio client (one command at
a time, then all of them as one pipeline) and the blocking client. Values
are hiredis' (no redis-py response callbacks): ``b"OK"``, not ``True``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trio

from trio_kv.client import BlockingClient, Client, ReplyError

from .client_servers import redis_server, trio_kv_server

TEST_SECONDS = 30
BIG = str(2**63 - 1)


def err(message: str) -> tuple[str, str]:
    return ("error", message)


def hash_reply(protocol: int) -> object:
    return {b"f1": b"v1", b"f2": b"v2"} if protocol == 3 else [b"f1", b"v1", b"f2", b"v2"]


# (command, expected): expected is a value, or a function of the protocol, or a predicate (a set of accepted values).
TABLE: list[tuple[tuple[str, ...], object]] = [
    (("FLUSHALL",), b"OK"),
    (("GET", "k"), None),
    (("SET", "k", "v"), b"OK"),
    (("GET", "k"), b"v"),
    (("SET", "k", "w", "NX"), None),
    (("SET", "new", "w", "NX"), b"OK"),
    (("SET", "absent", "w", "XX"), None),
    (("SET", "k", "x", "GET"), b"v"),
    (("SET", "k", "v", "EX", "0"), err("ERR invalid expire time in 'set' command")),
    (("SET", "k", "v", "NX", "XX"), err("ERR syntax error")),
    (("SETNX", "k", "w"), 0),
    (("GETDEL", "k"), b"x"),
    (("GETDEL", "k"), None),
    (("MSET", "a", "1", "b", "2"), b"OK"),
    (("MGET", "a", "b", "c"), [b"1", b"2", None]),
    (("MSET", "a", "1", "b"), err("ERR wrong number of arguments for 'mset' command")),
    (("INCR", "n"), 1),
    (("INCRBY", "n", "10"), 11),
    (("DECRBY", "n", "20"), -9),
    (("INCRBYFLOAT", "f", "10.5"), b"10.5"),
    (("SET", "big", BIG), b"OK"),
    (("INCR", "big"), err("ERR increment or decrement would overflow")),
    (("INCR", "new"), err("ERR value is not an integer or out of range")),
    (("INCRBYFLOAT", "new", "1"), err("ERR value is not a valid float")),
    (("APPEND", "s", "Hello"), 5),
    (("APPEND", "s", " World"), 11),
    (("GETRANGE", "s", "-5", "-1"), b"World"),
    (("STRLEN", "s"), 11),
    (("SETRANGE", "s", "-1", "x"), err("ERR offset is out of range")),
    (("SETRANGE", "pad", "3", "x"), 4),
    (("GET", "pad"), b"\0\0\0x"),
    (("EXISTS", "a", "a", "b", "zz"), 3),
    (("DEL", "a", "zz"), 1),
    (("EXPIRE", "b", "100"), 1),
    (("TTL", "b"), {99, 100}),
    (("PERSIST", "b"), 1),
    (("TTL", "b"), -1),
    (("TTL", "absent-key"), -2),
    (("EXPIRE", "b", "10", "NX", "XX"), err("ERR NX and XX, GT or LT options at the same time are not compatible")),
    (("EXPIRE", "b", "10", "FOO"), err("ERR Unsupported option FOO")),
    (("TYPE", "b"), b"string"),
    (("TYPE", "zz"), b"none"),
    (("RENAME", "zz", "c"), err("ERR no such key")),
    (("HSET", "h", "f1", "v1", "f2", "v2"), 2),
    (("HGETALL", "h"), hash_reply),
    (("HGET", "h", "f1"), b"v1"),
    (("HGETALL", "nohash"), lambda protocol: {} if protocol == 3 else []),
    (("SET", "t", "abc"), b"OK"),
    (("MULTI",), b"OK"),
    (("INCR", "t"), b"QUEUED"),
    (("SET", "after", "yes"), b"QUEUED"),
    (("EXEC",), [err("ERR value is not an integer or out of range"), b"OK"]),
    (("EXEC",), err("ERR EXEC without MULTI")),
    (("DISCARD",), err("ERR DISCARD without MULTI")),
    (("SCAN", "abc"), err("ERR invalid cursor")),
    (("FLUSHALL", "NOW"), err("ERR syntax error")),
    (("NOSUCHCOMMAND", "x"), err("ERR unknown command 'NOSUCHCOMMAND', with args beginning with: 'x' ")),
    (("PING",), b"PONG"),
    (("ECHO", "\u00e9\r\n"), "\u00e9\r\n".encode()),
]


def plain(reply: object) -> object:
    """Error replies as ("error", text), recursively, so tables compare with ==."""
    if isinstance(reply, ReplyError):
        return err(reply.message)
    if isinstance(reply, list):
        return [plain(item) for item in reply]
    return reply


def check(replies: list[object], protocol: int) -> None:
    assert len(replies) == len(TABLE)
    for (command, expected), reply in zip(TABLE, replies):
        if callable(expected):
            expected = expected(protocol)
        if isinstance(expected, set):
            assert reply in expected, command
        else:
            assert reply == expected, command


@pytest.fixture(scope="module", params=["trio_kv", "redis"])
def address(request, tmp_path_factory) -> Iterator[tuple[str, int]]:
    if request.param == "redis":
        with redis_server(tmp_path_factory.mktemp("redis")) as redis_address:
            yield redis_address
    else:
        with trio_kv_server() as server:
            yield server.address


async def run_one_by_one(client: Client) -> list[object]:
    replies: list[object] = []
    for command, _ in TABLE:
        try:
            replies.append(plain(await client.execute(*command)))
        except ReplyError as error:
            replies.append(plain(error))
    return replies


@pytest.mark.parametrize("protocol", [2, 3], ids=lambda protocol: f"resp{protocol}")
async def test_reply_table_through_the_trio_client(address, protocol) -> None:
    with trio.fail_after(TEST_SECONDS):
        async with Client(*address, protocol=protocol) as client:
            check(await run_one_by_one(client), protocol)
            pipeline = client.pipeline()
            for command, _ in TABLE:
                pipeline.add(*command)
            check(plain(await pipeline.execute(raise_on_error=False)), protocol)  # type: ignore[arg-type]
            with pytest.raises(ReplyError, match="^ERR syntax error$"):
                await client.pipeline().add("SET", "k", "v").add("SET", "k", "v", "NX", "XX").execute()
            assert client.statistics()["opened"] == 1  # error replies leave the connection in the pool


@pytest.mark.parametrize("protocol", [2, 3], ids=lambda protocol: f"resp{protocol}")
def test_reply_table_through_the_blocking_client(address, protocol) -> None:
    with BlockingClient(*address, protocol=protocol, timeout=TEST_SECONDS) as client:
        replies = [plain(reply) for reply in client.execute_many([command for command, _ in TABLE])]
        check(replies, protocol)
        assert client.execute("SET", "k", 12.5) == b"OK" and client.execute("GET", "k") == b"12.5"
        with pytest.raises(ReplyError) as caught:
            client.execute("INCR", "k")
        assert caught.value.message == "ERR value is not an integer or out of range"
        assert caught.value.code == "ERR"
        pipe = client.pipeline().add("SET", "x", 1).add("INCR", "x").add("GET", "x")
        assert pipe.execute() == [b"OK", 2, b"2"]


def test_decode_gives_text(address) -> None:
    with BlockingClient(*address, decode=True, timeout=TEST_SECONDS) as client:
        client.execute("SET", "k", "caf\u00e9")
        assert client.execute("GET", "k") == "caf\u00e9"
        assert client.execute("MGET", "k", "nope") == ["caf\u00e9", None]


