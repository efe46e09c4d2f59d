"""HTTP framing and CORS (issue 8, items 4 and 8), with raw sockets and curl.

* A request with both ``Content-Length`` and ``Transfer-Encoding`` is
  refused and the connection closed (RFC 9112 6.1): a request smuggled
  behind it is never answered.
* A keep-alive request that reached the socket before the idle timeout
  fired is served, however long the event loop was stalled: the sweep that
  closes idle connections leaves one alone when its next request is already
  in the socket's buffer.
* CORS is opt-in (``--http-cors-origins``), checked with curl and an
  ``Origin`` header against a real server process.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator

import pytest
import trio

from harness.server_process import ServerProcess
from trio_kv.server import http_listener
from trio_kv.server.http_connection import HttpConnection

from ..conftest import REPO, require_tool
from .conftest import start_server

TIMEOUT_SECONDS = 10
IDLE_TIMEOUT_SECONDS = 0.3
# Longer than the idle timeout plus a few timeout sweeps.
STALL_SECONDS = 1.0
CURL_SECONDS = 15
HTTP_PORT_LINE = re.compile(r"trio_kv HTTP API on [^ ]+:(\d+)")


async def read_until_closed(stream: trio.SocketStream) -> bytes:
    received = bytearray()
    while True:
        try:
            chunk = await stream.receive_some(65536)
        except trio.BrokenResourceError:  # reset
            break
        if not chunk:
            break
        received += chunk
    return bytes(received)


async def read_response(stream: trio.SocketStream, buffered: bytearray) -> bytes:
    """One response with a Content-Length body (all this server sends)."""
    while b"\r\n\r\n" not in buffered:
        chunk = await stream.receive_some(65536)
        assert chunk, f"closed before a response: {bytes(buffered)!r}"
        buffered += chunk
    head_end = buffered.index(b"\r\n\r\n") + 4
    length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", buffered[:head_end]).group(1))
    while len(buffered) < head_end + length:
        chunk = await stream.receive_some(65536)
        assert chunk, "closed mid-body"
        buffered += chunk
    response = bytes(buffered[: head_end + length])
    del buffered[: head_end + length]
    return response


# --- Content-Length and Transfer-Encoding ----------------------------------------


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: chunked\r\nContent-Length: 40\r\n",
    ],
)
async def test_both_framings_refused_and_smuggled_request_never_answered(nursery, framing):
    addresses = await start_server(nursery, http_port=0)
    smuggled = b"GET /key/secret HTTP/1.1\r\nHost: localhost\r\n\r\n"
    request = (
        b"PUT /key/a HTTP/1.1\r\nHost: localhost\r\n" + framing + b"\r\n"
        + b"3\r\n\"x\"\r\n0\r\n\r\n" + smuggled
    )
    with trio.fail_after(TIMEOUT_SECONDS):
        stream = await trio.open_tcp_stream(*addresses.http)
        await stream.send_all(request)
        received = await read_until_closed(stream)
        await stream.aclose()
    assert received.startswith(b"HTTP/1.1 400 "), received
    assert received.count(b"HTTP/1.1 ") == 1, received
    assert b"connection: close" in received.lower()
    assert b"Content-Length and Transfer-Encoding" in received
    assert addresses.store.keyspace.get(b"a") is None


# --- the idle timeout and a stalled event loop --------------------------------------


@pytest.fixture
def http_servers(monkeypatch) -> list:
    """Every HttpServer the test starts (to reach its connections)."""
    servers = []
    original = http_listener.HttpServer.__init__

    def recording_init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        servers.append(self)

    monkeypatch.setattr(http_listener.HttpServer, "__init__", recording_init)
    return servers


def http_connections(servers) -> list[HttpConnection]:
    return [
        connection
        for server in servers
        for connection in server.registry.connections.values()
        if isinstance(connection, HttpConnection)
    ]


GET_HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"


async def open_idle_connections(addresses, count: int) -> list[tuple[trio.SocketStream, bytearray]]:
    """``count`` keep-alive connections that have each had one response and now wait."""
    clients = []
    for _ in range(count):
        stream = await trio.open_tcp_stream(*addresses.http)
        await stream.send_all(GET_HEALTHZ)
        buffered = bytearray()
        assert (await read_response(stream, buffered)).startswith(b"HTTP/1.1 200 ")
        clients.append((stream, buffered))
    return clients


async def wait_all_idle(servers, count: int) -> None:
    while True:
        connections = http_connections(servers)
        if len(connections) == count and all(c._phase.name == "IDLE" for c in connections):
            return
        await trio.sleep(0.01)


async def test_request_in_the_socket_survives_an_expired_idle_deadline(nursery, http_servers):
    # Deterministic: the request is written (no checkpoint after it, so the
    # server has not run), then the sweep runs as it would after a stall
    # longer than the idle timeout, before the connection's receive.
    addresses = await start_server(nursery, http_port=0, http_idle_timeout_seconds=IDLE_TIMEOUT_SECONDS)
    with trio.fail_after(TIMEOUT_SECONDS):
        [(stream, buffered)] = await open_idle_connections(addresses, 1)
        await wait_all_idle(http_servers, 1)
        os.write(stream.socket.fileno(), GET_HEALTHZ)
        for connection in http_connections(http_servers):
            connection.expire(trio.current_time() + 3600)
        response = await read_response(stream, buffered)
        assert response.startswith(b"HTTP/1.1 200 ")
        # And an idle connection with nothing to read still times out.
        assert await read_until_closed(stream) == b""
        await stream.aclose()


async def test_keep_alive_requests_served_after_a_stalled_loop(nursery, http_servers):
    # The real thing: the whole event loop blocks (time.sleep) for longer
    # than the idle timeout while the requests arrive; each round, the
    # timeout sweep and the connections wake in the same scheduler batch.
    addresses = await start_server(nursery, http_port=0, http_idle_timeout_seconds=IDLE_TIMEOUT_SECONDS)
    with trio.fail_after(TIMEOUT_SECONDS * 3):
        for _round in range(4):
            clients = await open_idle_connections(addresses, 4)
            await wait_all_idle(http_servers, 4)
            for stream, _ in clients:
                os.write(stream.socket.fileno(), GET_HEALTHZ)
            time.sleep(STALL_SECONDS)  # a stalled event loop, on purpose
            for stream, buffered in clients:
                assert (await read_response(stream, buffered)).startswith(b"HTTP/1.1 200 ")
                await stream.aclose()
            while http_connections(http_servers):
                await trio.sleep(0.01)


# --- CORS with curl against a real process -------------------------------------------


@pytest.fixture(scope="module")
def cors_servers(tmp_path_factory) -> Iterator[dict[str, int]]:
    """HTTP ports of three real servers: CORS off (default), one origin, ``*``."""
    ports = {}
    processes = []
    try:
        for name, flags in (("off", ()), ("listed", ("--http-cors-origins", "http://app.example")), ("any", ("--http-cors-origins", "*"))):
            process = ServerProcess.start(
                REPO, "--http-port", "0", "--appendonly", "no", *flags, data_dir=tmp_path_factory.mktemp(name)
            )
            processes.append(process)
            match = process.wait_for_log(HTTP_PORT_LINE)
            assert match is not None, process.log()
            ports[name] = int(match.group(1))
        yield ports
    finally:
        for process in processes:
            process.stop()


def curl_headers(port: int, *args: str) -> dict[str, str]:
    result = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-D", "-", *args, f"http://127.0.0.1:{port}/key/cors"],
        capture_output=True, text=True, timeout=CURL_SECONDS, check=True,
    )
    lines = result.stdout.splitlines()
    assert lines[0].startswith("HTTP/1.1 "), result.stdout
    return {name.lower(): value for name, _, value in (line.partition(": ") for line in lines[1:] if line)}


PREFLIGHT = ("-X", "OPTIONS", "-H", "Access-Control-Request-Method: DELETE", "-H", "Access-Control-Request-Headers: content-type")


def cors_of(headers: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name.startswith("access-control-")}


@pytest.mark.parametrize("origin", ["http://evil.example", "http://app.example", None])
def test_cors_off_by_default(cors_servers, origin):
    require_tool("curl")
    extra = () if origin is None else ("-H", f"Origin: {origin}")
    assert cors_of(curl_headers(cors_servers["off"], *extra)) == {}
    assert cors_of(curl_headers(cors_servers["off"], *extra, *PREFLIGHT)) == {}


def test_cors_listed_origin_only(cors_servers):
    require_tool("curl")
    port = cors_servers["listed"]
    headers = curl_headers(port, "-H", "Origin: http://app.example")
    assert cors_of(headers) == {"access-control-allow-origin": "http://app.example"}
    assert headers["vary"] == "Origin"
    preflight = curl_headers(port, "-H", "Origin: http://app.example", *PREFLIGHT)
    assert cors_of(preflight) == {
        "access-control-allow-origin": "http://app.example",
        "access-control-allow-methods": "GET,HEAD,PUT,DELETE,OPTIONS",
        "access-control-allow-headers": "content-type",
    }
    # Unlisted: no allowance at all, preflight included.
    assert cors_of(curl_headers(port, "-H", "Origin: http://evil.example")) == {}
    assert cors_of(curl_headers(port, "-H", "Origin: http://evil.example", *PREFLIGHT)) == {}


def test_cors_star_is_the_reference_behaviour(cors_servers):
    require_tool("curl")
    port = cors_servers["any"]
    assert cors_of(curl_headers(port)) == {"access-control-allow-origin": "*"}
    assert cors_of(curl_headers(port, "-H", "Origin: http://evil.example", *PREFLIGHT)) == {
        "access-control-allow-origin": "*",
        "access-control-allow-methods": "GET,HEAD,PUT,DELETE,OPTIONS",
        "access-control-allow-headers": "content-type",
    }
