"""Cross-protocol attacks (issue 8, item 2): an HTTP request sent by a
browser (or curl) to the main port or to ``--redis-port`` runs nothing.

A web page can make the browser POST a ``text/plain`` body such as ``SET
pwned1 yes`` to 127.0.0.1 without a CORS preflight. The server must close
such a connection at ``POST`` / ``Host:`` (as Redis does), answer nothing
and log Redis' "Possible SECURITY ATTACK detected" warning. Tested against
a real server process with a raw socket that sends what a browser sends,
and with curl; afterwards redis-py checks that ``pwned1`` does not exist.
"""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Iterator

import pytest
import redis

from harness.server_process import ServerProcess

from ..conftest import REPO, require_tool

REDIS_PORT_LINE = re.compile(r"trio_kv RESP-only listener on [^ ]+:(\d+)")
SECURITY_LINE = re.compile(r"Possible SECURITY ATTACK detected\. It looks like somebody is sending POST or Host:")
SOCKET_SECONDS = 10.0
CURL_SECONDS = 15


def browser_post(port: int, body: bytes) -> bytes:
    """What Chrome sends for ``fetch("http://127.0.0.1:port/", {method: "POST", body})``."""
    return (
        b"POST / HTTP/1.1\r\n"
        b"Host: 127.0.0.1:%d\r\n"
        b"Connection: keep-alive\r\n"
        b"Content-Length: %d\r\n"
        b"Content-Type: text/plain;charset=UTF-8\r\n"
        b"Origin: http://evil.example\r\n"
        b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36\r\n"
        b"Accept: */*\r\n"
        b"Referer: http://evil.example/\r\n"
        b"\r\n" % (port, len(body))
    ) + body


def send_and_read_all(port: int, request: bytes) -> bytes:
    """Send ``request`` in one write, then read until the server closes;
    a reset (the server closed with the body unread) counts as closed."""
    received = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_SECONDS) as sock:
        sock.sendall(request)
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
    return bytes(received)


class Server:
    def __init__(self, process: ServerProcess, redis_port: int) -> None:
        self.process = process
        self.port = process.address[1]
        self.redis_port = redis_port

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.redis_port, socket_timeout=SOCKET_SECONDS)


@pytest.fixture
def server(tmp_path) -> Iterator[Server]:
    with ServerProcess.start(REPO, "--redis-port", "0", "--appendonly", "no", data_dir=tmp_path / "data") as process:
        match = process.wait_for_log(REDIS_PORT_LINE)
        assert match is not None, process.log()
        yield Server(process, int(match.group(1)))


@pytest.mark.parametrize("which", ["main", "redis"])
@pytest.mark.parametrize("body", [b"SET pwned1 yes", b"SET pwned1 yes\r\n", b"*3\r\n$3\r\nSET\r\n$6\r\npwned1\r\n$3\r\nyes\r\n"])
def test_browser_post_runs_nothing_and_is_logged(server: Server, which: str, body: bytes) -> None:
    port = server.port if which == "main" else server.redis_port
    assert send_and_read_all(port, browser_post(port, body)) == b""
    assert server.process.wait_for_log(SECURITY_LINE, timeout=SOCKET_SECONDS) is not None
    with server.client() as client:
        assert client.exists("pwned1") == 0
        assert client.ping()


@pytest.mark.parametrize("which", ["main", "redis"])
def test_curl_post_runs_nothing(server: Server, which: str) -> None:
    require_tool("curl")
    port = server.port if which == "main" else server.redis_port
    result = subprocess.run(
        ["curl", "-sS", "-o", "-", "-H", "Content-Type: text/plain", "--data-binary", "SET pwned1 yes\r\n",
         f"http://127.0.0.1:{port}/"],
        capture_output=True, timeout=CURL_SECONDS,
    )
    # curl: (52) Empty reply from server, or (56) reset: no HTTP answer at all.
    assert result.returncode in (52, 56), result
    assert result.stdout == b""
    with server.client() as client:
        assert client.exists("pwned1") == 0


@pytest.mark.parametrize("which", ["main", "redis"])
def test_get_request_line_closes_before_anything_after_it(server: Server, which: str) -> None:
    # A GET line shaped like HTTP closes at once (Redis only closes at
    # Host:), so nothing on the following lines runs either.
    port = server.port if which == "main" else server.redis_port
    request = b"GET / HTTP/1.1\r\nSET pwned1 yes\r\nHost: 127.0.0.1\r\n\r\n"
    assert send_and_read_all(port, request) == b""
    with server.client() as client:
        assert client.exists("pwned1") == 0


@pytest.mark.parametrize("which", ["main", "redis"])
def test_host_header_line_closes(server: Server, which: str) -> None:
    port = server.port if which == "main" else server.redis_port
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_SECONDS) as sock:
        sock.sendall(b"PING\r\n")
        pong = sock.recv(100)
        assert pong in (b"PONG\n", b"+PONG\r\n")
        sock.sendall(b"hOsT: 127.0.0.1\r\nSET pwned1 yes\r\n")
        try:
            assert sock.recv(100) == b""
        except ConnectionResetError:
            pass
    with server.client() as client:
        assert client.exists("pwned1") == 0


def test_post_inside_multi_closes_and_discards(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.redis_port), timeout=SOCKET_SECONDS) as sock:
        sock.sendall(b"MULTI\r\nSET pwned1 yes\r\n")
        replies = b""
        while replies.count(b"\r\n") < 2:
            replies += sock.recv(100)
        assert replies == b"+OK\r\n+QUEUED\r\n"
        sock.sendall(b"POST / HTTP/1.1\r\nEXEC\r\n")
        try:
            assert sock.recv(100) == b""
        except ConnectionResetError:
            pass
    with server.client() as client:
        assert client.exists("pwned1") == 0


def test_http_looking_values_are_still_ordinary_commands(server: Server) -> None:
    # Only failing requests are matched: a valid command with HTTP/1.1 in it runs.
    with server.client() as client:
        assert client.execute_command("SET", "/", "HTTP/1.1") is True
        assert client.get("/") == b"HTTP/1.1"
    with socket.create_connection(("127.0.0.1", server.port), timeout=SOCKET_SECONDS) as sock:
        sock.sendall(b"SET post HTTP/1.1\r\nGET post\r\n")
        replies = b""
        while replies.count(b"\n") < 2:
            replies += sock.recv(100)
        assert replies == b"OK\nVALUE HTTP/1.1\n"
    # As in Redis 7, the rule is not a command COMMAND lists.
    with socket.create_connection(("127.0.0.1", server.redis_port), timeout=SOCKET_SECONDS) as sock:
        sock.sendall(b"COMMAND INFO post host: nosuch\r\n")
        expected = b"*3\r\n$-1\r\n$-1\r\n$-1\r\n"  # as for an unknown command
        reply = b""
        while len(reply) < len(expected):
            reply += sock.recv(100)
        assert reply == expected
