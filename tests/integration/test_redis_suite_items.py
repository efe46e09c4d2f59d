"""What Redis' own test suite (tests/unit) asks of the commands trio_kv
claims, against a real server process, reply bytes compared with a real
redis-server 7.0 where both must answer the same.

FUNCTION with an empty library, CONFIG REWRITE without a config file,
COMMAND GETKEYSANDFLAGS, CLIENT REPLY OFF|SKIP|ON, INFO errorstats and the
rejected/failed call counts, per-subcommand statistics, runtime
latency-tracking settings and the latency monitor, CLIENT LIST's laddr,
CONFIG SET maxclients, and SAVE with --appendonly no.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.server_process import ServerProcess

from ..conftest import REPO, require_tool

IO_SECONDS = 10.0
STOP_SECONDS = 10


def encode(*args: str | bytes) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else arg
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class Raw:
    """A raw RESP connection: send requests, read exactly the expected bytes."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=IO_SECONDS)
        # Bytes received past the last reply read (a pipeline's next replies).
        self.pending = b""

    def send(self, *requests: tuple[str | bytes, ...]) -> None:
        self.sock.sendall(b"".join(encode(*request) for request in requests))

    def read_reply(self) -> bytes:
        """One whole reply's bytes (nested arrays, maps included)."""
        buffer = self.pending

        def need(size: int) -> None:
            nonlocal buffer
            while len(buffer) < size:
                chunk = self.sock.recv(65536)
                assert chunk, "connection closed"
                buffer += chunk

        def parse(at: int) -> int:
            while True:
                end = buffer.find(b"\r\n", at)
                if end >= 0:
                    break
                need(len(buffer) + 1)
            kind, header = buffer[at : at + 1], buffer[at + 1 : end]
            at = end + 2
            if kind in b"+-:_,#(":
                return at
            if kind in b"$=!":
                size = int(header)
                if size < 0:
                    return at
                need(at + size + 2)
                return at + size + 2
            count = int(header)
            count *= 2 if kind in b"%|" else 1
            for _ in range(max(count, 0)):
                at = parse(at)
            return at

        self.sock.settimeout(IO_SECONDS)
        end = parse(0)
        self.pending, reply = buffer[end:], buffer[:end]
        return reply

    def call(self, *args: str | bytes) -> bytes:
        self.send(args)
        reply = self.read_reply()
        assert self.pending == b"", f"more bytes than one reply: {self.pending!r}"
        return reply

    def nothing_pending(self) -> bool:
        if self.pending:
            return False
        self.sock.settimeout(0.2)
        try:
            return self.sock.recv(1) == b""
        except (TimeoutError, socket.timeout):
            return True

    def close(self) -> None:
        self.sock.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def trio_kv(tmp_path_factory) -> Iterator[tuple[ServerProcess, Path]]:
    data_dir = tmp_path_factory.mktemp("suite") / "data"
    with ServerProcess.start(REPO, "--appendonly", "no", data_dir=data_dir) as process:
        yield process, data_dir
        status = process.terminate(STOP_SECONDS)
    assert status == 0, process.log()
    assert "Traceback" not in process.log()


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory) -> Iterator[int]:
    """A real redis-server 7.0, no config file, nothing saved; stopped by PID."""
    require_tool("redis-server")
    port = _free_port()
    work = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + IO_SECONDS
        while True:
            try:
                Raw(port).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(STOP_SECONDS)


def both(trio_kv, redis_port) -> tuple[Raw, Raw]:
    return Raw(trio_kv[0].address[1]), Raw(redis_port)


