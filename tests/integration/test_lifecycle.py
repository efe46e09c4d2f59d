"""The server as a process: signals, shutdown, configuration errors, entry
points, and running as PID 1. Every server here is a real subprocess of
``python -m trio_kv`` (or ``trio-kv``) on port 0; every wait has a timeout.

Shutdown contract checked here (see ``trio_kv/server/lifecycle.py``): on
SIGTERM or SIGINT the server stops reading, answers every request it had
already read, closes the connections and exits 0; connections still busy
after ``--shutdown-grace-seconds`` are closed and it still exits 0; a second
signal during the grace period exits at once with status 1.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from harness.server_process import ServerProcess, server_environment, server_python

from ..conftest import REPO, require_tool

VENV_BIN = REPO / ".venv" / "bin"
SERVER = [server_python(REPO), "-m", "trio_kv"]
START_SECONDS = 10.0
EXIT_SECONDS = 2.0
SOCKET_SECONDS = 5.0


@pytest.fixture
def spawn(tmp_path):
    """``spawn(argv, env)`` starts a server process (with its own data
    directory, through TRIO_KV_DATA_DIR); all are stopped at teardown."""
    servers: list[ServerProcess] = []

    def start(argv: list[str], env: dict[str, str] | None = None) -> ServerProcess:
        env = server_environment() if env is None else dict(env)
        env.setdefault("TRIO_KV_DATA_DIR", str(tmp_path / f"data-{len(servers)}"))
        server = ServerProcess(argv, cwd=REPO, env=env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def started(spawn, *flags: str, argv: list[str] = SERVER, env=None) -> tuple[ServerProcess, tuple[str, int]]:
    server = spawn([*argv, "--port", "0", *flags], env)
    address = server.wait_listening()
    assert address is not None, server.log()
    return server, address


class LineSocket:
    """A blocking client socket with a timeout on every operation."""

    def __init__(self, address: tuple[str, int], receive_buffer_bytes: int | None = None) -> None:
        self.sock = socket.socket()
        if receive_buffer_bytes is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer_bytes)
        self.sock.settimeout(SOCKET_SECONDS)
        self.sock.connect(address)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_line(self) -> bytes:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buffer)
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line

    def command(self, line: bytes) -> bytes:
        self.send(line + b"\n")
        return self.read_line()

    def read_to_eof(self) -> bytes:
        """Everything until the server closes (a reset counts as a close)."""
        data, self.buffer = self.buffer, b""
        try:
            while chunk := self.sock.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
        return data

    def close(self) -> None:
        self.sock.close()


# --- shutdown ----------------------------------------------------------------

PIPELINE_COMMANDS = 1500


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_answers_what_was_read_and_exits_0(spawn, signum):
    # Batches of 4 commands: the pipeline takes hundreds of worker hops, so
    # the signal lands while it is being answered.
    server, address = started(spawn, "--max-batch-commands", "4")
    idle = [LineSocket(address) for _ in range(3)]
    for client in idle:
        assert client.command(b"PING") == b"PONG"
    pipelining = LineSocket(address)
    # One send, well under the server's 64 KiB read: the first reply means
    # the server has read every one of these commands.
    pipelining.send(b"".join(b"SET p%d v\n" % index for index in range(PIPELINE_COMMANDS)))
    assert pipelining.read_line() == b"OK"

    signalled = time.monotonic()
    server.process.send_signal(signum)
    status = server.wait(EXIT_SECONDS)
    exit_seconds = time.monotonic() - signalled
    assert status == 0, server.log()
    assert exit_seconds < EXIT_SECONDS
    assert pipelining.read_to_eof() == b"OK\n" * (PIPELINE_COMMANDS - 1)
    for client in idle:
        assert client.read_to_eof() == b""


def _stuck_sender(address: tuple[str, int]) -> LineSocket:
    """A client whose replies (about 12 MB) it never reads: the server's send
    blocks, so the connection cannot finish during shutdown by itself."""
    client = LineSocket(address, receive_buffer_bytes=4096)
    assert client.command(b"SET big " + b"x" * 60_000) == b"OK"
    client.send(b"GET big\n" * 200)
    assert client.sock.recv(16).startswith(b"VALUE ")
    return client


def test_grace_period_closes_stuck_connections_then_exits_0(spawn):
    server, address = started(spawn, "--shutdown-grace-seconds", "0.3")
    client = _stuck_sender(address)
    signalled = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.wait(EXIT_SECONDS) == 0, server.log()
    assert 0.3 <= time.monotonic() - signalled < EXIT_SECONDS
    client.close()


def test_second_signal_during_grace_exits_at_once(spawn):
    server, address = started(spawn, "--shutdown-grace-seconds", "5")
    client = _stuck_sender(address)
    server.process.send_signal(signal.SIGTERM)
    assert server.wait(0.5) is None, "the stuck client should hold the grace period"
    signalled = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.wait(EXIT_SECONDS) == 1, server.log()
    assert time.monotonic() - signalled < 0.5
    client.close()


# --- configuration and entry points -------------------------------------------


def test_port_0_logs_the_chosen_address(spawn):
    server, (host, port) = started(spawn)
    assert host == "127.0.0.1" and 0 < port <= 65535
    client = LineSocket((host, port))
    assert client.command(b"PING") == b"PONG"
    client.close()


def test_the_server_freezes_its_start_up_objects_before_it_listens(spawn):
    """server/collector.py: full collections must not walk the ~30,000
    objects start-up made (modules, functions, tables) on every pass."""
    server, _address = started(spawn)
    log = server.log()
    frozen = re.search(r"garbage collector: (\d+) start-up objects frozen", log)
    assert frozen is not None, log
    assert int(frozen.group(1)) > 10_000
    assert frozen.start() < log.index("listening on")


@pytest.mark.parametrize(
    ("flags", "env", "message"),
    [
        (["--port", "70000"], {}, "port must be 0..65535, got 70000"),
        (["--workers", "0"], {}, "must be at least 1, got 0"),
        ([], {"TRIO_KV_PORT": "abc"}, "TRIO_KV_PORT: expected an integer, got 'abc'"),
        ([], {"TRIO_KV_FOO": "1"}, "unknown environment variable(s): TRIO_KV_FOO"),
    ],
    ids=["port-70000", "workers-0", "env-port-abc", "env-unknown"],
)
def test_bad_configuration_exits_2_with_a_message(flags, env, message):
    result = subprocess.run(
        [*SERVER, *flags],
        cwd=REPO,
        env=server_environment(**env),
        capture_output=True,
        text=True,
        timeout=START_SECONDS,
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_flag_wins_over_environment_variable(spawn):
    # TRIO_KV_PORT is invalid but --port is given: the flag wins. The other
    # variable, with no flag, applies.
    env = server_environment(TRIO_KV_PORT="abc", TRIO_KV_MAX_LINE_BYTES="32")
    server, address = started(spawn, env=env)
    client = LineSocket(address)
    assert client.command(b"PING") == b"PONG"
    client.send(b"GET " + b"k" * 40 + b"\n")
    assert client.read_to_eof() == b"ERROR line too long\n"


@pytest.mark.parametrize(
    "argv", [SERVER, [str(VENV_BIN / "trio-kv")]], ids=["python-m-trio_kv", "trio-kv-script"]
)
def test_entry_points_start_and_stop(spawn, argv):
    if not Path(argv[0]).exists():
        pytest.skip(f"{argv[0]} is not installed (pip install -e .)")
    server, address = started(spawn, argv=argv)
    client = LineSocket(address)
    assert client.command(b"PING") == b"PONG"
    server.process.send_signal(signal.SIGTERM)
    assert server.wait(EXIT_SECONDS) == 0, server.log()
    client.close()


# --- PID 1 ---------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # The command name, in parentheses, may hold spaces: split after it.
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == pid:
                children.append(int(entry.name))
    return children


def test_runs_as_pid_1_and_exits_0_on_sigterm(spawn):
    require_tool("unshare")
    unshare = spawn(["unshare", "--pid", "--fork", "--mount-proc", *SERVER, "--port", "0"])
    address = unshare.wait_listening()
    if address is None:
        reason = unshare.log()
        if "Operation not permitted" in reason:
            pytest.skip(f"unshare --pid needs privileges here: {reason}")
        raise AssertionError(reason)
    (server_pid,) = _children(unshare.process.pid)
    ns_pids = re.search(r"^NSpid:\s+(.*)$", Path(f"/proc/{server_pid}/status").read_text(), re.M).group(1)
    assert ns_pids.split()[-1] == "1"
    client = LineSocket(address)
    assert client.command(b"PING") == b"PONG"
    signalled = time.monotonic()
    os.kill(server_pid, signal.SIGTERM)
    # unshare exits with its child's status.
    assert unshare.wait(EXIT_SECONDS) == 0, unshare.log()
    assert time.monotonic() - signalled < EXIT_SECONDS
    assert client.read_to_eof() == b""
