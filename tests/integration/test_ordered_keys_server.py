"""Ordered keys on a real server: KRANGE against redis-server 7.0's
``ZRANGE ... BYLEX`` byte for byte, through redis-py, the line protocol's
RANGE and ``KEYS prefix`` over a raw socket, HTTP ``/range`` and the
``/keys?prefix=`` listing with httpx (every response checked against the
server's own OpenAPI document), and the index rebuilt at a restart.

The reference: the same members in a sorted set with every score 0 on
redis-server, so ``ZRANGE z <args> BYLEX`` is what ``KRANGE <args>``
must answer (the same bytes, in RESP2 and RESP3)."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import httpx
import pytest
import redis
import trio

from .client import LineClient
from .conftest import start_server
from .durable_server import Resp, started
from .test_hashes_vs_redis import redis_server, replies
from .test_http_api import OpenApiChecker, base_url

TIMEOUT_SECONDS = 20
ALPHABET = [b"", b"a", b"b", b"\x00", b"\xff", b"ab", b"b\x00", b"ba", b"c"]


def _random_key(rng: random.Random) -> bytes:
    return b"".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 3)))


def _random_bound(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.15:
        return b"-"
    if roll < 0.3:
        return b"+"
    if roll < 0.35:
        return rng.choice([b"a", b"", b"+x", b"-a"])  # not range items: the error
    return rng.choice([b"[", b"("]) + _random_key(rng)


def _random_options(rng: random.Random) -> list[bytes]:
    groups: list[list[bytes]] = []
    if rng.random() < 0.4:
        groups.append([b"REV"])
    if rng.random() < 0.6:
        groups.append([b"LIMIT", b"%d" % rng.randint(-2, 6), b"%d" % rng.randint(-2, 8)])
    if rng.random() < 0.05:
        groups.append([b"LIMIT", b"1", b"x"])  # not an integer
    rng.shuffle(groups)
    if rng.random() < 0.03:
        groups.append([b"LIMIT", b"1"])  # a syntax error
    return [word for group in groups for word in group]


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
@pytest.mark.parametrize("protocol", [2, 3])
def test_krange_matches_zrange_bylex_of_redis_server(tmp_path: Path, protocol: int) -> None:
    rng = random.Random(1207 + protocol)
    keys = sorted({_random_key(rng) for _ in range(60)})
    queries = []
    for _ in range(400):
        queries.append((_random_bound(rng), _random_bound(rng), _random_options(rng)))
    with started(tmp_path / "kv", "--appendonly", "no") as server, redis_server(tmp_path) as reference:
        with Resp(server.address) as ours:
            for key in keys:
                ours.call(b"SET", key, b"v")
        with Resp(reference) as theirs:
            theirs.call(b"ZADD", b"z", *[part for key in keys for part in (b"0", key)])
        ours_bytes = replies(server.address, [(b"KRANGE", low, high, *options) for low, high, options in queries], protocol)
        theirs_bytes = replies(
            reference, [(b"ZRANGE", b"z", low, high, b"BYLEX", *options) for low, high, options in queries], protocol
        )
        assert ours_bytes == theirs_bytes


def test_krange_through_redis_py_with_values_and_keys_prefix(tmp_path: Path) -> None:
    with started(tmp_path / "kv", "--appendonly", "yes") as server:
        client = redis.Redis(*server.address, socket_timeout=10)
        client.mset({f"user:{n:03d}": f"v{n}" for n in range(300)} | {"a": "1", "z": "2"})
        client.hset("user:h", "f", "v")
        client.set("user:050", "x" * 200)  # a value over the small-value limit
        assert client.execute_command("KRANGE", "[user:", "(user;", "LIMIT", "0", "3") == [
            b"user:000", b"user:001", b"user:002",
        ]
        assert client.execute_command("KRANGE", "(user:298", "+", "WITHVALUES") == [
            b"user:299", b"v299", b"user:h", None, b"z", b"2",
        ]
        assert client.execute_command("KRANGE", "+", "-", "REV", "LIMIT", "0", "2") == [b"z", b"user:h"]
        assert client.execute_command("KRANGE", "[user:050", "[user:050", "WITHVALUES") == [b"user:050", b"x" * 200]
        assert sorted(client.keys("user:*")) == sorted([f"user:{n:03d}".encode() for n in range(300)] + [b"user:h"])
        assert client.config_get("sorted-index") == {"sorted-index": "yes"}
        assert client.info("memory")["sorted_index_keys"] == 303
        # A restart replays the log and rebuilds the index from the table.
        client.close()
        server.stop()
    with started(tmp_path / "kv", "--appendonly", "yes") as server:
        client = redis.Redis(*server.address, socket_timeout=10)
        whole = client.execute_command("KRANGE", "-", "+")
        assert whole == sorted(whole) and len(whole) == 303 == client.dbsize()
        client.close()


def test_with_the_index_off_krange_is_refused(tmp_path: Path) -> None:
    with started(tmp_path / "kv", "--appendonly", "no", "--sorted-index", "no") as server:
        client = redis.Redis(*server.address, socket_timeout=10)
        client.set("user:1", "v")
        with pytest.raises(redis.ResponseError, match="sorted key index is off"):
            client.execute_command("KRANGE", "-", "+")
        assert client.keys("user:*") == [b"user:1"]
        assert client.config_get("sorted-index") == {"sorted-index": "no"}
        assert "sorted_index_keys" not in client.info("memory")
        client.close()


async def test_line_range_and_keys_prefix_over_a_socket(nursery):
    addresses = await start_server(nursery)
    with trio.fail_after(TIMEOUT_SECONDS):
        text = await LineClient.connect(addresses.main)
        keys = [b"k:%03d" % n for n in range(150)] + [b"other", b"k;"]
        await text.send(b"".join(b"SET %s v\n" % key for key in keys))
        assert await text.read_lines(len(keys)) == [b"OK"] * len(keys)
        await text.send(b"RANGE k:100 k:103\n")
        assert await text.read_lines(4) == [b"RANGE 3", b"k:100", b"k:101", b"k:102"]
        await text.send(b'RANGE k:148 "" 3\n')
        assert await text.read_lines(4) == [b"RANGE 3", b"k:148", b"k:149", b"k;"]
        await text.send(b'RANGE "k:149\\x00" ""\n')
        assert await text.read_lines(3) == [b"RANGE 2", b"k;", b"other"]
        await text.send(b"KEYS k:14\n")
        assert await text.read_lines(11) == [b"KEYS 10"] + [b"k:%03d" % n for n in range(140, 150)]
        await text.send(b"RANGE a b 0\n")
        assert await text.read_line() == b"ERROR invalid limit (1 to 100000)"
        await text.aclose()


async def test_http_range_pages_and_prefix_listing(nursery):
    addresses = await start_server(nursery, http_port=0)
    with trio.fail_after(TIMEOUT_SECONDS):
        async with httpx.AsyncClient(base_url=base_url(addresses)) as plain:
            document = (await plain.get("/openapi.json")).json()
        assert "/range" in document["paths"]
        checker = OpenApiChecker(document)
        text = await LineClient.connect(addresses.main)
        keys = [b"r:%04d" % n for n in range(1234)] + [b"s", b"q"]
        await text.send(b"".join(b"SET %s %d\n" % (key, n) for n, key in enumerate(keys)))
        assert await text.read_lines(len(keys)) == [b"OK"] * len(keys)
        await text.aclose()
        resp = await LineClient.connect(addresses.main)  # a first byte "*": RESP
        await resp.send(b"*4\r\n$4\r\nHSET\r\n$7\r\nr:0005x\r\n$1\r\nf\r\n$1\r\nv\r\n")
        assert await resp.read_line() == b":1\r"
        await resp.aclose()
        async with httpx.AsyncClient(base_url=base_url(addresses), event_hooks={"response": [checker.hook]}) as client:
            page = (await client.get("/range", params={"start": "r:0003", "end": "r:0006"})).json()
            assert page == {
                "items": [
                    {"key": "r:0003", "value": 3}, {"key": "r:0004", "value": 4}, {"key": "r:0005", "value": 5},
                    {"key": "r:0005x", "value": None},  # a hash: no string value
                ],
                "cursor": None,
            }
            listed: list[str] = []
            cursor = None
            pages = 0
            while True:
                params = {"start": "r:", "end": "r;", "limit": "100"} | ({} if cursor is None else {"cursor": cursor})
                response = await client.get("/range", params=params)
                assert response.status_code == 200
                page = response.json()
                assert len(page["items"]) <= 100
                listed += [item["key"] for item in page["items"]]
                pages += 1
                cursor = page["cursor"]
                if cursor is None:
                    break
            assert listed == sorted([key.decode() for key in keys[:1234]] + ["r:0005x"])
            assert pages == 13
            whole = (await client.get("/range", params={"limit": "10000"})).json()
            assert [item["key"] for item in whole["items"]][:2] == ["q", "r:0000"] and whole["cursor"] is None
            assert {"key": "r:0005x", "value": None} in whole["items"]
            for params in ({"limit": "0"}, {"limit": "10001"}, {"cursor": "0"}, {"cursor": "kx"}, {"cursor": "k1"}):
                assert (await client.get("/range", params=params)).status_code == 400, params
            # A prefix listing is served from the index: byte order, cursor "k<hex>".
            listed = []
            cursor = "0"
            while cursor is not None:
                page = (await client.get("/keys", params={"prefix": "r:00", "limit": "7", "cursor": cursor})).json()
                assert page["totalKeys"] == len(keys) + 1 and len(page["keys"]) <= 7
                assert page["cursor"] is None or page["cursor"].startswith("k")
                listed += page["keys"]
                cursor = page["cursor"]
            assert listed == sorted([key.decode() for key in keys if key.startswith(b"r:00")] + ["r:0005x"])
        assert checker.checked > 0


@pytest.mark.slow
def test_in_a_cluster_each_node_answers_the_keys_it_is_first_for(tmp_path: Path) -> None:
    """KRANGE on every member of a 3-node cluster (N=3: every node holds
    every key): each answers only the partitions it is published first
    for, so the pages of all members, merged, list every key exactly once.
    Over HTTP (which cannot fan out) /range is refused and /keys?prefix=
    falls back to the SCAN listing over every member."""
    from .process_cluster import ProcessCluster

    with ProcessCluster(3, "--cluster-aae-interval", "0", "--http-port", "0") as cluster:
        cluster.start_all()
        keys = [f"c:{n:04d}".encode() for n in range(300)]
        writer = cluster.client(0)
        for key in keys:
            assert writer.set(key, b"v") is True

        def merged() -> list[bytes]:
            answered: list[bytes] = []
            for index in range(3):
                shard = cluster.client(index).execute_command("KRANGE", "[c:", "(c;")
                assert shard == sorted(shard)
                assert len(shard) < len(keys)  # a share, not every key
                answered += shard
            return sorted(answered)

        # W=2: the third copy of the last writes may still be on its way.
        cluster.wait_for(lambda: merged() == keys)
        host, port = cluster.http_address(1)
        with httpx.Client(base_url=f"http://{host}:{port}", timeout=30) as http:
            refused = http.get("/range", params={"start": "c:"})
            assert refused.status_code == 400 and "one node's share" in refused.json()["error"]
            listed: list[str] = []
            cursor: str | None = "0"
            while cursor is not None:
                page = http.get("/keys", params={"prefix": "c:", "limit": "50", "cursor": cursor}).json()
                listed += page["keys"]
                cursor = page["cursor"]
            assert sorted(listed) == [key.decode() for key in keys]