SAME_REPLIES = [
    ("FUNCTION", "FLUSH"),
    ("FUNCTION", "FLUSH", "ASYNC"),
    ("FUNCTION", "FLUSH", "bad"),
    ("FUNCTION", "LIST"),
    ("FUNCTION", "LIST", "WITHCODE", "LIBRARYNAME", "x*"),
    ("FUNCTION", "LIST", "bad"),
    ("FUNCTION", "LIST", "LIBRARYNAME"),
    ("FUNCTION", "LIST", "WITHCODE", "WITHCODE"),
    ("FUNCTION", "KILL"),
    ("FUNCTION", "DELETE", "nosuch"),
    ("FUNCTION", "LOAD", "code"),
    ("FUNCTION", "LOAD", "foo", "code"),
    ("FUNCTION", "LOAD", "#!js name=x\nreturn 1"),
    ("FUNCTION", "LOAD", "REPLACE", "#!js name=my-lib\nreturn 1"),
    ("FUNCTION", "LOAD", "#!js\nreturn 1"),
    ("FUNCTION", "LOAD", "#!js name=x extra\nreturn 1"),
    ("FUNCTION", "LOAD", "#!js name=x"),
    ("CONFIG", "REWRITE"),
    ("COMMAND", "GETKEYSANDFLAGS", "set", "k1", "v1"),
    ("COMMAND", "GETKEYSANDFLAGS", "set", "k1", "v1", "get"),
    ("COMMAND", "GETKEYSANDFLAGS", "mset", "k1", "v1", "k2", "v2"),
    ("COMMAND", "GETKEYSANDFLAGS", "rename", "a", "b"),
    ("COMMAND", "GETKEYSANDFLAGS", "del", "a", "b", "c"),
    ("COMMAND", "GETKEYSANDFLAGS", "get"),
    ("COMMAND", "GETKEYSANDFLAGS", "nosuch", "a"),
    ("COMMAND", "GETKEYSANDFLAGS", "ping", "x"),
    ("CONFIG", "SET", "latency-tracking-info-percentiles", "0.0 50.0 100.0 12.345"),
    ("CONFIG", "GET", "latency-tracking-info-percentiles"),
    ("CONFIG", "SET", "latency-tracking-info-percentiles", "10.0 50.0 a"),
    ("CONFIG", "SET", "latency-tracking-info-percentiles", "10.0 101.0"),
    ("CONFIG", "SET", "latency-tracking-info-percentiles", "50 99 99.9"),
    ("CONFIG", "SET", "latency-tracking", "maybe"),
    ("CONFIG", "SET", "latency-tracking", "no"),
    ("CONFIG", "GET", "latency-tracking"),
    ("CONFIG", "SET", "latency-tracking", "yes"),
    ("CONFIG", "SET", "latency-monitor-threshold", "200"),
    ("CONFIG", "GET", "latency-monitor-threshold"),
    ("CONFIG", "SET", "daemonize", "yes"),
    ("CONFIG", "SET", "maxmemory-clients", "200%"),
    ("CONFIG", "SET", "maxmemory-clients", "abc"),
    ("CONFIG", "SET", "maxmemory-clients", "0%"),
    ("CONFIG", "GET", "maxmemory-clients"),
    ("CONFIG", "SET", "maxmemory", "10000001", "maxmemory-clients", "200%", "client-query-buffer-limit", "x"),
    ("CONFIG", "GET", "maxmemory"),
    ("LATENCY", "RESET"),
    ("LATENCY", "LATEST"),
    ("LATENCY", "HISTORY", "command"),
    ("LATENCY", "RESET", "nosuch"),
    ("LATENCY", "GRAPH", "command"),
    ("LATENCY", "HELP", "xxx"),
    ("CONFIG", "SET", "latency-monitor-threshold", "0"),
]


@pytest.mark.parametrize("request_args", SAME_REPLIES, ids=" ".join)
def test_reply_bytes_as_redis_server(trio_kv, redis_port, request_args) -> None:
    ours, theirs = both(trio_kv, redis_port)
    try:
        assert ours.call(*request_args) == theirs.call(*request_args)
    finally:
        ours.close()
        theirs.close()


@pytest.mark.parametrize(
    "requests",
    [
        [("CLIENT", "REPLY", "OFF"), ("PING", "a"), ("PING", "b"), ("CLIENT", "REPLY", "ON"), ("PING", "c")],
        [("CLIENT", "REPLY", "SKIP"), ("PING", "a"), ("PING", "b")],
        [("CLIENT", "REPLY", "SKIP"), ("CLIENT", "REPLY", "ON"), ("PING",)],
        [("CLIENT", "REPLY", "OFF"), ("CLIENT", "REPLY", "SKIP"), ("PING", "a"), ("CLIENT", "REPLY", "ON")],
        [("CLIENT", "REPLY", "SKIP"), ("SET", "k"), ("CLIENT", "REPLY", "bad")],
    ],
    ids=["off-on", "skip", "skip-then-on", "skip-while-off", "skip-an-error"],
)
def test_client_reply_as_redis_server(trio_kv, redis_port, requests) -> None:
    """The same pipeline, sent whole, gives the same bytes and nothing more."""
    ours, theirs = both(trio_kv, redis_port)
    try:
        for conn in (ours, theirs):
            conn.send(*requests, ("PING", "end"))
        expected = b""
        while not expected.endswith(b"$3\r\nend\r\n"):
            expected += theirs.read_reply()
        got = b""
        while not got.endswith(b"$3\r\nend\r\n"):
            got += ours.read_reply()
        assert got == expected
        assert ours.nothing_pending()
    finally:
        ours.close()
        theirs.close()


