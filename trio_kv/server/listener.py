"""The accept loop, for every listener (main port, RESP-only, TLS, HTTP): one
task per connection, a cap on connections, and back-off when the process runs
out of resources.

Modelled on ``trio/_highlevel_serve_listeners.py``: the server, not the
handler, owns each stream and closes it whatever happens; accept errors that
mean "overloaded" (EMFILE, ENFILE, ENOMEM, ENOBUFS) are logged and retried
after ``ACCEPT_BACKOFF_SECONDS`` instead of spinning.

Each listener serves one ``WireProtocol`` (commands.wire), which supplies
every protocol-specific byte this module sends. A client over
``--max-clients`` is accepted, told why (the protocol's
``max_clients_reply``: ``ERROR max clients reached``, ``-ERR max number of
clients reached``, a ``503``) and closed, so it learns why instead of
hanging in the kernel's backlog.

Protected mode (commands.auth): while it is on and no password is set, a
client from a non-loopback address is counted in ``rejected_connections``,
answered the protocol's ``denied_reply`` (Redis' ``-DENIED ...``
explanation; ``ERROR DENIED ...``; a ``403``) and closed, before anything it
sent is executed. On the main port, which speaks both the line protocol and
RESP, the first bytes (waited for up to ``REJECT_SEND_SECONDS``) choose the
protocol whose wording is sent (``commands.wire.sniff_main_port``), as they
choose the protocol of a served client.
The answer is followed by a lingering close (write side shut, input
discarded for up to ``LINGER_SECONDS``) so the kernel does not reset the
connection before the client reads why.

``accept_connections`` keeps these rules for every protocol; a protocol
brings only how to open a connection and how to answer a rejected or
denied client (``serve_listener`` for every protocol with a ``Framing``:
line, RESP, TLS; ``server.http_listener`` for HTTP). A listener's streams
may be plain TCP or TLS (``trio.SSLStream``, server.streams); the TLS
handshake happens on the stream's first receive or send, in the
connection's task.
"""

from __future__ import annotations

import errno
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import trio

from ..commands.auth import denies
from ..commands.control import ServerControl
from ..commands.session import Session
from ..commands.wire import WireProtocol
from ..store.engine import Store
from .connection import Connection
from .dispatch import Dispatcher
from .streams import linger, socket_of

log = logging.getLogger(__name__)

ACCEPT_BACKOFF_SECONDS = 0.1
REJECT_SEND_SECONDS = 1.0
# A denied client's lingering close: how long and how much input is discarded.
LINGER_SECONDS = 1.0
LINGER_MAX_BYTES = 64 * 1024
_OVERLOAD_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}

# Answers a client over --max-clients, or denied by protected mode, on its
# stream (the accept loop closes it).
RejectClient = Callable[[trio.abc.Stream], Awaitable[None]]


class ClientConnection(Protocol):
    """What the accept loop and the registry need of a connection, whatever
    its protocol (``Connection``, ``HttpConnection``)."""

    id: int
    session: Session
    stream: trio.abc.Stream

    async def run(self) -> None: ...

    def stop_reading(self) -> None: ...

    def kill(self) -> None: ...


class ConnectionRegistry:
    """The live connections, for shutdown, CLIENT KILL and LIST (through
    ``server.control``) and the max-clients cap."""

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
    listener: trio.abc.Listener[trio.abc.Stream],
    store: Store,
    control: ServerControl,
    dispatcher: Dispatcher,
    registry: ConnectionRegistry,
    connection_nursery: trio.Nursery,
    wire: WireProtocol,
    sniff: Callable[[bytes], WireProtocol] | None = None,
) -> None:
    """Accept clients speaking ``wire`` until cancelled. ``sniff``: the
    main port's special case, where the first byte chooses the protocol
    (``commands.wire.sniff_main_port``; ``wire`` words the max-clients
    answer, sent before anything is read)."""
    await accept_connections(
        listener,
        store,
        registry,
        connection_nursery,
        open_connection=functools.partial(
            Connection, store=store, control=control, dispatcher=dispatcher, wire=wire, sniff=sniff
        ),
        reject=functools.partial(send_rejection, rejection=wire.max_clients_reply),
        deny=functools.partial(send_denial, wire=wire, sniff=sniff),
    )


async def accept_connections(
    listener: trio.abc.Listener[trio.abc.Stream],
    store: Store,
    registry: ConnectionRegistry,
    connection_nursery: trio.Nursery,
    *,
    open_connection: Callable[[trio.abc.Stream], ClientConnection],
    reject: RejectClient,
    deny: RejectClient | None = None,
    log_prefix: str = "",
) -> None:
    """Accept until cancelled; each connection runs in ``connection_nursery``.

    ``open_connection(stream)`` makes the connection of an accepted client;
    ``reject(stream)`` answers a client over ``--max-clients`` (bounding its
    own time, as ``send_rejection`` does). Either way this loop closes the
    stream. ``deny(stream)`` answers a client protected mode turns away
    (None: this listener does not check). ``log_prefix`` starts this
    listener's log lines (``"HTTP "``).
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
            if deny is not None and _denied(store, stream):
                store.stats.add("rejected_connections")
                log.debug("%sprotected mode: denied a client from a non-loopback address", log_prefix)
                connection_nursery.start_soon(_reject, stream, deny)
                continue
            connection = open_connection(stream)
            registry.add(connection)
            store.stats.add("total_connections")
            connection_nursery.start_soon(_run_connection, connection, registry, store, log_prefix)


async def send_rejection(stream: trio.abc.Stream, rejection: bytes) -> None:
    """Send a rejected client its answer, for at most ``REJECT_SEND_SECONDS``."""
    with trio.move_on_after(REJECT_SEND_SECONDS):
        await stream.send_all(rejection)


def _denied(store: Store, stream: trio.abc.Stream) -> bool:
    try:
        host = socket_of(stream).getpeername()[0]
    except OSError:
        return True  # gone already: nothing to serve
    return denies(store, host)


async def send_denial(
    stream: trio.abc.Stream, *, wire: WireProtocol, sniff: Callable[[bytes], WireProtocol] | None
) -> None:
    """Protected mode's answer, then a lingering close. With ``sniff`` (the
    main port) the client's first bytes choose the protocol that words it."""
    if sniff is not None:
        first = b""
        with trio.move_on_after(REJECT_SEND_SECONDS):
            first = bytes(await stream.receive_some(1))
        wire = sniff(first)
    await send_rejection(stream, wire.denied_reply)
    await linger(stream, seconds=LINGER_SECONDS, max_bytes=LINGER_MAX_BYTES)


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
        connection.session.transaction.discard()
        connection.session.release_snapshots()
        await trio.aclose_forcefully(connection.stream)
        log.debug("%sclient %d closed", log_prefix, connection.id)


async def _reject(stream: trio.abc.Stream, reject: RejectClient) -> None:
    try:
        await reject(stream)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        await trio.aclose_forcefully(stream)
