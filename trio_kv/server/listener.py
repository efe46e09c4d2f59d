"""The accept loop, for every listener (line/RESP, RESP-only, HTTP): one task
per connection, a cap on connections, and back-off when the process runs out
of resources.

Modelled on ``trio/_highlevel_serve_listeners.py``: the server, not the
handler, owns each stream and closes it whatever happens; accept errors that
mean "overloaded" (EMFILE, ENFILE, ENOMEM, ENOBUFS) are logged and retried
after ``ACCEPT_BACKOFF_SECONDS`` instead of spinning.

A client over ``--max-clients`` is accepted, told why (``ERROR max clients
reached``; RESP: ``-ERR max number of clients reached``; HTTP: a ``503``) and
closed, so it learns why instead of hanging in the kernel's backlog.

``accept_connections`` keeps these rules for every protocol; a protocol
brings only how to open a connection and how to answer a rejected client
(``serve_listener`` for line/RESP, ``server.http_listener`` for HTTP).
"""

from __future__ import annotations

import errno
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import trio

from ..commands.session import Session
from ..store.engine import Store
from .connection import Connection, reject_line
from .dispatch import Dispatcher

log = logging.getLogger(__name__)

ACCEPT_BACKOFF_SECONDS = 0.1
REJECT_SEND_SECONDS = 1.0
_OVERLOAD_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}

# Answers a client over --max-clients on its stream (the accept loop closes it).
RejectClient = Callable[[trio.SocketStream], Awaitable[None]]


class ClientConnection(Protocol):
    """What the accept loop and the registry need of a connection, whatever
    its protocol (``Connection``, ``HttpConnection``)."""

    id: int
    session: Session
    stream: trio.SocketStream

    async def run(self) -> None: ...

    def stop_reading(self) -> None: ...

    def kill(self) -> None: ...


class ConnectionRegistry:
    """The live connections, for shutdown, CLIENT KILL and the max-clients cap."""

    def __init__(self, max_clients: int) -> None:
        self.max_clients = max_clients
        self.connections: dict[int, ClientConnection] = {}
        self._all_closed = trio.Event()
        self._all_closed.set()

    def __len__(self) -> int:
        return len(self.connections)

    def add(self, connection: ClientConnection) -> None:
        self.connections[connection.id] = connection
        self._all_closed = trio.Event()

    def remove(self, connection: ClientConnection) -> None:
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
    """Accept line/RESP clients (RESP only when ``resp_only``) until cancelled."""
    await accept_connections(
        listener,
        store,
        registry,
        connection_nursery,
        open_connection=functools.partial(Connection, store=store, dispatcher=dispatcher, resp_only=resp_only),
        reject=functools.partial(send_rejection, rejection=reject_line(resp_only)),
    )


async def accept_connections(
    listener: trio.SocketListener,
    store: Store,
    registry: ConnectionRegistry,
    connection_nursery: trio.Nursery,
    *,
    open_connection: Callable[[trio.SocketStream], ClientConnection],
    reject: RejectClient,
    log_prefix: str = "",
) -> None:
    """Accept until cancelled; each connection runs in ``connection_nursery``.

    ``open_connection(stream)`` makes the connection of an accepted client;
    ``reject(stream)`` answers a client over ``--max-clients`` (bounding its
    own time, as ``send_rejection`` does). Either way this loop closes the
    stream. ``log_prefix`` starts this listener's log lines (``"HTTP "``).
    """
    async with listener:
        while True:
            try:
                stream = await listener.accept()
            except OSError as error:
                if error.errno not in _OVERLOAD_ERRNOS:
                    raise
                log.error(
                    "%saccept failed (%s); retrying in %.0f ms", log_prefix, error, ACCEPT_BACKOFF_SECONDS * 1000
                )
                await trio.sleep(ACCEPT_BACKOFF_SECONDS)
                continue
            if len(registry) >= registry.max_clients:
                store.stats.add("rejected_connections")
                connection_nursery.start_soon(_reject, stream, reject)
                continue
            connection = open_connection(stream)
            registry.add(connection)
            store.clients[connection.id] = connection.session
            store.stats.add("total_connections")
            connection_nursery.start_soon(_run_connection, connection, registry, store, log_prefix)


async def send_rejection(stream: trio.SocketStream, rejection: bytes) -> None:
    """Send a rejected client its answer, for at most ``REJECT_SEND_SECONDS``."""
    with trio.move_on_after(REJECT_SEND_SECONDS):
        await stream.send_all(rejection)


async def _run_connection(
    connection: ClientConnection, registry: ConnectionRegistry, store: Store, log_prefix: str
) -> None:
    log.debug("%sclient %d connected from %s", log_prefix, connection.id, connection.session.address)
    try:
        await connection.run()
    except trio.BrokenResourceError as error:
        log.debug("%sclient %d: connection broken: %s", log_prefix, connection.id, error)
    except Exception:
        # A bug in one connection's handling must not take the server down.
        log.exception("%sclient %d: unexpected error; closing the connection", log_prefix, connection.id)
    finally:
        registry.remove(connection)
        store.clients.pop(connection.id, None)
        store.keyspace.unwatch_all(connection.session)
        await trio.aclose_forcefully(connection.stream)
        log.debug("%sclient %d closed", log_prefix, connection.id)


async def _reject(stream: trio.SocketStream, reject: RejectClient) -> None:
    try:
        await reject(stream)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        await trio.aclose_forcefully(stream)
