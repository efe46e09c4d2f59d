"""Authentication and protected mode against a real server process, with
real clients: redis-py, redis-cli (``-a``, ``--user``/``--pass``), a raw
socket for the line protocol and for byte-exact replies, and curl for HTTP.

Replies are compared byte for byte with a real redis-server 7.0 started
with the same password. Protected mode needs a client address that is not
loopback: the machine's own non-loopback IPv4 address (from ``ip -4 addr``)
with the server bound to 0.0.0.0, or, on a machine with none, a TEST-NET
address the test adds to ``lo`` and removes (as root; else it skips,
saying why).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import redis

from harness.server_process import ServerProcess, server_environment

from ..conftest import REPO, require_tool

CLI_SECONDS = 15
SOCKET_SECONDS = 10
STOP_SECONDS = 10
REDIS_PORT_LINE = re.compile(r"RESP-only listener on [^ ]+:(\d+)")
HTTP_PORT_LINE = re.compile(r"HTTP API on [^ ]+:(\d+)")
PASSWORD = "s3cret pass"


@dataclass
class Server:
    process: ServerProcess
    port: int
    redis_port: int
    http_port: int


@contextmanager
def trio_kv(*flags: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    """A server with the main, RESP-only and HTTP ports; stopped (and checked
    for a clean exit) on the way out."""
    process = ServerProcess.start(
        REPO, "--redis-port", "0", "--http-port", "0", "--appendonly", "no", *flags,
        env=server_environment(**(env or {})),
    )
    with process:
        redis_port = process.wait_for_log(REDIS_PORT_LINE)
        http_port = process.wait_for_log(HTTP_PORT_LINE)
        assert redis_port and http_port, process.log()
        yield Server(process, process.address[1], int(redis_port.group(1)), int(http_port.group(1)))
        status = process.terminate(STOP_SECONDS)
    assert status == 0, process.log()
    assert "Traceback" not in process.log()


@contextmanager
def redis_server(*flags: str) -> Iterator[int]:
    """The reference: redis-server on a free port, no persistence; stopped by PID."""
    path = require_tool("redis-server")
    port = _free_port()
    process = subprocess.Popen(
        [path, "--port", str(port), "--save", "", "--appendonly", "no", *flags],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + SOCKET_SECONDS
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(STOP_SECONDS)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def resp_command(*args: bytes | str) -> bytes:
    parts = [arg.encode() if isinstance(arg, str) else arg for arg in args]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(part), part) for part in parts)


def read_until_closed_or(sock: socket.socket, expected_bytes: int) -> bytes:
    """Read until ``expected_bytes`` arrived or the peer closed (bounded by the socket timeout)."""
    data = b""
    while len(data) < expected_bytes:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def exchange(port: int, requests: list[bytes], *, host: str = "127.0.0.1", source: str | None = None) -> list[bytes]:
    """Each request's raw reply, one round trip at a time (each reply is one line here)."""
    with socket.create_connection(
        (host, port), timeout=SOCKET_SECONDS, source_address=(source, 0) if source else None
    ) as sock:
        replies = []
        for request in requests:
            sock.sendall(request)
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
            replies.append(data)
        return replies


def cli(port: int, *args: str, host: str = "127.0.0.1") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("redis-cli"), "-h", host, "-p", str(port), *args],
        capture_output=True, text=True, timeout=CLI_SECONDS,
    )


def curl(port: int, path: str, *args: str, host: str = "127.0.0.1") -> tuple[int, dict[str, str], str]:
    """(status, lower-case headers, body) of one curl request."""
    result = subprocess.run(
        [require_tool("curl"), "-s", "-i", "--max-time", str(CLI_SECONDS), *args, f"http://{host}:{port}{path}"],
        capture_output=True, timeout=CLI_SECONDS + 5,
    )
    head, _, raw_body = result.stdout.partition(b"\r\n\r\n")
    body = raw_body.decode()
    lines = head.decode().split("\r\n")
    assert lines and lines[0].startswith("HTTP/1.1 "), result
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


# --- byte-exact replies, next to redis-server ---------------------------------------

