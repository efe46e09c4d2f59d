"""Servers for the client and CLI tests: a trio_kv process and a real
redis-server 7.0 process, each on a free port, stopped by PID.

``trio_kv_server(*flags, env=...)`` is ``harness.server_process.ServerProcess``;
``redis_server(tmp_path, *flags)`` runs ``redis-server --port P --save ""
--appendonly no`` with DEBUG enabled (``DEBUG PROTOCOL`` sends every RESP3
type, the reply table's source), waiting (bounded) until it answers PING.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from harness.server_process import ServerProcess, server_environment

from ..conftest import REPO

START_SECONDS = 15
STOP_SECONDS = 10


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_redis_server() -> str:
    path = shutil.which("redis-server")
    if path is None:
        pytest.skip("redis-server is not installed (scripts/ensure-tools installs it)")
    return path


@contextmanager
def redis_server(directory: Path, *flags: str) -> Iterator[tuple[str, int]]:
    port = free_port()
    process = subprocess.Popen(
        [require_redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--enable-debug-command", "yes", "--dir", str(directory), *flags],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64):
                        break
            except OSError:
                pass
            assert process.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        yield ("127.0.0.1", port)
    finally:
        process.kill()
        process.wait(STOP_SECONDS)


@contextmanager
def trio_kv_server(*flags: str, env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    with ServerProcess.start(REPO, "--appendonly", "no", *flags, env=server_environment(**(env or {}))) as server:
        yield server
