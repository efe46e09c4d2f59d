#!/usr/bin/env python3
"""Big values: what APPEND and SETRANGE cost, trio_kv next to redis-server.

A script that prints numbers (Markdown on stdout); it asserts nothing.
Stdlib only; the servers start through bench/servers.py, both with their
append-only log on (``appendfsync everysec``), each in a fresh temporary
data directory. Rows:

* ``128 x 1 MiB APPEND``: one connection, one APPEND at a time (each reply
  read before the next request), seconds for all 128; the value ends at
  128 MiB. Before issue 8 every APPEND copied the whole value (7 s against
  Redis' 0.8 s). Also printed with both logs off (``--appendonly no``).
* ``100 x 32 B APPEND on 2 MiB``: pipelined; growth of the server's RSS
  (``/proc/<pid>/status`` VmRSS) and of the data directory.
* ``SETRANGE at 512 MiB-1``: growth of the data directory and of the peak
  RSS (VmHWM) on a fresh server.

Example: ``.venv/bin/python bench/big_values_bench.py``
"""

from __future__ import annotations

import socket
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from servers import start_redis, start_trio_kv

MIB = 1024 * 1024


def encode(*args: bytes | str | int) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n" % len(data))
        parts.append(data)
        parts.append(b"\r\n")
    return b"".join(parts)


class Client:
    """Just enough RESP to read the replies these commands give."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = bytearray()

    def _line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 2]
        return line

    def read(self) -> bytes:
        line = self._line()
        if line[:1] == b"-":
            raise RuntimeError(line.decode())
        return line

    def call(self, *commands: tuple) -> list[bytes]:
        self.sock.sendall(b"".join(encode(*command) for command in commands))
        return [self.read() for _ in commands]


def status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def dir_bytes(path: Path) -> int:
    return sum(entry.stat().st_size for entry in path.rglob("*") if entry.is_file())


def measure(start: Callable[[ExitStack, Path], tuple[int, int]]) -> dict[str, float]:
    results: dict[str, float] = {}
    chunk = b"a" * MIB
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="big-values-") as root:
        data_dir = Path(root)
        pid, port = start(stack, data_dir)
        client = Client(port)
        started = time.perf_counter()
        for _ in range(128):
            client.call(("APPEND", "k", chunk))
        results["append_1mib_s"] = time.perf_counter() - started

        client.call(("SET", "big", b"b" * (2 * MIB)), ("APPEND", "big", "w"))
        time.sleep(1.5)  # let everysec's fsync settle
        rss = status_kib(pid, "VmRSS")
        size = dir_bytes(data_dir)
        client.call(*[("APPEND", "big", b"%032d" % i) for i in range(100)])
        time.sleep(1.5)
        results["append_32b_rss_mib"] = (status_kib(pid, "VmRSS") - rss) / 1024
        results["append_32b_log_mib"] = (dir_bytes(data_dir) - size) / MIB
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="big-values-") as root:
        data_dir = Path(root)
        pid, port = start(stack, data_dir)
        client = Client(port)
        hwm = status_kib(pid, "VmHWM")
        size = dir_bytes(data_dir)
        client.call(("SETRANGE", "huge", 512 * MIB - 1, "x"))
        time.sleep(1.5)
        results["setrange_hwm_mib"] = (status_kib(pid, "VmHWM") - hwm) / 1024
        results["setrange_log_mib"] = (dir_bytes(data_dir) - size) / MIB
    return results


def append_seconds(start: Callable[[ExitStack, Path], tuple[int, int]]) -> float:
    chunk = b"a" * MIB
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="big-values-") as root:
        _pid, port = start(stack, Path(root))
        client = Client(port)
        started = time.perf_counter()
        for _ in range(128):
            client.call(("APPEND", "k", chunk))
        return time.perf_counter() - started


def trio_kv_in_memory(stack: ExitStack, data_dir: Path) -> tuple[int, int]:
    server = start_trio_kv(stack, "--appendonly", "no", data_dir=data_dir)
    return server.pid, server.address[1]


def redis_in_memory(stack: ExitStack, data_dir: Path) -> tuple[int, int]:
    return start_redis(stack, data_dir, "--appendonly", "no")


def trio_kv(stack: ExitStack, data_dir: Path) -> tuple[int, int]:
    server = start_trio_kv(stack, "--appendfsync", "everysec", data_dir=data_dir)
    return server.pid, server.address[1]


def redis(stack: ExitStack, data_dir: Path) -> tuple[int, int]:
    return start_redis(stack, data_dir, "--appendonly", "yes", "--appendfsync", "everysec")


def main() -> None:
    ours = measure(trio_kv)
    theirs = measure(redis)
    rows = [
        ("128 x 1 MiB APPEND, seconds", "append_1mib_s"),
        ("100 x 32 B APPEND on 2 MiB: RSS growth, MiB", "append_32b_rss_mib"),
        ("100 x 32 B APPEND on 2 MiB: log growth, MiB", "append_32b_log_mib"),
        ("SETRANGE at 512 MiB-1: peak RSS growth, MiB", "setrange_hwm_mib"),
        ("SETRANGE at 512 MiB-1: log growth, MiB", "setrange_log_mib"),
    ]
    print("| measurement | trio_kv | redis-server |")
    print("| --- | ---: | ---: |")
    for label, name in rows:
        print(f"| {label} | {ours[name]:.3f} | {theirs[name]:.3f} |")
    print(
        f"| 128 x 1 MiB APPEND, logs off, seconds | {append_seconds(trio_kv_in_memory):.3f} "
        f"| {append_seconds(redis_in_memory):.3f} |"
    )


if __name__ == "__main__":
    main()
