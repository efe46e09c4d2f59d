#!/usr/bin/env python3
"""The Trio ceiling: the smallest Trio RESP server that serves SET and GET.

A reference to measure trio_kv against (``bench/redis_compare.py`` runs it
as a third column): what any server written on Trio reaches on this machine
when it does nothing but the protocol. No worker threads, no log, no
counters, no limits: the store is a ``dict`` used inline on the event loop,
and sockets are driven by hand (non-blocking ``socket.recv`` /
``socket.send``, ``trio.lowlevel.wait_readable`` / ``wait_writable`` only
when the kernel has nothing / takes nothing), so no ``SocketStream``
bookkeeping is paid. Pipelining works: every complete command of a read is
answered, in order, with one send.

Not a server to use: it trusts its client (no buffer limits, a malformed
request closes the connection without an error reply). Commands: SET key
value (no options), GET, PING, DBSIZE, INFO (``used_memory`` = RSS, for
``--memory``), CONFIG GET (an empty value: redis-benchmark asks), anything
else ``-ERR unknown command``.

    .venv/bin/python bench/trio_ceiling.py --port 0     # prints "listening on HOST:PORT" on stderr
"""

from __future__ import annotations

import argparse
import re
import socket
import sys
from pathlib import Path

import trio

RECEIVE_BYTES = 64 * 1024
LISTEN_BACKLOG = 1024

_OK = b"+OK\r\n"
_NIL = b"$-1\r\n"


def _rss_bytes() -> int:
    status = Path("/proc/self/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else 0


def _bulk(data: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(data), data)


def parse(buffer: bytes, position: int) -> tuple[list[bytes] | None, int]:
    """One multibulk command from ``buffer[position:]``: (arguments, next
    position), or (None, position) when it is not complete yet. Raises
    ValueError on anything that is not a multibulk request."""
    if buffer[position] != 42:  # "*"
        raise ValueError("inline commands are not served")
    end = buffer.find(b"\r\n", position)
    if end < 0:
        return None, position
    count = int(buffer[position + 1:end])
    cursor = end + 2
    arguments = []
    for _ in range(count):
        end = buffer.find(b"\r\n", cursor)
        if end < 0:
            return None, position
        start = end + 2
        stop = start + int(buffer[cursor + 1:end])
        if stop + 2 > len(buffer):
            return None, position
        arguments.append(buffer[start:stop])
        cursor = stop + 2
    return arguments, cursor


def execute(store: dict[bytes, bytes], arguments: list[bytes]) -> bytes:
    name = arguments[0].upper()
    if name == b"GET" and len(arguments) == 2:
        value = store.get(arguments[1])
        return _NIL if value is None else _bulk(value)
    if name == b"SET" and len(arguments) == 3:
        store[arguments[1]] = arguments[2]
        return _OK
    if name == b"PING":
        return b"+PONG\r\n"
    if name == b"DBSIZE":
        return b":%d\r\n" % len(store)
    if name == b"INFO":
        return _bulk(b"# Memory\r\nused_memory:%d\r\n" % _rss_bytes())
    if name == b"CONFIG" and len(arguments) == 3:
        # redis-benchmark reads "save" and "appendonly" (an empty value each).
        return b"*2\r\n" + _bulk(arguments[2]) + b"$0\r\n\r\n"
    return b"-ERR unknown command '%s'\r\n" % name[:64]


async def send_all(sock: socket.socket, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            sent = sock.send(view)
        except BlockingIOError:
            sent = 0
        view = view[sent:]
        if view:
            await trio.lowlevel.wait_writable(sock)


async def serve_client(sock: socket.socket, store: dict[bytes, bytes]) -> None:
    buffer = b""
    with sock:
        while True:
            try:
                data = sock.recv(RECEIVE_BYTES)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(sock)
                continue
            except OSError:
                return
            if not data:
                return
            buffer = buffer + data if buffer else data
            replies = []
            position = 0
            try:
                while position < len(buffer):
                    arguments, position = parse(buffer, position)
                    if arguments is None:
                        break
                    replies.append(execute(store, arguments))
            except ValueError:
                return
            buffer = buffer[position:]
            if replies:
                try:
                    await send_all(sock, b"".join(replies))
                except OSError:
                    return
            # Let the other clients run before reading again: by then this
            # client has usually sent its next request, so the recv gets it
            # at once instead of a wait_readable (an epoll round) per request.
            await trio.lowlevel.cancel_shielded_checkpoint()


async def serve(host: str, port: int) -> None:
    store: dict[bytes, bytes] = {}
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(LISTEN_BACKLOG)
    listener.setblocking(False)
    bound_host, bound_port = listener.getsockname()[:2]
    print(f"trio_ceiling listening on {bound_host}:{bound_port}", file=sys.stderr, flush=True)
    async with trio.open_nursery() as nursery:
        while True:
            try:
                client, _ = listener.accept()
            except BlockingIOError:
                await trio.lowlevel.wait_readable(listener)
                continue
            client.setblocking(False)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            nursery.start_soon(serve_client, client, store)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port (printed)")
    args = parser.parse_args(argv)
    try:
        trio.run(serve, args.host, args.port)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
