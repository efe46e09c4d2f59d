"""The TLS listener (``--tls-port``) against a real server process, with
real clients: ``redis-cli --tls`` and redis-py ``ssl=True``, plus Python's
``ssl`` module for the byte-level checks. Certificates are made for each
test module by ``tls_certs`` (the ``openssl`` command line).
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import redis

from harness.server_process import ServerProcess, server_environment

from ..conftest import REPO, require_tool
from .test_auth import non_loopback_ipv4, read_until_closed_or, resp_command  # noqa: F401 (a fixture)
from .tls_certs import TlsFiles, make_tls_files

CLI_SECONDS = 15
SOCKET_SECONDS = 10
STOP_SECONDS = 10
TLS_PORT_LINE = re.compile(r"TLS listener on [^ ]+:(\d+)")


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> TlsFiles:
    require_tool("openssl")
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@dataclass
class TlsServer:
    process: ServerProcess
    tls_port: int


@contextmanager
def tls_server(certs: TlsFiles, *flags: str, env: dict[str, str] | None = None) -> Iterator[TlsServer]:
    process = ServerProcess.start(
        REPO, "--appendonly", "no", "--tls-port", "0",
        "--tls-cert-file", str(certs.server_cert), "--tls-key-file", str(certs.server_key), *flags,
        env=server_environment(**(env or {})),
    )
    with process:
        match = process.wait_for_log(TLS_PORT_LINE)
        assert match, process.log()
        yield TlsServer(process, int(match.group(1)))
        status = process.terminate(STOP_SECONDS)
    assert status == 0, process.log()
    assert "Traceback" not in process.log()


def cli(certs: TlsFiles, port: int, *args: str, host: str = "127.0.0.1") -> subprocess.CompletedProcess[str]:
    path = require_tool("redis-cli")
    shown = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=CLI_SECONDS)
    if "--tls" not in shown.stdout + shown.stderr:
        # Debian's redis-cli has TLS; CI (KV_TESTS_REQUIRE_TOOLS=1) must not skip.
        message = "this redis-cli was built without TLS"
        if os.environ.get("KV_TESTS_REQUIRE_TOOLS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return subprocess.run(
        [path, "-h", host, "-p", str(port), "--tls", "--cacert", str(certs.ca_cert), *args],
        capture_output=True, text=True, timeout=CLI_SECONDS,
    )


def tls_client(certs: TlsFiles, port: int, *, host: str = "127.0.0.1", client_cert: bool = False) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(certs.ca_cert))
    if client_cert:
        context.load_cert_chain(str(certs.client_cert), str(certs.client_key))
    raw = socket.create_connection((host, port), timeout=SOCKET_SECONDS)
    return context.wrap_socket(raw, server_hostname="localhost")


def test_redis_cli_and_redis_py_over_tls(certs):
    with tls_server(certs) as server:
        assert cli(certs, server.tls_port, "PING").stdout.strip() == "PONG"
        assert cli(certs, server.tls_port, "SET", "k", "over tls").stdout.strip() == "OK"
        assert cli(certs, server.tls_port, "GET", "k").stdout.strip() == "over tls"
        with redis.Redis(
            port=server.tls_port, ssl=True, ssl_ca_certs=str(certs.ca_cert), socket_timeout=SOCKET_SECONDS
        ) as client:
            assert client.get("k") == b"over tls"
            big = b"x" * (4 * 1024 * 1024)
            assert client.set("big", big) and client.get("big") == big
            pipe = client.pipeline(transaction=False)
            for index in range(20_000):
                pipe.set(f"p{index}", index)
            assert all(pipe.execute())
            assert client.dbsize() == 20_002
        # Inline commands too: the TLS port is RESP-only, as --redis-port.
        with tls_client(certs, server.tls_port) as sock:
            sock.sendall(b"PING\r\n")
            assert sock.recv(100) == b"+PONG\r\n"


def test_tls_with_a_password(certs):
    with tls_server(certs, env={"TRIO_KV_REQUIREPASS": "pw"}) as server:
        assert cli(certs, server.tls_port, "PING").stdout.strip() == "NOAUTH Authentication required."
        assert cli(certs, server.tls_port, "-a", "pw", "PING").stdout.strip() == "PONG"
        with redis.Redis(
            port=server.tls_port, ssl=True, ssl_ca_certs=str(certs.ca_cert), password="pw",
            socket_timeout=SOCKET_SECONDS,
        ) as client:
            assert client.ping()


def test_a_plain_client_or_an_unknown_ca_is_refused_and_the_server_carries_on(certs, tmp_path):
    other = make_tls_files(tmp_path / "other")
    with tls_server(certs) as server:
        with socket.create_connection(("127.0.0.1", server.tls_port), timeout=SOCKET_SECONDS) as sock:
            sock.sendall(resp_command("SET", "plain", "1"))
            read_until_closed_or(sock, 1 << 16)  # a TLS alert or nothing; then closed
        with redis.Redis(
            port=server.tls_port, ssl=True, ssl_ca_certs=str(other.ca_cert), socket_timeout=SOCKET_SECONDS
        ) as client:
            with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
                client.ping()
        assert cli(certs, server.tls_port, "EXISTS", "plain").stdout.strip() == "0"


def test_client_certificates_when_a_ca_is_given(certs):
    with tls_server(certs, "--tls-ca-cert-file", str(certs.ca_cert)) as server:
        assert "client certificates required" in server.process.log()
        with redis.Redis(
            port=server.tls_port, ssl=True, ssl_ca_certs=str(certs.ca_cert), socket_timeout=SOCKET_SECONDS
        ) as anonymous:
            with pytest.raises(redis.ConnectionError):
                anonymous.ping()
        with redis.Redis(
            port=server.tls_port, ssl=True, ssl_ca_certs=str(certs.ca_cert),
            ssl_certfile=str(certs.client_cert), ssl_keyfile=str(certs.client_key), socket_timeout=SOCKET_SECONDS,
        ) as client:
            assert client.ping()
        shown = cli(certs, server.tls_port, "--cert", str(certs.client_cert), "--key", str(certs.client_key), "PING")
        assert shown.stdout.strip() == "PONG"
        assert cli(certs, server.tls_port, "PING").stdout.strip() != "PONG"
        # CONFIG GET reports it as Redis' tls-auth-clients.
        auth_clients = cli(
            certs, server.tls_port, "--cert", str(certs.client_cert), "--key", str(certs.client_key),
            "CONFIG", "GET", "tls-auth-clients",
        )
        assert auth_clients.stdout.split() == ["tls-auth-clients", "yes"]


def test_shutdown_with_tls_clients_connected(certs):
    # Shutdown shuts the read side of the socket under each SSLStream; the
    # server still exits 0 promptly (tls_server checks the exit status).
    with tls_server(certs) as server:
        idle = tls_client(certs, server.tls_port)
        idle.sendall(b"*1\r\n$4\r\nPING\r\n")
        assert idle.recv(100) == b"+PONG\r\n"
        mid_handshake = socket.create_connection(("127.0.0.1", server.tls_port), timeout=SOCKET_SECONDS)
        try:
            assert server.process.terminate(STOP_SECONDS) == 0
        finally:
            idle.close()
            mid_handshake.close()


def test_protected_mode_on_the_tls_port(certs, non_loopback_ipv4):
    address = non_loopback_ipv4
    with tls_server(certs, "--host", "0.0.0.0") as server:
        with tls_client(certs, server.tls_port, host=address) as sock:
            denied = read_until_closed_or(sock, 1 << 16)
        assert denied.startswith(b"-DENIED Redis is running in protected mode")
        with tls_client(certs, server.tls_port) as sock:
            sock.sendall(resp_command("PING"))
            assert sock.recv(100) == b"+PONG\r\n"


def test_bad_certificate_files_stop_the_start(certs, tmp_path):
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    for cert, key in ((garbage, certs.server_key), (tmp_path / "missing.pem", certs.server_key)):
        process = ServerProcess.launch(
            REPO, "--appendonly", "no", "--tls-port", "0", "--tls-cert-file", str(cert), "--tls-key-file", str(key),
        )
        with process:
            assert process.wait_listening() is None
            assert process.wait(STOP_SECONDS) == 1
            assert "cannot start" in process.log() and "Traceback" not in process.log()
    # And a TLS port without a certificate is a usage error (status 2).
    process = ServerProcess.launch(REPO, "--appendonly", "no", "--tls-port", "0")
    with process:
        assert process.wait_listening() is None
        assert process.wait(STOP_SECONDS) == 2
        assert "--tls-port needs --tls-cert-file and --tls-key-file" in process.log()
