#!/usr/bin/env python3
"""How long other clients wait while one client runs a long command.

Loads N keys (default 1,000,000: ``key:%d`` with 10-byte values, MSET
1000 at a time) into trio_kv and into a redis-server, both started by this
script on free loopback ports without persistence and stopped by PID at the
end, whatever happens. Then, on each server, for ``KEYS *`` and for
``SCAN 0 COUNT 1000000000``: three probe clients send PING, GET key:42 and
SET probe v one at a time in a loop (each waits for its reply) while a
fourth client sends the long command and reads its whole reply. Printed
per server and probe: p50, p99 and max of the round trips that started
before the long reply was complete, and how long the long command took.

A script that prints numbers (Markdown on stdout, progress on stderr); it
asserts nothing. Stdlib only; clients are threads with blocking sockets (the
same client code for both servers).

Examples:
    .venv/bin/python bench/long_command_stall.py
    .venv/bin/python bench/long_command_stall.py --keys 200000 --repeat 3
    .venv/bin/python bench/long_command_stall.py --extra-args="--workers 2"
"""

from __future__ import annotations

import argparse
import shlex
import socket
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import start_redis, start_trio_kv  # noqa: E402

LOAD_BATCH_KEYS = 1000
VALUE = b"0123456789"
PROBES = {
    "PING": (b"*1\r\n$4\r\nPING\r\n", b"+PONG\r\n"),
    "GET": (b"*2\r\n$3\r\nGET\r\n$6\r\nkey:42\r\n", b"$10\r\n" + VALUE + b"\r\n"),
    "SET": (b"*3\r\n$3\r\nSET\r\n$5\r\nprobe\r\n$1\r\nv\r\n", b"+OK\r\n"),
}
LONG_COMMANDS = {
    "KEYS *": [b"KEYS", b"*"],
    "SCAN 0 COUNT 1e9": [b"SCAN", b"0", b"COUNT", b"1000000000"],
}
SOCKET_SECONDS = 120.0


def resp(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(arg), arg) for arg in args)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=SOCKET_SECONDS)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def load(port: int, keys: int) -> None:
    commands = []
    for start in range(0, keys, LOAD_BATCH_KEYS):
        args = [b"MSET"]
        for i in range(start, min(keys, start + LOAD_BATCH_KEYS)):
            args += [b"key:%d" % i, VALUE]
        commands.append(resp(*args))
    expected = b"+OK\r\n" * len(commands)
    with connect(port) as sock:
        # Replies are 5 bytes each: they fit the socket buffers while we send.
        sender = threading.Thread(target=sock.sendall, args=(b"".join(commands),))
        sender.start()
        received = bytearray()
        while len(received) < len(expected):
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise RuntimeError("connection closed while loading")
            received += chunk
        sender.join()
    if bytes(received) != expected:
        raise RuntimeError(f"unexpected load replies: {bytes(received[:80])!r}")


def read_array_reply(sock: socket.socket, scan: bool) -> int:
    """Read a KEYS reply (``*N`` then N bulk strings) or a SCAN reply (a
    cursor then such an array) whole; returns N. Counts CRLFs, which keys
    here never contain, instead of parsing every element."""
    buffer = bytearray()
    lines_needed = None
    lines_seen = 0
    scanned_to = 0
    while True:
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise RuntimeError("connection closed during the long reply")
        buffer += chunk
        if lines_needed is None:
            head = bytes(buffer[:64]).split(b"\r\n")
            header_index = 3 if scan else 0  # *2, $len, cursor, *N
            if len(head) <= header_index + 1:
                continue
            count = int(head[header_index][1:])
            lines_needed = header_index + 1 + 2 * count
        # A CRLF may straddle chunks: count from one byte back.
        lines_seen += buffer.count(b"\r\n", max(0, scanned_to - 1))
        scanned_to = len(buffer)
        if lines_seen >= lines_needed:
            return (lines_needed - (4 if scan else 1)) // 2
        if len(buffer) > (1 << 24):
            # Keep memory small: drop what was counted (keep the last byte).
            del buffer[: len(buffer) - 1]
            scanned_to = 1


def probe(port: int, request: bytes, reply: bytes, stop: threading.Event, samples: list[tuple[float, float]]) -> None:
    with connect(port) as sock:
        while not stop.is_set():
            started = time.perf_counter()
            sock.sendall(request)
            got = b""
            while len(got) < len(reply):
                chunk = sock.recv(len(reply) - len(got))
                if not chunk:
                    raise RuntimeError("probe connection closed")
                got += chunk
            samples.append((started, time.perf_counter() - started))
            if got != reply:
                raise RuntimeError(f"probe got {got!r}")


def measure(port: int, args: list[bytes]) -> tuple[float, int, dict[str, list[float]]]:
    """Probe latencies (seconds) during one long command; returns the long
    command's duration, its element count and the samples per probe."""
    stop = threading.Event()
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in PROBES}
    threads = [
        threading.Thread(target=probe, args=(port, request, reply, stop, samples[name]), daemon=True)
        for name, (request, reply) in PROBES.items()
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.3)  # probes warmed up and running steadily
    with connect(port) as sock:
        started = time.perf_counter()
        sock.sendall(resp(*args))
        count = read_array_reply(sock, scan=args[0] == b"SCAN")
        finished = time.perf_counter()
    stop.set()
    for thread in threads:
        thread.join(SOCKET_SECONDS)
    during = {
        name: [seconds for at, seconds in values if started <= at < finished]
        for name, values in samples.items()
    }
    return finished - started, count, during


def summary(values: list[float]) -> str:
    if not values:
        return "no sample | - | -"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{statistics.median(ordered) * 1000:.2f} | {p99 * 1000:.2f} | {ordered[-1] * 1000:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each long command per server")
    parser.add_argument("--extra-args", default="", help="more trio_kv flags")
    options = parser.parse_args()
    results: list[tuple[str, str, int, float, int, dict[str, list[float]]]] = []
    with ExitStack() as stack:
        data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="long-command-stall-"))
        trio_kv = start_trio_kv(stack, "--appendonly", "no", *shlex.split(options.extra_args))
        trio_port = trio_kv.address[1]
        _redis_pid, redis_port = start_redis(stack, data_dir)
        for server, port in (("trio_kv", trio_port), ("redis-server", redis_port)):
            print(f"loading {options.keys} keys into {server}...", file=sys.stderr)
            load(port, options.keys)
        for label, args in LONG_COMMANDS.items():
            for run in range(options.repeat):
                for server, port in (("trio_kv", trio_port), ("redis-server", redis_port)):
                    print(f"{server}: {label} (run {run + 1})...", file=sys.stderr)
                    seconds, count, during = measure(port, args)
                    results.append((label, server, run, seconds, count, during))
    print(f"Other clients' round trips (ms) during a long command, {options.keys} keys\n")
    print("| command | server | run | command s | keys | probe | samples | p50 | p99 | max |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, server, run, seconds, count, during in results:
        for name, values in during.items():
            print(
                f"| {label} | {server} | {run + 1} | {seconds:.2f} | {count} | {name} | {len(values)} | "
                f"{summary(values)} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
