"""bench/trio_ceiling.py, the Trio ceiling bench/redis_compare.py measures
trio_kv against, answers what redis-benchmark and the memory load send:
SET/GET with pipelining across any chunking, CONFIG GET as redis-benchmark
reads it, DBSIZE and INFO's used_memory. A real process on port 0, raw
sockets, every wait bounded; stopped by PID."""

from __future__ import annotations

import re
import socket
import sys
from pathlib import Path

import pytest

from harness.server_process import ServerProcess

REPO = Path(__file__).resolve().parents[2]
SOCKET_SECONDS = 10.0


@pytest.fixture
def ceiling_port():
    argv = [sys.executable, str(REPO / "bench" / "trio_ceiling.py"), "--port", "0"]
    with ServerProcess(argv, cwd=REPO) as server:
        address = server.wait_listening()
        assert address is not None, server.log()
        yield address[1]


def _command(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(arg), arg) for arg in args)


def _read_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        assert chunk, f"closed after {data!r}"
        data += chunk
    return data


def test_pipelined_set_get_split_anywhere(ceiling_port):
    requests = b"".join(_command(b"SET", b"k%d" % i, b"v" * i) for i in range(200))
    requests += b"".join(_command(b"GET", b"k%d" % i) for i in range(200)) + _command(b"GET", b"missing")
    expected = b"+OK\r\n" * 200 + b"".join(b"$%d\r\n%s\r\n" % (i, b"v" * i) for i in range(200)) + b"$-1\r\n"
    with socket.create_connection(("127.0.0.1", ceiling_port), timeout=SOCKET_SECONDS) as conn:
        # Pieces of 7 bytes: commands and bulk strings cut at every offset.
        for start in range(0, len(requests), 7):
            conn.sendall(requests[start:start + 7])
        assert _read_exactly(conn, len(expected)) == expected


def test_what_the_benchmarks_ask(ceiling_port):
    with socket.create_connection(("127.0.0.1", ceiling_port), timeout=SOCKET_SECONDS) as conn:
        conn.sendall(_command(b"CONFIG", b"GET", b"save") + _command(b"SET", b"a", b"1") + _command(b"DBSIZE")
                     + _command(b"PING") + _command(b"FLUSHALL"))
        expected = (b"*2\r\n$4\r\nsave\r\n$0\r\n\r\n" + b"+OK\r\n" + b":1\r\n" + b"+PONG\r\n"
                    + b"-ERR unknown command 'FLUSHALL'\r\n")
        assert _read_exactly(conn, len(expected)) == expected
        conn.sendall(_command(b"INFO", b"memory"))
        head = b""
        while not head.endswith(b"\r\n"):
            head += _read_exactly(conn, 1)
        body = _read_exactly(conn, int(head[1:-2]) + 2)
        match = re.search(rb"^used_memory:(\d+)\r$", body, re.MULTILINE)
        assert match is not None and int(match.group(1)) > 0, body