# Requests whose replies carry no server-specific detail (ids, versions).
SAME_AS_REDIS = [
    resp_command("SET", "k", "v"),
    resp_command("PING"),
    resp_command("NOSUCH", "a"),
    resp_command("GET"),
    resp_command("AUTH", "wrong!"),
    resp_command("AUTH", "bob", PASSWORD),
    resp_command("AUTH", "default", "wrong"),
    resp_command("AUTH", "a", "b", "c"),
    resp_command("HELLO", "3"),
    resp_command("HELLO", "3", "AUTH", "default", "wrong"),
    resp_command("HELLO", "2", "AUTH", "bob", PASSWORD),
    resp_command("HELLO", "3", "SETNAME", "a b"),
    resp_command("AUTH", PASSWORD),
    resp_command("SET", "k", "v"),
    resp_command("GET", "k"),
    resp_command("AUTH", "default", PASSWORD),
    resp_command("RESET"),
    resp_command("GET", "k"),
]
SAME_AS_REDIS_NO_PASSWORD = [
    resp_command("AUTH", "x"),
    resp_command("AUTH", "default", "anything"),
    resp_command("AUTH", "bob", "x"),
    resp_command("CONFIG", "SET", "requirepass", "abc\x00def"),
    resp_command("CONFIG", "GET", "requirepass"),
    resp_command("GET", "k"),  # still authenticated, as in Redis
]


def test_replies_match_redis_server_byte_for_byte():
    with redis_server("--requirepass", PASSWORD) as reference, trio_kv("--requirepass", PASSWORD) as server:
        expected = exchange(reference, SAME_AS_REDIS)
        assert exchange(server.redis_port, SAME_AS_REDIS) == expected
        assert expected[0] == b"-NOAUTH Authentication required.\r\n"  # the reference really asked
        # The main port too, once its first byte chose RESP.
        assert exchange(server.port, SAME_AS_REDIS) == expected
    with redis_server() as reference, trio_kv() as server:
        expected = exchange(reference, SAME_AS_REDIS_NO_PASSWORD)
        assert exchange(server.redis_port, SAME_AS_REDIS_NO_PASSWORD) == expected
        # A new connection now needs the binary password.
        after = [resp_command("GET", "k"), resp_command("AUTH", "abc"), resp_command("AUTH", "abc\x00def")]
        assert exchange(server.redis_port, after) == exchange(reference, after)


def test_unauthenticated_limits_match_redis_server():
    cases = [b"*100\r\n", b"*1\r\n$100000000\r\n"]
    with redis_server("--requirepass", PASSWORD) as reference, trio_kv("--requirepass", PASSWORD) as server:
        for request in cases:
            with socket.create_connection(("127.0.0.1", reference), timeout=SOCKET_SECONDS) as sock:
                sock.sendall(request)
                expected = read_until_closed_or(sock, 1 << 20)
            with socket.create_connection(("127.0.0.1", server.redis_port), timeout=SOCKET_SECONDS) as sock:
                sock.sendall(request)
                got = read_until_closed_or(sock, 1 << 20)  # then closed, as by Redis
            assert got == expected
            assert b"unauthenticated" in got


# --- real clients --------------------------------------------------------------------


def test_redis_py_with_and_without_the_password():
    with trio_kv(env={"TRIO_KV_REQUIREPASS": PASSWORD}) as server:
        with redis.Redis(port=server.redis_port, socket_timeout=SOCKET_SECONDS) as anonymous:
            # redis-py 8 starts with HELLO 3 (Redis' "NOAUTH HELLO must be
            # called ..."); older ones get NOAUTH on the command itself.
            with pytest.raises(redis.AuthenticationError, match="HELLO must be called|Authentication required"):
                anonymous.set("k", "v")
        with redis.Redis(port=server.redis_port, password="nope", socket_timeout=SOCKET_SECONDS) as wrong:
            with pytest.raises(redis.AuthenticationError, match="invalid username-password pair"):
                wrong.ping()
        with redis.Redis(port=server.port, password=PASSWORD, socket_timeout=SOCKET_SECONDS) as client:
            assert client.set("k", "v") and client.get("k") == b"v"
            pipe = client.pipeline()
            for index in range(100):
                pipe.set(f"p{index}", index)
            assert all(pipe.execute())
        # HELLO 3 AUTH default <password> (redis-py's RESP3 handshake).
        with redis.Redis(
            port=server.redis_port, username="default", password=PASSWORD, protocol=3, socket_timeout=SOCKET_SECONDS
        ) as resp3:
            assert resp3.get("k") == b"v"
            assert resp3.execute_command("HELLO", "3", "AUTH", "default", PASSWORD)[b"proto"] == 3
        with redis.Redis(
            port=server.redis_port, username="bob", password=PASSWORD, protocol=3, socket_timeout=SOCKET_SECONDS
        ) as other_user:
            with pytest.raises(redis.AuthenticationError):
                other_user.ping()


