"""COMMAND, COMMAND INFO, COMMAND DOCS, COMMAND LIST and COMMAND COUNT, byte
for byte, in RESP2 and RESP3, as a real server process sends them.

Written before the command table was rebuilt (issue 9): the golden files in
``golden/`` were captured from main at d49dbd9, so a table refactor that
changes one flag, one arity, one ``since`` or the order of the listing
fails here. A deliberate change to the table regenerates them:
``KV_REGENERATE_GOLDEN=1 pytest tests/integration/test_command_output_pinned.py``
(then review the diff of the golden files, which is the change's real
effect on clients).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from harness.server_process import ServerProcess

from ..conftest import REPO

GOLDEN = Path(__file__).parent / "golden"
REPLY_SECONDS = 10
# What each request is pinned by (file stem -> inline request).
REQUESTS = {
    "command": "COMMAND",
    "command_info": "COMMAND INFO",
    "command_info_some": "COMMAND INFO get set client|list config nosuch",
    "command_docs": "COMMAND DOCS",
    "command_list": "COMMAND LIST",
    "command_count": "COMMAND COUNT",
}
MARKER = b"$19\r\nend-of-reply-marker\r\n"


def _resp_request(line: str) -> bytes:
    """A RESP array (the main port takes a first byte other than ``*`` as
    the line protocol)."""
    words = [word.encode() for word in line.split()]
    return b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(word), word) for word in words)


def _reply_bytes(port: int, hello3: bool, request: str) -> bytes:
    """The whole reply to ``request``: read until an ECHO sent after it is
    answered, so no reply parser is involved in what is compared."""
    with socket.create_connection(("127.0.0.1", port), timeout=REPLY_SECONDS) as connection:
        if hello3:
            connection.sendall(_resp_request("HELLO 3") + _resp_request("PING"))
            _read_until(connection, b"+PONG\r\n")
        connection.sendall(_resp_request(request) + _resp_request("ECHO end-of-reply-marker"))
        return _read_until(connection, MARKER)[: -len(MARKER)]


def _read_until(connection: socket.socket, end: bytes) -> bytes:
    data = b""
    while not data.endswith(end):
        chunk = connection.recv(1 << 20)
        if not chunk:
            raise AssertionError(f"connection closed after {len(data)} bytes")
        data += chunk
    return data


@pytest.fixture(scope="module")
def server_port():
    with ServerProcess.start(REPO, "--appendonly", "no") as process:
        yield process.address[1]


@pytest.mark.parametrize("resp", [2, 3])
@pytest.mark.parametrize("stem", sorted(REQUESTS))
def test_command_output_is_pinned(server_port: int, stem: str, resp: int) -> None:
    got = _reply_bytes(server_port, resp == 3, REQUESTS[stem])
    golden = GOLDEN / f"{stem}.resp{resp}"
    if os.environ.get("KV_REGENERATE_GOLDEN") == "1":
        golden.write_bytes(got)
    expected = golden.read_bytes()
    assert len(got) == len(expected) and got == expected, (
        f"{stem} in RESP{resp} differs from {golden.name} (first difference at byte "
        f"{next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))})"
    )
