"""Real ``redis-server --cluster-enabled yes`` processes to compare trio_kv's
cluster replies with, and a raw RESP2/RESP3 client that keeps every reply's
type.

* ``redis_node(tmp)``: one redis-server on a free port of 127.0.0.1 (whose
  port + 10000, the bus, is free too), its own directory, no persistence;
  ``cluster=True`` makes it a cluster node. Stopped by PID (SIGTERM, then
  SIGKILL) when the ``with`` block ends.
* ``lone_cluster_node(tmp)``: a cluster node that owns all 16,384 slots
  alone (CLUSTER ADDSLOTSRANGE 0 16383): what trio_kv's emulated mode is.
* ``three_node_cluster(tmp)``: three nodes joined by ``redis-cli --cluster
  create ... --cluster-replicas 0 --cluster-yes``.
* ``TypedResp``: a blocking connection whose ``call`` returns a tagged tree
  (``("bulk", b"..")``, ``("int", 5)``, ``("map", [(k, v), ...])``,
  ``("verbatim", "txt", b"..")``...), so RESP2 and RESP3 reply *types* are
  compared, not only values.

Every wait is bounded (``WAIT_SECONDS``).
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from .durable_server import Resp

WAIT_SECONDS = 30.0
BUS_PORT_OFFSET = 10000
HOST = "127.0.0.1"


def free_port_with_bus(host: str = HOST) -> int:
    """A free port whose port + 10000 is free too (a cluster node needs both)."""
    for _ in range(200):
        with socket.socket() as client_socket:
            client_socket.bind((host, 0))
            port = client_socket.getsockname()[1]
            if port + BUS_PORT_OFFSET > 65535:
                continue
            with socket.socket() as bus_socket:
                try:
                    bus_socket.bind((host, port + BUS_PORT_OFFSET))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port pair found")


class TypedResp(Resp):
    """One blocking RESP connection (RESP3 after ``call("HELLO", 3)``)."""

    def __init__(self, address: tuple[str, int], timeout: float = WAIT_SECONDS) -> None:
        super().__init__(address, timeout)

    def read(self) -> tuple:
        line = self._line()
        kind, body = line[:1], line[1:]
        if kind == b"+":
            return ("simple", body.decode())
        if kind == b"-":
            return ("error", body.decode())
        if kind == b":":
            return ("int", int(body))
        if kind == b"$":
            return ("null",) if body == b"-1" else ("bulk", self._exactly(int(body)))
        if kind == b"=":
            data = self._exactly(int(body))
            return ("verbatim", data[:3].decode(), data[4:])
        if kind in (b"*", b"~"):
            if body == b"-1":
                return ("null",)
            return ("array" if kind == b"*" else "set", [self.read() for _ in range(int(body))])
        if kind == b"%":
            return ("map", [(self.read(), self.read()) for _ in range(int(body))])
        if kind == b"_":
            return ("null",)
        if kind == b"#":
            return ("bool", body == b"t")
        if kind == b",":
            return ("double", body.decode())
        raise ValueError(f"unexpected reply line {line!r}")

    def call(self, *args: bytes | str | int) -> tuple:
        self.sock.sendall(self.encode(*args))
        return self.read()

    def pipeline(self, commands: list[list[str]]) -> list[tuple]:
        self.sock.sendall(b"".join(self.encode(*command) for command in commands))
        return [self.read() for _ in commands]

    def __enter__(self) -> TypedResp:
        return self


def plain(reply: tuple) -> object:
    """A tagged reply as plain values (bytes, int, list, dict, str for errors)."""
    kind = reply[0]
    if kind in ("array", "set"):
        return [plain(item) for item in reply[1]]
    if kind == "map":
        return {plain(key): plain(value) for key, value in reply[1]}
    if kind == "verbatim":
        return reply[2]
    if kind == "null":
        return None
    return reply[1]


def wait_until(predicate, what: str, timeout: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:g} s")
        time.sleep(0.05)


def _answers(port: int) -> bool:
    try:
        with TypedResp((HOST, port), timeout=1) as connection:
            return connection.call("PING") == ("simple", "PONG")
    except OSError:
        return False


def cluster_ok(port: int) -> bool:
    with TypedResp((HOST, port)) as connection:
        return b"cluster_state:ok" in plain(connection.call("CLUSTER", "INFO"))  # type: ignore[operator]


@contextmanager
def redis_node(directory: Path, *, cluster: bool) -> Iterator[int]:
    """A redis-server on a free port; yields the port."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port_with_bus()
    argv = [
        "redis-server", "--port", str(port), "--bind", HOST, "--dir", str(directory), "--save", "",
        "--appendonly", "no", "--daemonize", "no", "--logfile", "redis.log",
    ]
    if cluster:
        argv += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: process.poll() is None and _answers(port), f"redis-server on port {port}")
        yield port
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def lone_cluster_node(directory: Path) -> Iterator[int]:
    """A cluster node owning every slot alone; yields its port."""
    with redis_node(directory, cluster=True) as port:
        with TypedResp((HOST, port)) as connection:
            assert connection.call("CLUSTER", "ADDSLOTSRANGE", 0, 16383) == ("simple", "OK")
        wait_until(lambda: cluster_ok(port), "lone cluster node ok")
        yield port


@contextmanager
def three_node_cluster(directory: Path) -> Iterator[list[int]]:
    """Three cluster nodes made one cluster by ``redis-cli --cluster create``; yields their ports."""
    with ExitStack() as stack:
        ports = [stack.enter_context(redis_node(directory / f"node{index}", cluster=True)) for index in range(3)]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"{HOST}:{port}" for port in ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            timeout=WAIT_SECONDS,
        )
        for port in ports:
            wait_until(lambda port=port: cluster_ok(port), f"cluster node {port} ok")
        yield ports
