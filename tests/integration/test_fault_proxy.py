"""harness/fault_proxy.py against a real echo server over loopback TCP:
forwarding, delay, blackhole (silence, no error), reset (RST on open and
new connections), heal; and the threaded form synchronous tests use."""

from __future__ import annotations

import functools
import socket
import time

import pytest
import trio

from harness.fault_proxy import FaultProxy, ThreadedFaultProxy

WAIT_SECONDS = 5.0


async def _echo(stream: trio.SocketStream) -> None:
    try:
        async for chunk in stream:
            await stream.send_all(chunk)
    except trio.BrokenResourceError:
        pass  # the proxy reset the connection


async def _echo_server(nursery: trio.Nursery) -> int:
    listeners = await nursery.start(functools.partial(trio.serve_tcp, _echo, 0, host="127.0.0.1"))
    return listeners[0].socket.getsockname()[1]


async def _round_trip(stream: trio.SocketStream, payload: bytes) -> bytes:
    await stream.send_all(payload)
    received = b""
    while len(received) < len(payload):
        chunk = await stream.receive_some()
        if not chunk:
            break
        received += chunk
    return received


async def test_forwards_then_delays_then_blackholes_then_heals() -> None:
    with trio.fail_after(WAIT_SECONDS * 3):
        async with trio.open_nursery() as nursery:
            port = await _echo_server(nursery)
            async with FaultProxy("127.0.0.1", port) as proxy:
                stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
                assert await _round_trip(stream, b"ping") == b"ping"

                proxy.delay_seconds = 0.2
                started = trio.current_time()
                assert await _round_trip(stream, b"slow") == b"slow"
                # held once each way
                assert trio.current_time() - started >= 0.4

                proxy.blackhole()
                await stream.send_all(b"lost")
                with trio.move_on_after(0.5) as silence:
                    await stream.receive_some()
                assert silence.cancelled_caught, "a blackholed link answered"

                proxy.heal()
                assert await _round_trip(stream, b"back") == b"back"
                await stream.aclose()
            nursery.cancel_scope.cancel()


async def test_reset_sends_rst_on_open_and_new_connections() -> None:
    with trio.fail_after(WAIT_SECONDS):
        async with trio.open_nursery() as nursery:
            port = await _echo_server(nursery)
            async with FaultProxy("127.0.0.1", port) as proxy:
                stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
                assert await _round_trip(stream, b"ping") == b"ping"
                proxy.reset()
                with pytest.raises(trio.BrokenResourceError) as raised:
                    await stream.receive_some()
                assert isinstance(raised.value.__cause__, ConnectionResetError)
                fresh = await trio.open_tcp_stream("127.0.0.1", proxy.port)
                with pytest.raises(trio.BrokenResourceError):
                    await fresh.receive_some()
                assert proxy.accepted == 2
                proxy.heal()
                again = await trio.open_tcp_stream("127.0.0.1", proxy.port)
                assert await _round_trip(again, b"ok") == b"ok"
                for each in (stream, fresh, again):
                    await each.aclose()
            nursery.cancel_scope.cancel()


def test_the_threaded_proxy_serves_synchronous_clients() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        with ThreadedFaultProxy("127.0.0.1", server.getsockname()[1]) as proxy:
            with socket.create_connection(("127.0.0.1", proxy.port), timeout=WAIT_SECONDS) as client:
                upstream, _ = server.accept()
                with upstream:
                    upstream.settimeout(WAIT_SECONDS)
                    client.sendall(b"hello")
                    assert upstream.recv(5) == b"hello"
                    proxy.set_delay(0.3)
                    started = time.monotonic()
                    client.sendall(b"later")
                    assert upstream.recv(5) == b"later"
                    assert time.monotonic() - started >= 0.3
                    proxy.reset()
                    with pytest.raises(ConnectionResetError):
                        client.recv(1)
