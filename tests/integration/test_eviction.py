"""--maxmemory and eviction with real redis-py clients against a real server
process: each policy keeps used_memory under the limit (allkeys-*), evicts
only keys with a TTL (volatile-*) or refuses (noeviction, or nothing left
to evict: -OOM), counts evicted_keys, and the append-only log replayed after
a restart holds exactly what clients saw (evictions are logged as DELs)."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest
import redis

from harness.server_process import ServerProcess

from ..conftest import REPO

SOCKET_TIMEOUT_SECONDS = 10
# A write under the limit can leave used memory over it by what it added:
# one key of these tests is well under this.
ONE_WRITE_BYTES = 4096
VALUE = b"v" * 200


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ServerProcess]:
    with ServerProcess.start(REPO, "--appendonly", "no", data_dir=tmp_path_factory.mktemp("evict") / "data") as server:
        yield server


@pytest.fixture
def r(server: ServerProcess) -> Iterator[redis.Redis]:
    client = redis.Redis(*server.address, socket_timeout=SOCKET_TIMEOUT_SECONDS)
    client.config_set("maxmemory", 0)
    client.config_set("maxmemory-policy", "noeviction")
    client.flushall()
    yield client
    client.config_set("maxmemory", 0)
    client.close()


def _limit_above_now(r: redis.Redis, extra_bytes: int) -> int:
    limit = int(r.info("memory")["used_memory"]) + extra_bytes
    r.config_set("maxmemory", limit)
    return limit


def _evicted(r: redis.Redis) -> int:
    return int(r.info("stats")["evicted_keys"])


def _write(r: redis.Redis, prefix: str, count: int, ttl_seconds: int | None = None) -> None:
    pipe = r.pipeline(transaction=False)
    for i in range(count):
        pipe.set(f"{prefix}:{i}", VALUE, ex=ttl_seconds)
    pipe.execute()


@pytest.mark.parametrize("policy", ["allkeys-lru", "allkeys-lfu", "allkeys-random"])
def test_allkeys_policies_keep_used_memory_under_the_limit(r: redis.Redis, policy: str) -> None:
    r.config_set("maxmemory-policy", policy)
    evicted_before = _evicted(r)
    limit = _limit_above_now(r, 512 * 1024)
    for batch in range(5):
        _write(r, f"b{batch}", 2000)  # ~2.5x the room each batch
        assert int(r.info("memory")["used_memory"]) <= limit + ONE_WRITE_BYTES
    evicted = _evicted(r) - evicted_before
    assert r.dbsize() + evicted == 10_000 and evicted > 5000
    assert r.config_get("maxmemory-policy") == {"maxmemory-policy": policy}
    assert r.info("memory")["maxmemory_policy"] == policy


@pytest.mark.parametrize("policy", ["volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"])
def test_volatile_policies_evict_only_keys_with_a_ttl_then_refuse(r: redis.Redis, policy: str) -> None:
    r.config_set("maxmemory-policy", policy)
    _write(r, "keep", 500)
    limit = _limit_above_now(r, 256 * 1024)
    _write(r, "ttl", 3000, ttl_seconds=10_000)
    assert int(r.info("memory")["used_memory"]) <= limit + ONE_WRITE_BYTES
    assert _evicted(r) > 0
    assert r.exists(*[f"keep:{i}" for i in range(500)]) == 500
    # Keys without a TTL push the volatile ones out, then are refused.
    with pytest.raises(redis.ResponseError, match="command not allowed when used memory > 'maxmemory'"):
        _write(r, "more", 5000)
    assert r.exists(*[f"keep:{i}" for i in range(500)]) == 500
    assert r.info("keyspace")["db0"].get("expires", 0) == 0


def test_noeviction_refuses_writes_and_serves_reads_and_deletes(r: redis.Redis) -> None:
    r.set("first", "value")
    evicted_before = _evicted(r)
    _limit_above_now(r, 128 * 1024)
    with pytest.raises(redis.ResponseError, match="command not allowed when used memory"):
        _write(r, "fill", 5000)
    assert r.get("first") == b"value"
    assert r.delete("first") == 1  # DEL is not denyoom: it frees memory
    assert _evicted(r) == evicted_before


def test_used_memory_falls_when_keys_are_deleted(r: redis.Redis) -> None:
    before = int(r.info("memory")["used_memory"])
    _write(r, "k", 5000)
    loaded = int(r.info("memory")["used_memory"])
    assert loaded > before + 5000 * len(VALUE)
    r.flushall()
    assert int(r.info("memory")["used_memory"]) < before + (loaded - before) // 10


def test_object_freq_and_idletime_follow_the_policy(r: redis.Redis) -> None:
    r.set("k", "v")
    with pytest.raises(redis.ResponseError, match="LFU maxmemory policy is not selected"):
        r.object("freq", "k")
    r.config_set("maxmemory-policy", "allkeys-lfu")
    for _ in range(50):
        r.get("k")
    assert 5 < r.object("freq", "k") <= 255
    r.config_set("maxmemory-policy", "allkeys-lru")
    assert r.object("idletime", "k") == 0
    assert r.object("refcount", "k") == 1 and r.object("encoding", "k") == b"embstr"


def test_evictions_are_logged_so_a_restart_agrees_with_what_clients_saw(tmp_path) -> None:
    data_dir = tmp_path / "data"
    flags = ("--maxmemory-policy", "allkeys-random", "--appendfsync", "always")
    with ServerProcess.start(REPO, *flags, data_dir=data_dir) as server:
        client = redis.Redis(*server.address, socket_timeout=SOCKET_TIMEOUT_SECONDS)
        _limit_above_now(client, 256 * 1024)
        _write(client, "k", 4000)
        assert int(client.info("stats")["evicted_keys"]) > 0
        seen = {key: client.get(key) for key in client.keys("*")}
        client.close()
        server.send_signal(signal.SIGTERM)
        assert server.wait(10) == 0
    with ServerProcess.start(REPO, data_dir=data_dir) as server:
        client = redis.Redis(*server.address, socket_timeout=SOCKET_TIMEOUT_SECONDS)
        assert {key: client.get(key) for key in client.keys("*")} == seen
        client.close()