def test_maxmemory_refuses_denyoom_commands_as_redis_server(trio_kv, redis_port) -> None:
    """noeviction: over maxmemory, SET is refused (also queued in MULTI, and
    EXEC of a queued SET), GET still runs; the same bytes as redis-server."""
    sequence = [
        ("CONFIG", "SET", "maxmemory", "10mb"),
        ("CONFIG", "GET", "maxmemory"),
        ("CONFIG", "SET", "maxmemory", "1.5mb"),
        ("CONFIG", "SET", "maxmemory", "10000001", "maxmemory", "10000002"),
        ("CONFIG", "SET", "maxmemory", "1gb"),  # far above either server's memory
        ("SET", "k", "v"),
        ("CONFIG", "SET", "maxmemory", "1"),
        ("SET", "k", "w"),
        ("GET", "k"),
        ("MULTI",),
        ("SET", "k", "x"),
        ("EXEC",),
        ("CONFIG", "SET", "maxmemory", "0"),
        ("MULTI",),
        ("SET", "k", "y"),
        ("CONFIG", "SET", "maxmemory", "1"),
        ("EXEC",),
        ("CONFIG", "SET", "maxmemory", "0"),
        ("GET", "k"),
        ("DEL", "k"),
    ]
    ours, theirs = both(trio_kv, redis_port)
    try:
        for request in sequence:
            assert ours.call(*request) == theirs.call(*request), request
    finally:
        ours.close()
        theirs.close()


def _info_lines(conn: Raw, section: str, prefix: str) -> dict[str, str]:
    text = conn.call("INFO", section).split(b"\r\n", 1)[1].decode()
    return dict(line.split(":", 1) for line in text.split("\r\n") if line.startswith(prefix))


def _calls(stats: str) -> str:
    # usec and usec_per_call are timings: compare the counts only.
    return re.sub(r"usec=\d+,usec_per_call=[\d.]+,", "", stats)


def test_errorstats_and_call_counts_as_redis_server(trio_kv, redis_port) -> None:
    ours, theirs = both(trio_kv, redis_port)
    try:
        for conn in (ours, theirs):
            for request in [
                ("CONFIG", "RESETSTAT"),
                ("SET", "k"),
                ("asdf",),
                ("SET", "k1", "v1"),
                ("MULTI",),
                ("SET", "k"),
                ("EXEC",),
                ("EXEC",),
                ("SET", "n", "x"),
                ("INCR", "n"),
                ("MULTI",),
                ("SET", "a", "b"),
                ("INCR", "n"),
                ("EXEC",),
                ("CLIENT", "ID"),
                ("CLIENT", "GETNAME"),
            ]:
                conn.call(*request)
        assert _info_lines(ours, "errorstats", "errorstat_") == _info_lines(theirs, "errorstats", "errorstat_")
        names = ["set", "incr", "multi", "exec", "client|id", "client|getname"]
        got = {name: _calls(v) for name, v in _info_lines(ours, "commandstats", "cmdstat_").items()}
        expected = {name: _calls(v) for name, v in _info_lines(theirs, "commandstats", "cmdstat_").items()}
        assert {name: got.get(f"cmdstat_{name}") for name in names} == {
            name: expected.get(f"cmdstat_{name}") for name in names
        }
        for conn in (ours, theirs):
            conn.call("FLUSHALL")
    finally:
        ours.close()
        theirs.close()


def test_subcommand_latency_histograms_and_tracking(trio_kv) -> None:
    conn = Raw(trio_kv[0].address[1])
    try:
        conn.call("CONFIG", "RESETSTAT")
        conn.call("CLIENT", "ID")
        conn.call("CLIENT", "LIST")
        histogram = conn.call("LATENCY", "HISTOGRAM", "client")
        assert b"client|id" in histogram and b"client|list" in histogram and b"client|getname" not in histogram
        only = conn.call("LATENCY", "HISTOGRAM", "client|id")
        assert b"client|id" in only and b"client|list" not in only
        latencystats = _info_lines(conn, "latencystats", "latency_percentiles_usec_")
        assert re.fullmatch(r"p50=[\d.]+,p99=[\d.]+,p99\.9=[\d.]+", latencystats["latency_percentiles_usec_client|id"])
        # Tracking off: calls are counted, latencies are not.
        conn.call("CONFIG", "RESETSTAT")
        assert conn.call("CONFIG", "SET", "latency-tracking", "no") == b"+OK\r\n"
        conn.call("SET", "a", "b")
        assert "latency_percentiles_usec_set" not in _info_lines(conn, "latencystats", "latency_")
        assert "cmdstat_set" in _info_lines(conn, "commandstats", "cmdstat_")
        conn.call("CONFIG", "SET", "latency-tracking", "yes")
        conn.call("CONFIG", "SET", "latency-tracking-info-percentiles", "0 100")
        conn.call("SET", "a", "b")
        line = _info_lines(conn, "latencystats", "latency_")["latency_percentiles_usec_set"]
        assert re.fullmatch(r"p0=[\d.]+,p100=[\d.]+", line)
        conn.call("CONFIG", "SET", "latency-tracking-info-percentiles", "50 99 99.9")
    finally:
        conn.close()


