"""Helpers for the durability tests: a real server process on a data
directory, a tiny blocking RESP client, and writer threads that record
every write they sent and every reply they got, so a restart can be checked
against what was acknowledged.

The checking rule (``Writer.check``): each writer sends its operations in
order on one connection. After a crash, the state of its keys must be the
result of applying a *prefix* of its operations whose length lies between
the number acknowledged and the number sent: every acknowledged write is
there, a key's value is its last acknowledged one or a later sent one, and
nothing the writer never sent appears.

Server processes are the harness's ``ServerProcess``
(harness/server_process.py); ``started`` and ``launched`` put one on a
data directory. Every wait is bounded: sockets have a timeout, process
waits have one (``EXIT_SECONDS``).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.server_process import ServerProcess

from ..conftest import REPO

EXIT_SECONDS = 10.0
SOCKET_SECONDS = 10.0
CRASH_EXIT_STATUS = 70


class RespError(Exception):
    """An error reply (``-ERR ...``, ``-MISCONF ...``), as a value."""


class Resp:
    """One blocking RESP2 connection; ``call`` returns the reply, error
    replies as ``RespError`` instances (not raised)."""

    def __init__(self, address: tuple[str, int], timeout: float = SOCKET_SECONDS) -> None:
        self.sock = socket.create_connection(address, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    @staticmethod
    def encode(*args: bytes | str | int) -> bytes:
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg if isinstance(arg, bytes) else str(arg).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        return b"".join(parts)

    def send(self, *commands: tuple) -> None:
        self.sock.sendall(b"".join(self.encode(*command) for command in commands))

    def _receive(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buffer += chunk

    def _line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            self._receive()
        line, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
        return line

    def _exactly(self, count: int) -> bytes:
        while len(self.buffer) < count + 2:
            self._receive()
        data, self.buffer = self.buffer[:count], self.buffer[count + 2 :]
        return data

    def read(self) -> object:
        line = self._line()
        kind, body = line[:1], line[1:]
        if kind == b"+":
            return body.decode()
        if kind == b"-":
            return RespError(body.decode())
        if kind == b":":
            return int(body)
        if kind == b"$":
            return None if body == b"-1" else self._exactly(int(body))
        if kind == b"*":
            return None if body == b"-1" else [self.read() for _ in range(int(body))]
        raise ValueError(f"unexpected reply line {line!r}")

    def call(self, *args: bytes | str | int) -> object:
        self.send(args)
        return self.read()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Resp:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def text_command(address: tuple[str, int], line: bytes) -> bytes:
    """One line-protocol request on a fresh connection; its reply line."""
    with socket.create_connection(address, timeout=SOCKET_SECONDS) as sock:
        sock.sendall(line + b"\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    return reply.rstrip(b"\n")


def started(data_dir: Path, *flags: str, env: dict[str, str] | None = None) -> ServerProcess:
    """A server on ``data_dir`` once it listens (``address`` set); ``with`` stops it."""
    return ServerProcess.start(REPO, *flags, data_dir=data_dir, env=env)


def launched(data_dir: Path, *flags: str, env: dict[str, str] | None = None) -> ServerProcess:
    """A server on ``data_dir``, not waited for: for starts that must fail."""
    return ServerProcess.launch(REPO, *flags, data_dir=data_dir, env=env)


# --- writers and their histories ---------------------------------------------------------

# An operation: ("SET", key, value), ("INCR", key, None), ("DEL", key, None),
# ("APPEND", key, data) or ("SETRANGE", key, data) (at offset SETRANGE_OFFSET).
Op = tuple[str, bytes, bytes | None]
SETRANGE_OFFSET = 3


def apply_ops(state: dict[bytes, bytes], ops: list[Op]) -> dict[bytes, bytes]:
    state = dict(state)
    for kind, key, value in ops:
        if kind == "SET":
            state[key] = value
        elif kind == "INCR":
            state[key] = b"%d" % (int(state.get(key, b"0")) + 1)
        elif kind == "APPEND":
            state[key] = state.get(key, b"") + value
        elif kind == "SETRANGE":
            old = state.get(key, b"").ljust(SETRANGE_OFFSET, b"\x00")
            state[key] = old[:SETRANGE_OFFSET] + value + old[SETRANGE_OFFSET + len(value) :]
        else:
            state.pop(key, None)
    return state


@dataclass
class Writer:
    """One connection writing unique keys (``SET``), overwriting and deleting
    a few hot keys of its own (``SET``, ``DEL``), incrementing its own
    counter (``INCR``) and growing a value of its own (``APPEND``,
    ``SETRANGE``: PATCH records), ``depth`` commands per round trip, until
    told to stop or the connection breaks."""

    name: str
    depth: int
    tag: str
    ops: list[Op] = field(default_factory=list)
    sent: int = 0
    acked: int = 0
    failure: str = ""
    # Error replies (MISCONF...) end the writer too: they are not acknowledgements.
    error_reply: str = ""

    def plan(self, index: int) -> Op:
        if index % 4 == 3:
            return ("INCR", f"counter:{self.name}".encode(), None)
        if index % 8 == 1:
            return ("SET", f"{self.name}:hot:{index % 5}".encode(), f"h{index}-{self.tag}".encode())
        if index % 16 == 5:
            return ("DEL", f"{self.name}:hot:{index % 3}".encode(), None)
        if index % 16 == 10:
            return ("APPEND", f"{self.name}:grown".encode(), f"+{index}".encode())
        if index % 16 == 14:
            return ("SETRANGE", f"{self.name}:grown".encode(), f"<{index}>".encode())
        return ("SET", f"{self.name}:{self.tag}:{index}".encode(), f"v{index}-{self.tag}".encode())

    def run(self, address: tuple[str, int], stop: threading.Event) -> None:
        try:
            with Resp(address) as client:
                while not stop.is_set():
                    batch = [self.plan(len(self.ops) + offset) for offset in range(self.depth)]
                    self.ops += batch
                    client.send(*(self._command(op) for op in batch))
                    self.sent += len(batch)
                    for _ in batch:
                        reply = client.read()
                        if isinstance(reply, RespError):
                            self.error_reply = str(reply)
                            return
                        self.acked += 1
        except (OSError, ConnectionError) as error:
            self.failure = f"{type(error).__name__}: {error}"

    @staticmethod
    def _command(op: Op) -> tuple:
        kind, key, value = op
        if value is None:
            return (kind, key)
        if kind == "SETRANGE":
            return (kind, key, SETRANGE_OFFSET, value)
        return (kind, key, value)

    def keys(self) -> list[bytes]:
        return sorted({key for _kind, key, _value in self.ops})

    def check(self, before: dict[bytes, bytes], actual: dict[bytes, bytes]) -> int:
        """``actual`` (this writer's keys after the restart) must be
        ``before`` plus a prefix of ``ops`` of length in [acked, sent];
        returns that length. ``before`` holds this writer's keys before."""
        for length in range(self.acked, self.sent + 1):
            if apply_ops(before, self.ops[:length]) == actual:
                return length
        acked_state = apply_ops(before, self.ops[: self.acked])
        missing = {key: value for key, value in acked_state.items() if actual.get(key) != value}
        raise AssertionError(
            f"writer {self.name}: state after restart is no prefix of length {self.acked}..{self.sent} "
            f"of its {len(self.ops)} operations; acknowledged values missing or different: "
            f"{dict(list(missing.items())[:5])}"
        )


class WriterGroup:
    """Several writers on their own threads, started together."""

    def __init__(self, address: tuple[str, int], tag: str, depths: list[int]) -> None:
        self.writers = [Writer(f"w{index}", depth, tag) for index, depth in enumerate(depths)]
        self.stop_event = threading.Event()
        self.threads = [
            threading.Thread(target=writer.run, args=(address, self.stop_event), daemon=True) for writer in self.writers
        ]

    def start(self) -> WriterGroup:
        for thread in self.threads:
            thread.start()
        return self

    def stop(self, timeout: float = EXIT_SECONDS) -> None:
        """Ask the writers to stop (or let a killed server stop them) and join them."""
        self.stop_event.set()
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [writer.name for writer, thread in zip(self.writers, self.threads) if thread.is_alive()]
        assert not stuck, f"writers still running after {timeout} s: {stuck}"

    @property
    def acked(self) -> int:
        return sum(writer.acked for writer in self.writers)

    @property
    def sent(self) -> int:
        return sum(writer.sent for writer in self.writers)

    def wait_acked(self, count: int, timeout: float = EXIT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while self.acked < count:
            assert time.monotonic() < deadline, f"only {self.acked} of {count} writes acknowledged in {timeout} s"
            time.sleep(0.01)

    def keys(self) -> list[bytes]:
        return sorted({key for writer in self.writers for key in writer.keys()})


def read_keys(client: Resp, keys: list[bytes], chunk: int = 500) -> dict[bytes, bytes]:
    """The present keys among ``keys`` and their values (MGET in chunks)."""
    found: dict[bytes, bytes] = {}
    for start in range(0, len(keys), chunk):
        part = keys[start : start + chunk]
        values = client.call("MGET", *part)
        assert isinstance(values, list), values
        found.update((key, value) for key, value in zip(part, values) if value is not None)
    return found


def verify_restart(client: Resp, model: dict[bytes, bytes], group: WriterGroup) -> dict[bytes, bytes]:
    """Check the restarted server against ``model`` (the verified state
    before this round) and the round's writers; returns the new model.
    Also checks that no other key exists (DBSIZE)."""
    new_model = dict(model)
    for writer in group.writers:
        keys = writer.keys()
        before = {key: model[key] for key in keys if key in model}
        actual = read_keys(client, keys)
        writer.check(before, actual)
        for key in keys:
            new_model.pop(key, None)
        new_model.update(actual)
    old_keys = sorted(set(model) - set(group.keys()))
    unchanged = read_keys(client, old_keys)
    lost = [key for key in old_keys if unchanged.get(key) != model[key]]
    assert not lost, f"{len(lost)} keys from earlier rounds lost or changed, e.g. {lost[:5]}"
    assert client.call("DBSIZE") == len(new_model), "keys that no writer wrote (or lost ones) after the restart"
    return new_model


def data_files(data_dir: Path) -> list[str]:
    return sorted(name for name in os.listdir(data_dir) if name != "LOCK")
