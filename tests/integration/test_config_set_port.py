"""CONFIG SET port and client-query-buffer-limit at run time, against a
real server process, reply bytes compared with a real redis-server 7.0.

``port`` moves the main listener (line protocol and RESP): the new port is
bound first; on success it serves and the old one refuses, connections
already open stay; a port in use is Redis' error, with every parameter of
the same CONFIG SET rolled back (Redis' tests/unit/introspection.tcl
"CONFIG SET rollback on apply error"); port 0 closes the main listener, as
Redis does.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest
import redis
import trio

from harness.server_process import ServerProcess

from ..conftest import REPO
from .conftest import start_server
from .test_redis_suite_items import IO_SECONDS, STOP_SECONDS, Raw, _free_port, redis_port  # noqa: F401

PORT_IN_USE = (
    b"-ERR CONFIG SET failed (possibly related to argument 'port') - "
    b"Unable to listen on this port. Check server logs.\r\n"
)
ROLLED_BACK = ("maxmemory", "port", "client-query-buffer-limit")


@pytest.fixture
def server(tmp_path) -> Iterator[ServerProcess]:
    """A trio_kv process of this test's own (its port moves); it must stop cleanly."""
    with ServerProcess.start(REPO, "--appendonly", "no", data_dir=tmp_path / "data") as process:
        yield process
        status = process.terminate(STOP_SECONDS)
    assert status == 0, process.log()
    assert "Traceback" not in process.log()


def refuses(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=IO_SECONDS).close()
    except ConnectionRefusedError:
        return True
    return False


def test_config_set_port_moves_the_main_listener(server: ServerProcess) -> None:
    old = server.address[1]
    opened = Raw(old)
    new = _free_port()
    try:
        assert opened.call("CONFIG", "SET", "port", str(new)) == b"+OK\r\n"
        client = redis.Redis(port=new, socket_timeout=IO_SECONDS)
        try:
            assert client.ping() is True
            assert client.config_get("port") == {"port": str(new)}
            assert client.info("server")["tcp_port"] == new
        finally:
            client.close()
        # The line protocol is served there too (the main port speaks both).
        with socket.create_connection(("127.0.0.1", new), timeout=IO_SECONDS) as line:
            line.sendall(b"PING\n")
            assert line.recv(100) == b"PONG\n"
        assert refuses(old)
        assert opened.call("PING") == b"+PONG\r\n"  # connections already open stay
    finally:
        opened.close()
    assert server.wait_for_log(re.compile(rf"main listener moved to 127\.0\.0\.1:{new}"))


def test_config_set_port_in_use_fails_and_rolls_back_as_redis_server(server: ServerProcess, redis_port) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        used = str(blocker.getsockname()[1])
        replies = []
        for port in (server.address[1], redis_port):
            conn = Raw(port)
            try:
                before = [conn.call("CONFIG", "GET", name) for name in ROLLED_BACK]
                replies.append(
                    conn.call("CONFIG", "SET", "maxmemory", "10000001", "port", used, "client-query-buffer-limit", "10m")
                )
                assert [conn.call("CONFIG", "GET", name) for name in ROLLED_BACK] == before
            finally:
                conn.close()
            fresh = Raw(port)  # still served on the original port
            assert fresh.call("PING") == b"+PONG\r\n"
            fresh.close()
    assert replies == [PORT_IN_USE, PORT_IN_USE]
    assert server.wait_for_log(re.compile(rf"could not listen on 127\.0\.0\.1:{used}: .*Address already in use"))


def test_config_set_port_zero_closes_the_main_listener_as_redis_server(server: ServerProcess, redis_port) -> None:
    for port in (server.address[1], redis_port):
        conn = Raw(port)
        try:
            assert conn.call("CONFIG", "SET", "port", "0") == b"+OK\r\n"
            assert conn.call("CONFIG", "GET", "port") == b"*2\r\n$4\r\nport\r\n$1\r\n0\r\n"
            assert refuses(port)
            # Back again, from the connection that stayed open.
            assert conn.call("CONFIG", "SET", "port", str(port)) == b"+OK\r\n"
        finally:
            conn.close()
        fresh = Raw(port)
        assert fresh.call("PING") == b"+PONG\r\n"
        fresh.close()


def test_query_buffer_limit_set_at_run_time_limits_new_connections(server: ServerProcess) -> None:
    port = server.address[1]
    conn = Raw(port)
    try:
        assert conn.call("CONFIG", "SET", "client-query-buffer-limit", "1mb") == b"+OK\r\n"
        assert conn.call("CONFIG", "GET", "client-query-buffer-limit") == (
            b"*2\r\n$25\r\nclient-query-buffer-limit\r\n$7\r\n1048576\r\n"
        )
    finally:
        conn.close()
    with socket.create_connection(("127.0.0.1", port), timeout=IO_SECONDS) as limited:
        # An unfinished 2 MB argument, 1 MB + 100 bytes of it sent: over the
        # new limit (the default, 1 GB, would wait for the rest). Nothing
        # more is sent, so the server has read it all when it closes.
        limited.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\n" + b"x" * (1024 * 1024 + 100))
        answer = b""
        while chunk := limited.recv(4096):
            answer += chunk
    # Past the limit the client is closed with no reply, as Redis does
    # (server.connection); under the default limit the server would wait.
    assert answer == b""


async def _resp_call(port: int, *args: str) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a.encode()) for a in args))
        return await stream.receive_some(4096)


async def test_shutdown_closes_the_moved_listener_and_refuses_later_moves() -> None:
    new = _free_port()
    with trio.fail_after(IO_SECONDS):
        async with trio.open_nursery() as nursery:
            addresses = await start_server(nursery)
            assert await _resp_call(addresses.main[1], "CONFIG", "SET", "port", str(new)) == b"+OK\r\n"
            assert await _resp_call(new, "PING") == b"+PONG\r\n"
            addresses.shutdown.set()
        # serve() has returned, in this process: the listener it moved is closed.
        with pytest.raises(OSError):
            await trio.open_tcp_stream("127.0.0.1", new)
        # A move arriving once shutdown began (a worker still running) is
        # refused, and the port it had bound is released.
        later = _free_port()
        with pytest.raises(OSError):
            await trio.to_thread.run_sync(addresses.control.change_port, later)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", later))
    assert addresses.control.tcp_port == new
