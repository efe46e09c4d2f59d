"""The accept loop: one task per connection, a cap on connections, and
back-off when the process runs out of resources.

Modelled on ``trio/_highlevel_serve_listeners.py``: the server, not the
handler, owns each stream and closes it whatever happens; accept errors that
mean "overloaded" (EMFILE, ENFILE, ENOMEM, ENOBUFS) are logged and retried
after ``ACCEPT_BACKOFF_SECONDS`` instead of spinning.

A client over ``--max-clients`` is accepted, told ``ERROR max clients
reached`` (RESP: ``-ERR max number of clients reached``) and closed, so it
learns why instead of hanging in the kernel's backlog.
"""

from __future__ import annotations

import errno
import logging

import trio

from ..store.engine import Store
from .connection import Connection, reject_line
from .dispatch import Dispatcher

log = logging.getLogger(__name__)

ACCEPT_BACKOFF_SECONDS = 0.1
REJECT_SEND_SECONDS = 1.0
_OVERLOAD_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}


class ConnectionRegistry:
    """The live connections, for shutdown, CLIENT KILL and the max-clients cap."""

    def __init__(self, max_clients: int) -> None:
        self.max_clients = max_clients
        self.connections: dict[int, Connection] = {}
        self._all_closed = trio.Event()
        self._all_closed.set()

    def __len__(self) -> int:
        return len(self.connections)

    def add(self, connection: Connection) -> None:
        self.connections[connection.id] = connection
        self._all_closed = trio.Event()

    def remove(self, connection: Connection) -> None:
        del self.connections[connection.id]
        if not self.connections:
            self._all_closed.set()

    def stop_reading_all(self) -> None:
        for connection in list(self.connections.values()):
            connection.stop_reading()

    async def wait_all_closed(self) -> None:
        await self._all_closed.wait()


async def serve_listener(
    listener: trio.SocketListener,
    store: Store,
    dispatcher: Dispatcher,
    registry: ConnectionRegistry,
    connection_nursery: trio.Nursery,
    resp_only: bool,
) -> None:
    """Accept until cancelled; each connection runs in ``connection_nursery``."""
    async with listener:
        while True:
            try:
                stream = await listener.accept()
            except OSError as error:
                if error.errno not in _OVERLOAD_ERRNOS:
                    raise
                log.error("accept failed (%s); retrying in %.0f ms", error, ACCEPT_BACKOFF_SECONDS * 1000)
                await trio.sleep(ACCEPT_BACKOFF_SECONDS)
                continue
            if len(registry) >= registry.max_clients:
                store.stats.add("rejected_connections")
                connection_nursery.start_soon(_reject, stream, resp_only)
                continue
            connection = Connection(stream, store, dispatcher, resp_only=resp_only)
            registry.add(connection)
            store.clients[connection.id] = connection.session
            store.stats.add("total_connections")
            connection_nursery.start_soon(_run_connection, connection, registry, store)


async def _run_connection(connection: Connection, registry: ConnectionRegistry, store: Store) -> None:
    log.debug("client %d connected from %s", connection.id, connection.session.address)
    try:
        await connection.run()
    except trio.BrokenResourceError as error:
        log.debug("client %d: connection broken: %s", connection.id, error)
    except Exception:
        # A bug in one connection's handling must not take the server down.
        log.exception("client %d: unexpected error; closing the connection", connection.id)
    finally:
        registry.remove(connection)
        store.clients.pop(connection.id, None)
        store.keyspace.unwatch_all(connection.session)
        await trio.aclose_forcefully(connection.stream)
        log.debug("client %d closed", connection.id)


async def _reject(stream: trio.SocketStream, resp_only: bool) -> None:
    try:
        with trio.move_on_after(REJECT_SEND_SECONDS):
            await stream.send_all(reject_line(resp_only))
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        await trio.aclose_forcefully(stream)