def test_redis_cli_a_user_pass():
    with trio_kv("--requirepass", PASSWORD) as server:
        refused = cli(server.redis_port, "SET", "k", "v")
        assert refused.stdout.strip() == "NOAUTH Authentication required."
        assert cli(server.redis_port, "-a", PASSWORD, "SET", "k", "v").stdout.strip() == "OK"
        assert cli(server.redis_port, "--user", "default", "--pass", PASSWORD, "GET", "k").stdout.strip() == "v"
        wrong = cli(server.redis_port, "--user", "bob", "--pass", PASSWORD, "GET", "k")
        assert "WRONGPASS invalid username-password pair or user is disabled." in wrong.stdout + wrong.stderr
        # RESP3 (HELLO 3 AUTH ...) from redis-cli -3.
        assert cli(server.redis_port, "-3", "-a", PASSWORD, "GET", "k").stdout.strip() == "v"
        # At run time: removing the password opens the door; setting one closes it for new clients.
        assert cli(server.redis_port, "-a", PASSWORD, "CONFIG", "SET", "requirepass", "").stdout.strip() == "OK"
        assert cli(server.redis_port, "GET", "k").stdout.strip() == "v"
        assert cli(server.redis_port, "CONFIG", "SET", "requirepass", "new").stdout.strip() == "OK"
        assert cli(server.redis_port, "GET", "k").stdout.strip() == "NOAUTH Authentication required."
        assert cli(server.redis_port, "-a", "new", "CONFIG", "GET", "requirepass").stdout.split() == [
            "requirepass", "new",
        ]


def test_line_protocol_auth_over_a_raw_socket():
    with trio_kv("--requirepass", PASSWORD) as server:
        lines = [b"GET k\n", b"AUTH nope\n", b"AUTH bob 's3cret pass'\n", b"PING\n", b"AUTH a b c\n"]
        assert exchange(server.port, lines) == [
            b"ERROR NOAUTH authentication required: send AUTH <password>\n",
            b"ERROR WRONGPASS invalid password\n",
            b"ERROR WRONGPASS invalid password\n",
            b"ERROR NOAUTH authentication required: send AUTH <password>\n",
            b"ERROR wrong number of arguments for 'auth'\n",
        ]
        # A password with a space is quoted, as any line-protocol token.
        assert exchange(server.port, [b'AUTH "s3cret pass"\n', b"SET k v\n", b"GET k\n", b"QUIT\n"]) == [
            b"OK\n", b"OK\n", b"VALUE v\n", b"OK\n",
        ]
        assert exchange(server.port, [b"AUTH default 's3cret pass'\n", b"GET k\n"]) == [b"OK\n", b"VALUE v\n"]
    with trio_kv() as server:
        assert exchange(server.port, [b"AUTH x\n", b"GET k\n"]) == [
            b"ERROR AUTH called without any password configured\n", b"NOT_FOUND\n",
        ]


def test_http_bearer_with_curl():
    with trio_kv(env={"TRIO_KV_REQUIREPASS": PASSWORD}) as server:
        bearer = f"Authorization: Bearer {PASSWORD}"
        status, headers, body = curl(server.http_port, "/key/a", "-X", "PUT", "-d", '"v"')
        assert status == 401 and headers["www-authenticate"] == 'Bearer realm="trio_kv"'
        assert "Authorization: Bearer" in json.loads(body)["error"]
        status, headers, _ = curl(server.http_port, "/key/a", "-H", "Authorization: Bearer nope")
        assert status == 401 and 'error="invalid_token"' in headers["www-authenticate"]
        for path in ("/keys", "/metrics", "/readyz", "/openapi.json", "/no/such/path"):
            assert curl(server.http_port, path)[0] == 401, path
        assert curl(server.http_port, "/key/a", "-X", "PUT", "-d", '"v"', "-H", bearer)[0] == 200
        status, _, body = curl(server.http_port, "/key/a", "-H", bearer)
        assert status == 200 and json.loads(body) == {"key": "a", "value": "v"}
        assert curl(server.http_port, "/metrics", "-H", bearer)[0] == 200
        # Liveness needs no password (container health checks).
        assert curl(server.http_port, "/healthz")[0] == 200
        # The live password: CONFIG SET changes what HTTP accepts.
        assert cli(server.redis_port, "-a", PASSWORD, "CONFIG", "SET", "requirepass", "other").stdout.strip() == "OK"
        assert curl(server.http_port, "/key/a", "-H", bearer)[0] == 401
        assert curl(server.http_port, "/key/a", "-H", "Authorization: Bearer other")[0] == 200
    with trio_kv() as server:  # no password: no check
        assert curl(server.http_port, "/keys")[0] == 200


# --- protected mode ------------------------------------------------------------------


# A TEST-NET-1 address (RFC 5737) put on the loopback device when the
# machine has no other address: the kernel routes it locally, but it is not
# a loopback address, so the server sees a remote-looking peer.
FALLBACK_ADDRESS = "192.0.2.77"


