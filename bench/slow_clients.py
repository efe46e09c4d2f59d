#!/usr/bin/env python3
"""Pipelines and clients that do not read: trio_kv next to redis-server.

A script that prints numbers (Markdown on stdout); it asserts nothing. Each
figure is taken on a fresh server without persistence:

* ``pipeline``: N SETs then N GETs written whole over a raw socket before
  any reply is read (what redis-py's pipeline does), wall time each.
* ``never reads``: a 100 KiB value, then 200,000 ``GET`` of it from a client
  that never reads; server RSS growth once the server has read every request
  byte (``rx_queue`` 0 in /proc/net/tcp), next to the request bytes. Not run
  on redis-server, which has no output limit for normal clients by default
  (it grew by 20 GB when tried).
* ``MGET 200 MiB``: MGET of 200 references to a 1 MiB value, read in full;
  growth of peak RSS (VmHWM, reset through /proc/<pid>/clear_refs).
* ``tiny packets``: a 2 MiB bulk string sent a byte per ``send``; RSS growth
  per payload byte before its last byte.

Example: .venv/bin/python bench/slow_clients.py --pipeline 1000000
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from servers import start_redis, start_trio_kv

MIB = 1024 * 1024
TIMEOUT_SECONDS = 600.0


def status_bytes(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} for {pid}")


def command(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%b\r\n" % (len(arg), arg) for arg in args)


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_SECONDS)


def read_bytes(sock: socket.socket, size: int) -> None:
    buffer = memoryview(bytearray(MIB))
    while size > 0:
        n = sock.recv_into(buffer, min(MIB, size))
        if not n:
            raise RuntimeError("server closed the connection")
        size -= n


def wait_read_everything(sock: socket.socket, server_port: int) -> None:
    client_port = sock.getsockname()[1]
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == server_port and int(fields[2].split(":")[1], 16) == client_port:
                if int(fields[4].split(":")[1], 16) == 0:
                    return
        time.sleep(0.02)
    raise RuntimeError("the server stopped reading")


def pipeline(port: int, count: int) -> tuple[float, float]:
    sets = b"".join(command(b"SET", b"key:%d" % i, b"%d" % i) for i in range(count))
    gets = b"".join(command(b"GET", b"key:%d" % i) for i in range(count))
    get_reply_bytes = sum(len(b"$%d\r\n%d\r\n" % (len(b"%d" % i), i)) for i in range(count))
    timings = []
    with connect(port) as sock:
        for request, reply_bytes in ((sets, 5 * count), (gets, get_reply_bytes)):
            started = time.perf_counter()
            sock.sendall(request)
            read_bytes(sock, reply_bytes)
            timings.append(time.perf_counter() - started)
    return timings[0], timings[1]


def never_reads(pid: int, port: int) -> tuple[int, int]:
    with connect(port) as sock:
        sock.sendall(command(b"SET", b"hundred-kib", b"v" * 100 * 1024))
        read_bytes(sock, 5)
    request = command(b"GET", b"hundred-kib") * 200_000
    before = status_bytes(pid, "VmRSS")
    with connect(port) as sock:
        sock.sendall(request)
        wait_read_everything(sock, port)
        growth = status_bytes(pid, "VmRSS") - before
    return len(request), growth


def big_mget(pid: int, port: int) -> tuple[int, int]:
    value = b"m" * MIB
    with connect(port) as sock:
        sock.sendall(command(b"SET", b"one-mib", value))
        read_bytes(sock, 5)
        reply_bytes = len(b"*200\r\n") + 200 * len(b"$1048576\r\n" + value + b"\r\n")
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        before = status_bytes(pid, "VmRSS")
        sock.sendall(command(b"MGET", *[b"one-mib"] * 200))
        read_bytes(sock, reply_bytes)
        return reply_bytes, status_bytes(pid, "VmHWM") - before


def tiny_packets(pid: int, port: int, payload_bytes: int = 2 * MIB) -> float:
    with connect(port) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(b"*3\r\n$3\r\nSET\r\n$4\r\ntiny\r\n$%d\r\n" % payload_bytes)
        wait_read_everything(sock, port)
        before = status_bytes(pid, "VmRSS")
        for _ in range(payload_bytes):
            sock.send(b"x")
        wait_read_everything(sock, port)
        growth = status_bytes(pid, "VmRSS") - before
        sock.sendall(b"\r\n")
        read_bytes(sock, 5)
    return growth / payload_bytes


def measure(name: str, start, count: int) -> None:
    """Each figure on a fresh server: ``start(stack)`` gives (pid, port)."""
    figures = []
    for run in (big_mget, tiny_packets, never_reads, pipeline):
        if run is never_reads and name == "redis-server":
            # Redis' normal clients have no output limit by default
            # (client-output-buffer-limit normal 0 0 0): measured once, it
            # grew by 20 GB, more than a shared machine should be asked for.
            figures.append("not run (no output limit by default)")
            continue
        with ExitStack() as stack:
            pid, port = start(stack)
            if run is pipeline:
                set_seconds, get_seconds = pipeline(port, count)
                figures.append(f"{set_seconds:.1f} s / {get_seconds:.1f} s")
            elif run is never_reads:
                request_bytes, growth = never_reads(pid, port)
                figures.append(f"{growth / MIB:.1f} MiB (requests {request_bytes / MIB:.1f} MiB)")
            elif run is big_mget:
                reply_bytes, growth = big_mget(pid, port)
                figures.append(f"{growth / MIB:.1f} MiB (reply {reply_bytes / MIB:.0f} MiB)")
            else:
                figures.append(f"{tiny_packets(pid, port):.2f}")
    print(f"| {name} | " + " | ".join(figures) + " |", flush=True)


def start_trio_kv_server(stack: ExitStack) -> tuple[int, int]:
    process = start_trio_kv(stack, "--appendonly", "no")
    return process.pid, process.address[1]


def start_redis_server(stack: ExitStack) -> tuple[int, int]:
    data_dir = stack.enter_context(tempfile.TemporaryDirectory())
    return start_redis(stack, data_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", type=int, default=1_000_000, help="SETs, then GETs, in one pipeline")
    options = parser.parse_args()
    print(
        "| server | MGET: peak RSS growth | tiny packets: RSS per byte | never reads: RSS growth | "
        f"{options.pipeline} SETs / GETs pipelined |"
    )
    print("|---|---|---|---|---|")
    measure("trio_kv", start_trio_kv_server, options.pipeline)
    measure("redis-server", start_redis_server, options.pipeline)


if __name__ == "__main__":
    main()
