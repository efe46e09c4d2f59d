"""Big values cost what the request costs (issue 8, item 6), on a real server
process with the append-only log on.

* 100 pipelined 32-byte APPENDs to a 2 MiB value grow the log by under 1 MiB
  and the server's RSS (``/proc/<pid>/status`` VmRSS) by under 10 MiB; after
  kill -9 the value recovers exactly.
* ``SETRANGE k 536870911 x`` logs a small record; the peak RSS (VmHWM) is
  printed, and the value recovers after kill -9.
* Aliasing over a real socket: ``GET k; APPEND k x; GET k`` pipelined answers
  each GET with the value at its own moment.
* A compaction (fuzzy snapshot) while APPENDs and SETRANGEs run, then kill
  -9: the value recovers exactly (PATCH records replayed over a snapshot
  that may already hold some of them).
* Replies to APPEND / SETRANGE / GETRANGE / STRLEN match redis-server's bytes.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest


from .durable_server import Resp, RespError, started

MIB = 1024 * 1024


def status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def dir_bytes(path: Path) -> int:
    return sum(entry.stat().st_size for entry in path.iterdir() if entry.is_file())


def pipeline(client: Resp, commands: list[tuple]) -> list[object]:
    client.send(*commands)
    return [client.read() for _ in commands]


def test_pipelined_appends_to_a_big_value_cost_the_request(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    model = bytes(random.Random(1).randbytes(2 * MIB))
    suffixes = [b"%032d" % i for i in range(100)]
    with started(data_dir, "--appendfsync", "always") as server:
        with Resp(server.address) as client:
            assert client.call("SET", "big", model) == "OK"
            # Warm up: one APPEND turns the value into a growable one (one copy).
            assert client.call("APPEND", "big", "w") == len(model) + 1
            model += b"w"
            log_before = dir_bytes(data_dir)
            rss_before = status_kib(server.pid, "VmRSS")
            replies = pipeline(client, [("APPEND", "big", suffix) for suffix in suffixes])
            rss_after = status_kib(server.pid, "VmRSS")
            log_after = dir_bytes(data_dir)
            for suffix in suffixes:
                model += suffix
            assert replies == [len(model) - 32 * (99 - i) for i in range(100)]
            assert client.call("STRLEN", "big") == len(model)
        print(f"\n100 APPENDs: log +{(log_after - log_before) / MIB:.3f} MiB, RSS +{(rss_after - rss_before) / 1024:.2f} MiB")
        assert log_after - log_before < MIB
        assert (rss_after - rss_before) * 1024 < 10 * MIB
        server.kill()
    with started(data_dir) as server, Resp(server.address) as client:
        assert client.call("GET", "big") == model


def test_setrange_far_past_the_end_logs_a_small_record(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    offset = 512 * MIB - 1
    with started(data_dir, "--appendfsync", "always") as server:
        with Resp(server.address) as client:
            hwm_before = status_kib(server.pid, "VmHWM")
            log_before = dir_bytes(data_dir)
            assert client.call("SETRANGE", "huge", offset, "x") == 512 * MIB
            assert client.call("APPEND", "huge", "") == 512 * MIB  # an empty APPEND changes nothing
            log_after = dir_bytes(data_dir)
            hwm_after = status_kib(server.pid, "VmHWM")
            assert client.call("GETRANGE", "huge", offset - 3, offset) == b"\x00\x00\x00x"
        print(f"\nSETRANGE at 512 MiB-1: log +{log_after - log_before} bytes, VmHWM +{(hwm_after - hwm_before) / 1024:.1f} MiB")
        assert log_after - log_before < 4096
        # Far below one copy of the value: the zeros are untouched pages.
        assert (hwm_after - hwm_before) * 1024 < 512 * MIB
        server.kill()
    with started(data_dir) as server, Resp(server.address) as client:
        assert client.call("STRLEN", "huge") == 512 * MIB
        assert client.call("GETRANGE", "huge", offset - 3, -1) == b"\x00\x00\x00x"
        assert client.call("GETRANGE", "huge", 0, 3) == b"\x00\x00\x00\x00"


def test_a_pipelined_get_never_sees_a_later_write(tmp_path: Path) -> None:
    with started(tmp_path / "data") as server, Resp(server.address) as client:
        base = b"v" * 10_000
        assert client.call("SET", "k", base) == "OK"
        replies = pipeline(
            client,
            [
                ("GET", "k"),
                ("APPEND", "k", "x"),
                ("GET", "k"),
                ("SETRANGE", "k", 0, "AB"),
                ("GET", "k"),
                ("GETRANGE", "k", 0, -1),
                ("APPEND", "k", "y" * 5000),
                ("SETRANGE", "k", 1, "Z"),
                ("GET", "k"),
            ],
        )
        assert replies == [
            base,
            10_001,
            base + b"x",
            10_001,
            b"AB" + base[2:] + b"x",
            b"AB" + base[2:] + b"x",
            15_001,
            15_001,
            b"AZ" + base[2:] + b"x" + b"y" * 5000,
        ]


def test_compaction_during_appends_recovers_the_exact_value(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    rng = random.Random(7)
    model = bytearray(b"s" * 300_000)
    with started(data_dir, "--appendfsync", "always") as server:
        with Resp(server.address) as client:
            assert client.call("SET", "k", bytes(model)) == "OK"
            for round_index in range(6):
                commands: list[tuple] = []
                for _ in range(300):
                    if rng.random() < 0.7:
                        data = rng.randbytes(rng.randint(1, 200))
                        commands.append(("APPEND", "k", data))
                        model += data
                    else:
                        offset = rng.randint(0, len(model) + 100)
                        data = rng.randbytes(rng.randint(1, 50))
                        commands.append(("SETRANGE", "k", offset, data))
                        if offset > len(model):
                            model += bytes(offset - len(model))
                        model[offset : offset + len(data)] = data
                if round_index % 2 == 0:
                    commands.insert(rng.randint(0, len(commands)), ("BGREWRITEAOF",))
                replies = pipeline(client, commands)
                errors = [str(reply) for reply in replies if isinstance(reply, RespError)]
                assert set(errors) <= {"ERR Background append only file rewriting already in progress"}
            assert client.call("GET", "k") == bytes(model)
            # Let the last compaction finish or not: either way the state must recover.
        server.kill()
    with started(data_dir) as server, Resp(server.address) as client:
        assert client.call("GET", "k") == bytes(model)


REDIS_COMMANDS = [
    ("APPEND", "a", "hello"),
    ("APPEND", "a", " world"),
    ("STRLEN", "a"),
    ("SETRANGE", "a", 20, "far"),
    ("GET", "a"),
    ("SETRANGE", "a", 0, ""),
    ("SETRANGE", "missing", 0, ""),
    ("EXISTS", "missing"),
    ("SETRANGE", "a", -1, "x"),
    ("SETRANGE", "a", 536870911, "xy"),
    ("GETRANGE", "a", -5, -1),
    ("GETRANGE", "a", 5, 2),
    ("GETRANGE", "a", 0, 1000),
    ("SET", "n", "10"),
    ("APPEND", "n", "5"),
    ("INCR", "n"),
    ("SETRANGE", "n", 0, "9"),
    ("INCRBY", "n", 1),
    ("APPEND", "big", "x" * 5000),
    ("APPEND", "big", "y"),
    ("INCR", "big"),
    ("GETRANGE", "big", 4998, 5000),
    ("SETRANGE", "big", 2, "zz"),
    ("GETRANGE", "big", 0, 4),
    ("STRLEN", "big"),
    ("STRLEN", "nothing"),
]


def raw_replies(address: tuple[str, int], commands: list[tuple]) -> bytes:
    """The raw reply bytes to ``commands`` sent as one pipeline, ended by a PING."""
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(b"".join(Resp.encode(*command) for command in [*commands, ("PING",)]))
        data = b""
        while not data.endswith(b"+PONG\r\n"):
            chunk = sock.recv(65536)
            assert chunk, "connection closed"
            data += chunk
    return data


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_replies_match_redis_server(tmp_path: Path) -> None:
    with started(tmp_path / "data") as server:
        ours = raw_replies(server.address, REDIS_COMMANDS)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    redis = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                theirs = raw_replies(("127.0.0.1", port), REDIS_COMMANDS)
                break
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
    finally:
        redis.kill()
        redis.wait(10)
    assert ours == theirs