def _own_ipv4_addresses(ip: str) -> list[str]:
    output = subprocess.run([ip, "-4", "-o", "addr"], capture_output=True, text=True, timeout=CLI_SECONDS).stdout
    return [address for address in re.findall(r"inet (\d+\.\d+\.\d+\.\d+)/", output) if not address.startswith("127.")]


@pytest.fixture(scope="session")
def non_loopback_ipv4() -> Iterator[str]:
    """One of this machine's own IPv4 addresses that is not loopback; failing
    that (and as root), ``FALLBACK_ADDRESS`` added to ``lo`` for the session
    and removed after; else skip, saying why."""
    ip = require_tool("ip")
    addresses = _own_ipv4_addresses(ip)
    if addresses:
        yield addresses[0]
        return
    added = subprocess.run(
        [ip, "addr", "add", f"{FALLBACK_ADDRESS}/32", "dev", "lo"], capture_output=True, text=True, timeout=CLI_SECONDS
    )
    if added.returncode != 0:
        pytest.skip(f"no non-loopback IPv4 address, and adding one to lo failed: {added.stderr.strip()}")
    try:
        yield FALLBACK_ADDRESS
    finally:
        subprocess.run([ip, "addr", "del", f"{FALLBACK_ADDRESS}/32", "dev", "lo"], timeout=CLI_SECONDS, check=False)


def test_protected_mode_denies_non_loopback_clients(non_loopback_ipv4):
    address = non_loopback_ipv4
    with redis_server("--bind", "0.0.0.0", "--protected-mode", "yes") as reference:
        # Redis answers at accept and closes at once (sending first can get
        # the answer destroyed by a reset: trio_kv lingers to avoid that).
        with socket.create_connection((address, reference), timeout=SOCKET_SECONDS) as sock:
            redis_denied = read_until_closed_or(sock, 1 << 16)
    assert redis_denied.startswith(b"-DENIED Redis is running in protected mode")
    first_sentences = redis_denied.split(b"If you want")[0]
    with trio_kv("--host", "0.0.0.0") as server:
        assert "protected mode: no password is set" in server.process.log()
        for port in (server.redis_port, server.port):
            with socket.create_connection((address, port), timeout=SOCKET_SECONDS) as sock:
                sock.sendall(resp_command("SET", "pwned", "yes"))
                denied = read_until_closed_or(sock, 1 << 16)
            assert denied.startswith(first_sentences) and denied.endswith(b"\r\n"), denied
            assert b"--protected-mode no" in denied
        # The line protocol gets an ERROR line with the same explanation.
        with socket.create_connection((address, server.port), timeout=SOCKET_SECONDS) as sock:
            sock.sendall(b"SET pwned yes\n")
            denied = read_until_closed_or(sock, 1 << 16)
        assert denied.startswith(b"ERROR DENIED Redis is running in protected mode") and denied.count(b"\n") == 1
        # redis-cli shows the reason.
        shown = cli(server.redis_port, "PING", host=address)
        assert "DENIED Redis is running in protected mode" in shown.stdout + shown.stderr
        # HTTP: 403 with an explanation.
        status, _, body = curl(server.http_port, "/keys", host=address)
        assert status == 403 and "Protected mode" in json.loads(body)["error"]
        # Nothing ran; loopback clients are served as usual.
        assert cli(server.redis_port, "EXISTS", "pwned").stdout.strip() == "0"
        assert curl(server.http_port, "/keys")[0] == 200
        assert cli(server.redis_port, "INFO", "stats").stdout.count("rejected_connections:") == 1
        # CONFIG SET protected-mode no from loopback opens the door (Redis' remedy 1).
        assert cli(server.redis_port, "CONFIG", "SET", "protected-mode", "no").stdout.strip() == "OK"
        assert cli(server.redis_port, "PING", host=address).stdout.strip() == "PONG"


def test_protected_mode_off_or_with_a_password(non_loopback_ipv4):
    address = non_loopback_ipv4
    with trio_kv("--host", "0.0.0.0", "--protected-mode", "no") as server:
        assert cli(server.redis_port, "PING", host=address).stdout.strip() == "PONG"
        assert exchange(server.port, [b"PING\n"], host=address) == [b"PONG\n"]
        assert curl(server.http_port, "/keys", host=address)[0] == 200
    with trio_kv("--host", "0.0.0.0", env={"TRIO_KV_REQUIREPASS": PASSWORD}) as server:
        # With a password remote clients are served, after AUTH.
        assert cli(server.redis_port, "PING", host=address).stdout.strip() == "NOAUTH Authentication required."
        assert cli(server.redis_port, "-a", PASSWORD, "PING", host=address).stdout.strip() == "PONG"
        assert curl(server.http_port, "/keys", host=address)[0] == 401
        assert "protected mode" not in server.process.log()
