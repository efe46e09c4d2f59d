"""A listener serves whatever ``WireProtocol`` it is given: a throwaway
protocol (tests/shout_protocol.py) is served over a real socket by the
generic accept loop and connection, its replies, errors and max-clients
answer in its own words, with no server module changed."""

from __future__ import annotations

import trio

from trio_kv.config import Config
from trio_kv.server.dispatch import Dispatcher
from trio_kv.server.listener import ConnectionRegistry, serve_listener
from trio_kv.store.engine import Store
from trio_kv.store.local_control import LocalControl

from ..shout_protocol import SHOUT


async def _serve_shout(nursery: trio.Nursery, store: Store, max_clients: int) -> tuple[str, int]:
    dispatcher = Dispatcher(store, workers=1)
    await nursery.start(dispatcher.run)
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    registry = ConnectionRegistry(max_clients)
    nursery.start_soon(serve_listener, listeners[0], store, LocalControl(store), dispatcher, registry, nursery, SHOUT)
    return listeners[0].socket.getsockname()[:2]


async def _exchange(address: tuple[str, int], request: bytes, lines: int) -> bytes:
    """Send ``request``, read until ``lines`` lines came or the server closed."""
    received = b""
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream(*address)
        async with stream:
            await stream.send_all(request)
            while received.count(b"\n") < lines:
                chunk = await stream.receive_some(4096)
                if not chunk:
                    break
                received += chunk
    return received


async def test_a_throwaway_protocol_is_served_by_the_generic_listener(nursery):
    store = Store(Config())
    address = await _serve_shout(nursery, store, max_clients=10)
    replies = await _exchange(address, b"SET k v\nGET k\nNOPE\nQUIT\n", 4)
    assert replies == b"OK\nVALUE v\nOOPS unknown command!\nOK\n"
    assert store.stats.error_counts() == {"OOPS": 1}
    assert await _exchange(address, b'GET "unbalanced\n', 1) == b"OOPS bad request!\n"


async def test_a_throwaway_protocol_words_the_max_clients_answer(nursery):
    address = await _serve_shout(nursery, Store(Config()), max_clients=0)
    assert await _exchange(address, b"PING\n", 1) == b"OOPS full!\n"