def test_latency_monitor_records_command_events(trio_kv) -> None:
    """A command that runs at least the threshold (1 ms: an MSET of 20000
    keys takes far longer) is an event of the monitor."""
    conn = Raw(trio_kv[0].address[1])
    try:
        conn.call("LATENCY", "RESET")
        assert conn.call("CONFIG", "SET", "latency-monitor-threshold", "1") == b"+OK\r\n"
        pairs: list[str] = []
        for index in range(20000):
            pairs += [f"key:{index}", "v"]
        assert conn.call("MSET", *pairs) == b"+OK\r\n"
        latest = conn.call("LATENCY", "LATEST")
        assert b"$7\r\ncommand\r\n" in latest
        assert conn.call("LATENCY", "HISTORY", "command").startswith(b"*1\r\n*2\r\n:")
        assert b"command: 1 latency spikes" in conn.call("LATENCY", "DOCTOR")
        assert conn.call("LATENCY", "GRAPH", "command").startswith(b"=") or b"command - high" in conn.call(
            "LATENCY", "GRAPH", "command"
        )
        # Off again, so no new event (any command may take 1 ms on a busy machine).
        conn.call("CONFIG", "SET", "latency-monitor-threshold", "0")
        assert conn.call("LATENCY", "RESET", "COMMAND") == b":1\r\n"
        assert b"$7\r\ncommand\r\n" not in conn.call("LATENCY", "LATEST")
        conn.call("LATENCY", "RESET")
        assert conn.call("LATENCY", "LATEST") == b"*0\r\n"
    finally:
        conn.call("CONFIG", "SET", "latency-monitor-threshold", "0")
        conn.call("FLUSHALL")
        conn.close()


def test_client_list_shows_the_local_address(trio_kv) -> None:
    conn = Raw(trio_kv[0].address[1])
    try:
        host, port = conn.sock.getpeername()[:2]
        info = conn.call("CLIENT", "INFO")
        assert f" laddr={host}:{port} ".encode() in info
        killed = Raw(trio_kv[0].address[1])
        assert conn.call("CLIENT", "KILL", "LADDR", f"{host}:{port}", "SKIPME", "yes") == b":1\r\n"
        assert killed.nothing_pending()  # closed: EOF, no reply
        killed.close()
    finally:
        conn.close()


def test_config_set_maxclients_applies_at_once(trio_kv) -> None:
    port = trio_kv[0].address[1]
    first = Raw(port)
    previous = first.call("CONFIG", "GET", "maxclients").split(b"\r\n")[-2].decode()
    try:
        assert first.call("CONFIG", "SET", "maxclients", "2") == b"+OK\r\n"
        assert first.call("CONFIG", "GET", "maxclients") == b"*2\r\n$10\r\nmaxclients\r\n$1\r\n2\r\n"
        second = Raw(port)
        assert second.call("PING") == b"+PONG\r\n"
        # Refused at accept: the main port answers in the line protocol, then closes.
        with socket.create_connection(("127.0.0.1", port), timeout=IO_SECONDS) as third:
            refused = b""
            while chunk := third.recv(4096):
                refused += chunk
        assert refused == b"ERROR max clients reached\n"
        second.close()
    finally:
        assert first.call("CONFIG", "SET", "maxclients", previous) == b"+OK\r\n"
        first.close()


def test_save_without_the_log_writes_a_snapshot_loaded_at_start(tmp_path) -> None:
    data_dir = tmp_path / "data"
    with ServerProcess.start(REPO, "--appendonly", "no", data_dir=data_dir) as process:
        conn = Raw(process.address[1])
        assert conn.call("SET", "kept", "value") == b"+OK\r\n"
        assert conn.call("SET", "gone", "soon", "PX", "100000") == b"+OK\r\n"
        assert conn.call("SAVE") == b"+OK\r\n"
        assert conn.call("INFO", "persistence").count(b"rdb_saves:1\r\n") == 1
        assert conn.call("SET", "after", "save") == b"+OK\r\n"
        conn.close()
        assert (data_dir / "dump.snapshot").exists()
        assert process.terminate(STOP_SECONDS) == 0, process.log()
    with ServerProcess.start(REPO, "--appendonly", "no", data_dir=data_dir) as process:
        conn = Raw(process.address[1])
        assert conn.call("GET", "kept") == b"$5\r\nvalue\r\n"
        assert conn.call("PTTL", "gone").startswith(b":")
        assert conn.call("GET", "after") == b"$-1\r\n"  # written after the SAVE
        conn.close()
        assert process.terminate(STOP_SECONDS) == 0, process.log()
    assert not [name for name in os.listdir(data_dir) if name.endswith(".tmp")]
    shutil.rmtree(data_dir)
