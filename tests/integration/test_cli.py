"""``trio-kv cli`` against real servers (trio_kv and redis-server 7.0 processes).

* The README's examples, byte for byte: the one-shot block with standard
  output on a pseudo-terminal (what a user at a terminal sees), and the
  interactive block driven through a pseudo-terminal, a line sent each time
  the prompt shows. Both against trio_kv and redis-server.
* The same output as ``redis-cli`` for a table of replies: both tools read the
  same command lines from standard input against the same server, in both
  formats (``--raw``, ``--no-raw``) and both protocols. Against redis-server
  the table adds ``DEBUG PROTOCOL``'s RESP3 types, nested arrays from EVAL and
  pushes (not shown when piped, as redis-cli).
* Exit status 1 on an error reply, AUTH from ``REDISCLI_AUTH``, TLS.

Every wait is bounded; servers are stopped by PID (client_servers.py).
"""

from __future__ import annotations

import os
import pty
import re
import select
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from harness.server_process import server_python

from ..conftest import REPO, require_tool
from .client_servers import redis_server, trio_kv_server
from .test_tls import tls_server
from .tls_certs import TlsFiles, make_tls_files

CLI_SECONDS = 30
PYTHON = server_python(REPO)
README_PORT = "127.0.0.1:6379"
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]")


def cli_argv(port: int, *args: str) -> list[str]:
    return [PYTHON, "-m", "trio_kv", "cli", "-p", str(port), *args]


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name != "REDISCLI_AUTH"}
    env.update(TERM="dumb", REDISCLI_HISTFILE=str(tmp_path / "history"), **extra)
    return env


def _read_pty(master: int, process: subprocess.Popen[bytes], deadline: float) -> bytes:
    """Everything the child writes to the terminal until it exits (bounded)."""
    out = bytearray()
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"the CLI did not finish: {bytes(out)!r}"
        ready, _, _ = select.select([master], [], [], min(remaining, 0.5))
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed its side
                chunk = b""
            if not chunk:
                break
            out += chunk
        elif process.poll() is not None:
            break
    process.wait(CLI_SECONDS)
    return bytes(out)


def run_on_terminal(shell_line: str, env: dict[str, str]) -> tuple[int, bytes]:
    """``bash -c shell_line`` with standard output on a pseudo-terminal; (status, output with \\n newlines)."""
    master, slave = pty.openpty()
    try:
        process = subprocess.Popen(
            ["bash", "-c", shell_line], stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE, env=env
        )
        os.close(slave)
        slave = -1
        output = _read_pty(master, process, time.monotonic() + CLI_SECONDS)
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    assert process.stderr is not None
    assert process.stderr.read() == b""
    return process.returncode, output.replace(b"\r\n", b"\n")


