"""The real Redis tools against a real server process: redis-cli (one-shot,
piped and RESP3), redis-benchmark on both ports, and redis-py's connect
handshake in RESP2 and RESP3.

The server runs as ``python -m trio_kv --port 0 --redis-port 0``; both ports
are read from its log. Expected redis-cli output is what redis-cli 7.0
prints for the same commands against a real redis-server.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from harness.server_process import ServerProcess

from ..conftest import REPO, require_tool

STOP_SECONDS = 10
CLI_SECONDS = 15
# Two benchmark runs of 20000 requests per test take a few seconds; this
# bound only stops a hung run.
BENCHMARK_SECONDS = 120
REDIS_PORT_LINE = re.compile(r"trio_kv RESP-only listener on [^ ]+:(\d+)")


@dataclass
class RunningServer:
    process: ServerProcess
    port: int
    redis_port: int


@contextmanager
def running_server(data_dir: Path) -> Iterator[RunningServer]:
    """A server with both ports, their numbers read from its log; stopped on the way out."""
    with ServerProcess.start(REPO, "--redis-port", "0", data_dir=data_dir) as process:
        redis_port = process.wait_for_log(REDIS_PORT_LINE)
        assert redis_port is not None, process.log()
        yield RunningServer(process, process.address[1], int(redis_port.group(1)))


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[RunningServer]:
    require_tool("redis-cli")
    with running_server(tmp_path_factory.mktemp("server") / "data") as running:
        yield running
        status = running.process.terminate(STOP_SECONDS)
    assert status == 0, running.process.log()
    assert "Traceback" not in running.process.log()


def cli(server: RunningServer, *args: str, stdin: str | None = None, port: int | None = None):
    return subprocess.run(
        ["redis-cli", "-p", str(port or server.port), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=CLI_SECONDS,
    )


def test_scripted_redis_cli_session(server: RunningServer) -> None:
    steps = [
        (["SET", "a", "b"], "OK\n"),
        (["GET", "a"], "b\n"),
        (["SET", "ab", "c"], "OK\n"),
        (["GET", "nosuch"], "\n"),
        (["INCR", "tools:n"], "1\n"),
        (["CONFIG", "GET", "save"], "save\n\n"),
        (["CLIENT", "SETNAME", "a b"], "ERR Client names cannot contain spaces, newlines or special characters.\n\n"),
        (["DEL", "ab"], "1\n"),
        (["PING"], "PONG\n"),
    ]
    for args, expected in steps:
        result = cli(server, *args)
        assert (result.stdout, result.stderr, result.returncode) == (expected, "", 0), args
    result = cli(server, "--scan", "--pattern", "a*")
    assert (result.stdout, result.stderr, result.returncode) == ("a\n", "", 0)


def test_redis_cli_info(server: RunningServer) -> None:
    cli(server, "SET", "tools:info", "1")
    result = cli(server, "INFO")
    assert result.returncode == 0 and result.stderr == ""
    # (text mode reads Redis' CRLF line ends as "\n")
    assert result.stdout.startswith("# Server\nredis_version:7.2.0\n")
    assert "\n\n# Keyspace\ndb0:keys=" in result.stdout


def test_piped_redis_cli_prints_no_errors_at_connect(server: RunningServer) -> None:
    # With no command, redis-cli runs its REPL, which fetches COMMAND DOCS first.
    for port in (server.port, server.redis_port):
        result = cli(server, stdin="SET k1 v1\nGET k1\nINCR tools:n2\nGET nosuch\nDEL k1\n", port=port)
        assert (result.stdout, result.stderr, result.returncode) == ("OK\nv1\n1\n\n1\n", "", 0)
        cli(server, "DEL", "tools:n2")


def test_redis_cli_resp3(server: RunningServer) -> None:
    result = cli(server, "-3", "CONFIG", "GET", "save")
    assert (result.stdout, result.stderr, result.returncode) == ("save \n", "", 0)
    result = cli(server, "-3", "HELLO", "3")
    assert result.stdout.startswith("server redis\nversion 7.2.0\nproto 3\nid ")


def benchmark(server: RunningServer, port: int, tests: str) -> str:
    require_tool("redis-benchmark")
    result = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-t", tests, "-n", "20000", "-q"],
        capture_output=True,
        text=True,
        timeout=BENCHMARK_SECONDS,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Could not fetch server CONFIG" not in output
    assert not re.search(r"ERR|[Ee]rror", output), output
    return output


def _summaries(output: str) -> list[str]:
    """The final ``NAME: N requests per second`` line of each test (the
    progress lines in between end in carriage returns)."""
    return re.findall(r"([A-Z_]+(?: \(10 keys\))?): [\d.]+ requests per second", output)


def test_redis_benchmark_main_port(server: RunningServer) -> None:
    # PING_INLINE is not sent here: on the main port a line that does not
    # start with "*" is the line protocol.
    output = benchmark(server, server.port, "ping_mbulk,set,get,incr,mset")
    assert _summaries(output) == ["PING_MBULK", "SET", "GET", "INCR", "MSET (10 keys)"]


def test_redis_benchmark_redis_port(server: RunningServer) -> None:
    output = benchmark(server, server.redis_port, "ping,set,get,incr,mset")
    assert _summaries(output) == ["PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "MSET (10 keys)"]


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_handshake(server: RunningServer, protocol: int) -> None:
    client = redis.Redis(port=server.port, protocol=protocol, client_name=f"py{protocol}", socket_timeout=10)
    try:
        assert client.ping() is True
        assert client.set(f"py:{protocol}", "v") is True and client.get(f"py:{protocol}") == b"v"
        info = client.client_info()
        assert (info["name"], info["lib-name"], str(info["resp"])) == (f"py{protocol}", "redis-py", str(protocol))
        assert info["lib-ver"] == redis.__version__
        if protocol == 3:
            metadata = client.connection_pool.get_connection().handshake_metadata
            assert metadata[b"proto"] == 3 and metadata[b"version"] == b"7.2.0"
        assert client.config_get("appendonly") == {"appendonly": "yes"}  # the log is on by default
        assert client.info("server")["redis_version"] == "7.2.0"
    finally:
        client.close()


def test_shutdown_stops_the_server_without_a_reply(tmp_path) -> None:
    require_tool("redis-cli")
    with running_server(tmp_path / "data") as own:
        result = cli(own, "SHUTDOWN", "NOSAVE")
        assert (result.stdout, result.stderr, result.returncode) == ("", "", 0)
        assert own.process.wait(STOP_SECONDS) == 0, own.process.log()
    assert "Traceback" not in own.process.log()
