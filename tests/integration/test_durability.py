"""Restarts of a real server process on its data directory: after SIGTERM
or SHUTDOWN the data is exactly the same (values and absolute expiry
times), after many kinds of writes; keys that expired meanwhile are not
resurrected; the persistence commands, INFO persistence and CONFIG GET tell
the truth; a second server on the same directory refuses to start.

(Crashes: test_crash_recovery.py. Compaction: test_compaction.py. Damaged
files: test_log_damage.py. Disk faults: test_disk_full.py.)
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .durable_server import EXIT_SECONDS, Resp, RespError, data_files, launched, started, text_command

KEYS = 2000
SHORT_TTL_MS = 300
SHORT_LIVED_KEYS = 50


def full_state(client: Resp) -> dict[bytes, tuple[bytes, int]]:
    """Every key with its value and absolute expiry (PEXPIRETIME; -1: none)."""
    keys: list[bytes] = []
    cursor = b"0"
    while True:
        cursor, batch = client.call("SCAN", cursor, "COUNT", 1000)
        keys += batch
        if cursor == b"0":
            break
    client.send(*[command for key in keys for command in (("GET", key), ("PEXPIRETIME", key))])
    state = {}
    for key in keys:
        value, expire_at = client.read(), client.read()
        state[key] = (value, expire_at)
    return state


def write_everything(client: Resp) -> None:
    """Many kinds of writes; the result is compared across a restart."""
    client.send(*[("SET", b"key:%05d" % index, b"value-%d" % index) for index in range(KEYS)])
    assert [client.read() for _ in range(KEYS)] == ["OK"] * KEYS
    for index in range(0, KEYS, 7):
        assert client.call("PEXPIRE", b"key:%05d" % index, 3_600_000 + index) == 1
    assert client.call("SET", "ttl:ex", "v", "EX", 1000) == "OK"
    assert client.call("SET", "ttl:keep", "v", "PX", 5_000_000) == "OK"
    assert client.call("SET", "ttl:keep", "w", "KEEPTTL") == "OK"
    assert client.call("PERSIST", b"key:00007") == 1
    assert client.call("MSET", "m1", "a", "m2", "b", "m3", "c") == "OK"
    assert client.call("MSETNX", "m4", "d", "m5", "e") == 1
    for _ in range(25):
        client.call("INCR", "counter")
    assert client.call("INCRBY", "counter", 100) == 125
    assert client.call("INCRBYFLOAT", "float", "2.5") == b"2.5"
    assert client.call("APPEND", "appended", "abc") == 3
    assert client.call("APPEND", "appended", "def") == 6
    assert client.call("SETRANGE", "appended", 1, "ZZ") == 6
    assert client.call("DEL", b"key:00001", b"key:00002", "missing") == 2
    assert client.call("UNLINK", b"key:00003") == 1
    assert client.call("RENAME", b"key:00004", "renamed") == "OK"
    assert client.call("GETDEL", b"key:00005") == b"value-5"
    assert client.call("GETEX", b"key:00006", "PX", 7_000_000) == b"value-6"
    client.send(("MULTI",), ("SET", "tx:1", "one"), ("INCR", "counter"), ("DEL", b"key:00008"), ("EXEC",))
    assert [client.read() for _ in range(5)] == ["OK", "QUEUED", "QUEUED", "QUEUED", ["OK", 126, 1]]


def test_sigterm_and_shutdown_keep_exactly_the_same_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with started(data_dir) as server:
        with Resp(server.address) as client:
            assert client.call("SET", "before", "flush") == "OK"
            assert client.call("FLUSHALL") == "OK"
            write_everything(client)
            expected = full_state(client)
        assert b"before" not in expected and len(expected) > KEYS
        assert server.terminate(EXIT_SECONDS) == 0, server.log()
        assert any("log flushed and fsynced in" in line for line in server.log_lines)

    with started(data_dir) as server:
        loaded = [line for line in server.log_lines if "loaded" in line and "keys from" in line]
        assert len(loaded) == 1 and f"loaded {len(expected)} keys" in loaded[0], server.log()
        with Resp(server.address) as client:
            assert full_state(client) == expected
            # A compaction, more writes, then SHUTDOWN (the command) this time.
            assert client.call("SAVE") == "OK"
            assert client.call("SET", "after", "save") == "OK"
            assert client.call("DEL", "m1") == 1
            expected = full_state(client)
            client.send(("SHUTDOWN",))
            with pytest.raises(ConnectionError):
                client.read()
        assert server.wait(EXIT_SECONDS) == 0, server.log()

    with started(data_dir) as server:
        with Resp(server.address) as client:
            assert full_state(client) == expected


def test_expired_keys_are_not_resurrected(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with started(data_dir) as server:
        with Resp(server.address) as client:
            for index in range(SHORT_LIVED_KEYS):
                assert client.call("SET", b"short:%d" % index, "v", "PX", SHORT_TTL_MS) == "OK"
            assert client.call("SET", "long", "v", "PX", 600_000) == "OK"
            expire_at_ms = client.call("PEXPIRETIME", b"short:0")
        assert server.terminate(EXIT_SECONDS) == 0, server.log()
    # The log holds the absolute expiry: restart only once it has passed.
    time.sleep(max(0.0, expire_at_ms / 1000 - time.time() + 0.05))

    with started(data_dir) as server:
        with Resp(server.address) as client:
            assert client.call("DBSIZE") == 1
            assert client.call("EXISTS", *[b"short:%d" % index for index in range(SHORT_LIVED_KEYS)]) == 0
            info = client.call("INFO", "persistence").decode()
            assert f"rdb_last_load_keys_expired:{SHORT_LIVED_KEYS}\r\n" in info
            assert "rdb_last_load_keys_loaded:1\r\n" in info


def test_persistence_commands_info_and_config(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with started(data_dir, "--appendfsync", "always") as server:
        with Resp(server.address) as client:
            started_at = client.call("LASTSAVE")
            assert abs(started_at - time.time()) < 10
            config = dict(zip(*[iter(client.call("CONFIG", "GET", "*"))] * 2))
            assert config[b"appendonly"] == b"yes" and config[b"appendfsync"] == b"always"
            assert config[b"dir"] == str(data_dir).encode() and config[b"save"] == b""
            assert client.call("SET", "a", "1") == "OK"
            info = client.call("INFO", "persistence").decode()
            assert "aof_enabled:1\r\n" in info and "appendfsync:always\r\n" in info
            assert "rdb_changes_since_last_save:1\r\n" in info and "aof_rewrites:0\r\n" in info
            # SAVE inside MULTI is refused, as in Redis 7 (EXEC would hold the write lock).
            assert client.call("MULTI") == "OK"
            assert str(client.call("SAVE")) == "ERR Command not allowed inside a transaction"
            assert client.call("DISCARD") == "OK"
            assert client.call("SAVE") == "OK"
            info = client.call("INFO", "persistence").decode()
            assert "rdb_changes_since_last_save:0\r\n" in info and "aof_rewrites:1\r\n" in info
            assert "aof_last_bgrewrite_status:ok\r\n" in info and "rdb_saves:1\r\n" in info
            assert client.call("LASTSAVE") >= started_at
            assert data_files(data_dir) == ["log.2", "snapshot.2"]
            assert client.call("BGSAVE") == "Background saving started"
            assert str(client.call("BGSAVE", "later")) == "ERR syntax error"
            assert str(client.call("BGREWRITEAOF")) in (
                "Background append only file rewriting started",
                "ERR Background append only file rewriting already in progress",
            )
        assert server.terminate(EXIT_SECONDS) == 0, server.log()


def test_memory_only_saves_only_on_save(tmp_path: Path) -> None:
    """--appendonly no: no log; BGSAVE and BGREWRITEAOF need one; SAVE
    writes dump.snapshot (tests/integration/test_redis_suite_items.py)."""
    data_dir = tmp_path / "data"
    with started(data_dir, "--appendonly", "no") as server:
        with Resp(server.address) as client:
            for command in ("BGSAVE", "BGREWRITEAOF"):
                reply = client.call(command)
                assert isinstance(reply, RespError) and "appendonly no" in str(reply), (command, reply)
            assert abs(client.call("LASTSAVE") - time.time()) < 10
            assert client.call("CONFIG", "GET", "appendonly") == [b"appendonly", b"no"]
            assert "aof_enabled:0\r\n" in client.call("INFO", "persistence").decode()
        assert text_command(server.address, b"SET k v") == b"OK"
        assert server.terminate(EXIT_SECONDS) == 0, server.log()
    assert not data_dir.exists() or data_files(data_dir) == []


def test_second_server_on_the_same_data_dir_exits_1(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with started(data_dir) as first, launched(data_dir) as second:
        assert second.wait_listening() is None
        assert second.wait(EXIT_SECONDS) == 1, second.log()
        assert f"cannot start: {data_dir} is in use by another trio_kv process" in second.log()
        with Resp(first.address) as client:
            assert client.call("SET", "still", "works") == "OK"