def readme_blocks() -> tuple[list[str], list[str]]:
    """The CLI section's two console blocks (one-shot, interactive), as lines."""
    text = (REPO / "README.md").read_text()
    section = text.split("## The Trio client and `trio-kv cli`", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```console\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 2, blocks
    return blocks[0].splitlines(), blocks[1].splitlines()


def one_shot_examples() -> list[tuple[str, bytes]]:
    """(shell line, expected output) for each ``$`` line of the one-shot block."""
    examples: list[tuple[str, bytes]] = []
    for line in readme_blocks()[0]:
        if line.startswith("$ "):
            examples.append((line[2:], b""))
        else:
            command, expected = examples[-1]
            examples[-1] = (command, expected + line.encode() + b"\n")
    return examples


@pytest.fixture(scope="module", params=["trio_kv", "redis"])
def port(request, tmp_path_factory):
    if request.param == "redis":
        require_tool("redis-server")
        with redis_server(tmp_path_factory.mktemp("redis")) as address:
            yield address[1]
    else:
        with trio_kv_server() as server:
            yield server.address[1]


def flush(port: int) -> None:
    subprocess.run(cli_argv(port, "FLUSHALL"), check=True, capture_output=True, timeout=CLI_SECONDS)


def test_readme_one_shot_examples(port, tmp_path) -> None:
    flush(port)
    examples = one_shot_examples()
    assert len(examples) >= 8
    invocation = f"{shlex.quote(PYTHON)} -m trio_kv cli -p {port}"
    for shell_line, expected in examples:
        status, output = run_on_terminal(shell_line.replace("trio-kv cli", invocation), cli_env(tmp_path))
        assert output == expected, shell_line
        assert status == (1 if expected.startswith(b"(error)") else 0), shell_line


def test_readme_interactive_session(port, tmp_path) -> None:
    flush(port)
    lines = readme_blocks()[1]
    assert lines[0] == "$ trio-kv cli"
    transcript = "\n".join(lines[1:]) + "\n"
    prompt_host = f"127.0.0.1:{port}"
    expected = transcript.replace(README_PORT, prompt_host).encode()
    typed = [line.split("> ", 1)[1] for line in lines[1:] if line.startswith(README_PORT)]
    master, slave = pty.openpty()
    process = subprocess.Popen(
        cli_argv(port), stdin=slave, stdout=slave, stderr=slave, env=cli_env(tmp_path), start_new_session=True
    )
    os.close(slave)
    deadline = time.monotonic() + CLI_SECONDS
    seen = bytearray()
    try:
        for index, line in enumerate(typed):
            # Send a line only once its prompt shows (the index-th one), as a person would.
            while not (
                seen.count(prompt_host.encode()) > index
                and ANSI.sub(b"", bytes(seen)).replace(b"\r", b"").endswith(b"> ")
            ):
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"no prompt before {line!r}: {bytes(seen)!r}"
                ready, _, _ = select.select([master], [], [], min(remaining, 0.5))
                if ready:
                    seen += os.read(master, 65536)
            os.write(master, line.encode() + b"\r")
        seen += _read_pty(master, process, deadline)
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
            process.wait(CLI_SECONDS)
    output = ANSI.sub(b"", bytes(seen)).replace(b"\r\n", b"\n").replace(b"\r", b"")
    assert output == expected
    assert process.returncode == 0
    history = (tmp_path / "history").read_text()
    assert "SET counter 41" in history and "INCR counter" in history


# Command lines both tools read from standard input, on the same server.
COMMON_LINES = [
    "FLUSHALL",
    'SET s "hello world"',
    'SET bin "\\x00\\x01\\xfe\\t\\r\\n\\"\\\\ok"',
    "GET s",
    "GET bin",
    "GET nokey",
    "INCR counter",
    "INCRBYFLOAT f 1.5",
    "APPEND s !",
    "MSET a 1 b 2",
    "MGET a nokey b",
    "HSET h f1 v1 f2 'v 2'",
    "HGETALL h",
    "HGETALL nohash",
    "EXISTS a b nokey",
    "TYPE h",
    "INCR s",
    "NOSUCH command",
    "SET k v NX XX",
    "MULTI",
    "INCR a",
    "INCR s",
    "EXEC",
    "COMMAND INFO get",
    "CONFIG GET maxmemory-policy",
    "SCAN 0 MATCH nomatch*",
]
REDIS_ONLY_LINES = [
    *(f"DEBUG PROTOCOL {kind}" for kind in
      ("string", "integer", "double", "null", "array", "set", "map", "push", "verbatim", "true", "false")),
    "EVAL \"return {1,{2,{3,'x'}},redis.status_reply('st'),redis.error_reply('nested')}\" 0",
    "RPUSH l 1 2 3 4 5 6 7 8 9 10 11 12",
    "LRANGE l 0 -1",
    "SADD st m",
    "SMEMBERS st",
    "ZADD z 1.5 a 2 b",
    "ZRANGE z 0 -1 WITHSCORES",
    "ZSCORE z a",
    "COMMAND DOCS get",
]


@pytest.mark.parametrize("protocol", ["-2", "-3"])
@pytest.mark.parametrize("output", ["--raw", "--no-raw"])
def test_same_output_as_redis_cli(port, output, protocol, request) -> None:
    redis_cli = require_tool("redis-cli")
    lines = COMMON_LINES + (REDIS_ONLY_LINES if "redis" in request.node.callspec.id else [])
    stdin = ("\n".join(lines) + "\n").encode()
    ours = subprocess.run(cli_argv(port, protocol, output), input=stdin, capture_output=True, timeout=CLI_SECONDS)
    theirs = subprocess.run(
        [redis_cli, "-p", str(port), protocol, output], input=stdin, capture_output=True, timeout=CLI_SECONDS
    )
    assert ours.returncode == theirs.returncode == 0
    assert ours.stderr == theirs.stderr == b""
    assert ours.stdout == theirs.stdout
    assert b"(error) ERR value is not an integer" in ours.stdout or output == "--raw"


def test_one_shot_status_and_stdin_mode(port, tmp_path) -> None:
    def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(cli_argv(port, *args), input=stdin, capture_output=True, timeout=CLI_SECONDS,
                              env=cli_env(tmp_path))

    assert run("SET", "k", "v").stdout == b"OK\n"
    failed = run("INCR", "k")
    assert failed.returncode == 1
    assert failed.stdout == b"ERR value is not an integer or out of range\n\n"  # redis-cli's raw format
    assert run("--no-raw", "INCR", "k").stdout == b"(error) ERR value is not an integer or out of range\n"
    piped = run(stdin=b'SET q "a b"\nGET q\n\nGET "open\nquit\nGET q\n')
    assert piped.returncode == 0
    assert piped.stdout == b"OK\na b\nInvalid argument(s)\n"
    refused = subprocess.run(cli_argv(1, "PING"), capture_output=True, timeout=CLI_SECONDS)
    assert refused.returncode == 1 and refused.stderr.startswith(b"Could not connect to 127.0.0.1:1:")


def test_password_from_the_environment(tmp_path) -> None:
    with trio_kv_server(env={"TRIO_KV_REQUIREPASS": "pw"}) as server:
        port = server.address[1]
        denied = subprocess.run(cli_argv(port, "PING"), capture_output=True, timeout=CLI_SECONDS, env=cli_env(tmp_path))
        assert denied.returncode == 1 and denied.stdout.startswith(b"NOAUTH")
        allowed = subprocess.run(
            cli_argv(port, "PING"), capture_output=True, timeout=CLI_SECONDS, env=cli_env(tmp_path, REDISCLI_AUTH="pw")
        )
        assert (allowed.returncode, allowed.stdout, allowed.stderr) == (0, b"PONG\n", b"")
        flagged = subprocess.run(cli_argv(port, "-a", "pw", "PING"), capture_output=True, timeout=CLI_SECONDS)
        assert flagged.stdout == b"PONG\n" and b"may not be safe" in flagged.stderr
        wrong = subprocess.run(cli_argv(port, "-a", "nope", "PING"), capture_output=True, timeout=CLI_SECONDS)
        assert wrong.returncode == 1 and b"AUTH failed: WRONGPASS" in wrong.stderr


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> TlsFiles:
    require_tool("openssl")
    return make_tls_files(tmp_path_factory.mktemp("tls"))


def test_tls(certs) -> None:
    with tls_server(certs) as server:
        argv = cli_argv(server.tls_port, "--tls", "--cacert", str(certs.ca_cert))
        assert subprocess.run([*argv, "SET", "k", "tls"], capture_output=True, timeout=CLI_SECONDS).stdout == b"OK\n"
        assert subprocess.run([*argv, "GET", "k"], capture_output=True, timeout=CLI_SECONDS).stdout == b"tls\n"
        plain = subprocess.run(cli_argv(server.tls_port, "--tls", "GET", "k"), capture_output=True, timeout=CLI_SECONDS)
        assert plain.returncode == 1 and b"TLS handshake" in plain.stderr  # the system CAs do not know this one
