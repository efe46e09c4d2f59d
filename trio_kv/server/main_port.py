"""CONFIG SET port: moving the main listener (``--port``: line protocol and
RESP) while the server runs, as Redis does.

Rules this module keeps:

1. The new port is bound first, on every address ``--host`` resolves to (as
   ``trio.open_tcp_listeners`` does: SO_REUSEADDR, IPv6 sockets v6-only).
   If any bind fails, the sockets already bound are closed, the reason is
   logged and the ``OSError`` raised: nothing else changes and the old
   listener keeps serving (CONFIG SET answers Redis' "Unable to listen on
   this port" and rolls back, commands.runtime_config).
2. On success the new listeners are served by the same accept loop
   (``server.listener.serve_listener``), then the old ones are closed
   before the hook returns: a client that connects after the ``+OK`` can
   only reach the new port. Connections already open stay open.
3. Port 0 closes the main listener and opens none, as Redis' ``CONFIG SET
   port 0`` does (``CONFIG GET port`` and INFO ``tcp_port`` then say 0; the
   RESP-only, TLS and HTTP listeners are not affected). At start,
   ``--port 0`` means "any free port" instead (trio_kv's tests use it).
   Setting the port the main listener already has changes nothing.
4. Shutdown cancels the lifecycle's accepting nursery, which closes
   whichever main listeners are current; a move that arrives once shutdown
   has begun is refused (its sockets closed).

``change_port`` (``ServerControl.change_port``) runs on a worker thread: binding is
synchronous there, and the bound sockets are handed to the event loop with
``trio.from_thread.run_sync``.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Awaitable, Callable

import trio

log = logging.getLogger(__name__)

# listen()'s backlog, as trio.open_tcp_listeners asks (the kernel caps it at somaxconn).
LISTEN_BACKLOG = 0xFFFF

ServeListener = Callable[[trio.SocketListener], Awaitable[None]]


def bind_listening_sockets(host: str | None, port: int) -> list[socket.socket]:
    """Blocking: listening sockets on ``port`` for every address of ``host``.
    On an error every socket made here is closed and the ``OSError`` raised."""
    infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    bound: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in infos:
            try:
                sock = socket.socket(family, kind, proto)
            except OSError as error:
                if error.errno == errno.EAFNOSUPPORT:
                    continue  # e.g. IPv6 disabled in the kernel: serve the other families
                raise
            bound.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(LISTEN_BACKLOG)
    except OSError:
        for sock in bound:
            sock.close()
        raise
    return bound


class MainPort:
    """The main port's current listeners, where they listen, and moving them.

    Built before the server accepts (the server's control reads ``port``);
    ``start`` gives it the lifecycle's accepting nursery and ``serve``, which
    runs one listener's accept loop until cancelled (and closes it on the
    way out).
    """

    def __init__(self, host: str, token: trio.lowlevel.TrioToken) -> None:
        self._host = host
        self._token = token
        self._nursery: trio.Nursery | None = None
        self._serve: ServeListener | None = None
        # The port the main listeners listen on now (0: none, CONFIG SET port 0).
        self.port = 0
        # The current listeners, and the scope their accept loops run in (cancelled when they are replaced).
        self._listeners: list[trio.SocketListener] = []
        self._scope = trio.CancelScope()
        # Set when shutdown begins: no move may start new listeners after it.
        self._closed = False

    def start(self, nursery: trio.Nursery, serve: ServeListener, listeners: list[trio.SocketListener]) -> None:
        """Serve the listeners opened at start in ``nursery`` (event loop)."""
        self._nursery, self._serve = nursery, serve
        self._replace(listeners)

    def close(self) -> None:
        """Shutdown began (event loop): later moves are refused."""
        self._closed = True

    def change_port(self, port: int) -> None:
        """``ServerControl.change_port``, called from a worker thread by CONFIG
        SET port. Raises ``OSError`` when the new port cannot be listened on."""
        if port == self.port:
            return
        sockets: list[socket.socket] = []
        if port:
            try:
                sockets = bind_listening_sockets(self._host, port)
            except OSError as error:
                log.warning("CONFIG SET port: could not listen on %s:%d: %s", self._host, port, error)
                raise
        try:
            trio.from_thread.run_sync(self._move, port, sockets, trio_token=self._token)
        except (OSError, trio.RunFinishedError) as error:
            for sock in sockets:
                sock.close()
            log.warning("CONFIG SET port %d refused: %s", port, error)
            raise OSError(errno.ESHUTDOWN, "the server is shutting down") from error

    def _move(self, port: int, sockets: list[socket.socket]) -> None:
        # Event loop. Raises OSError (the caller closes ``sockets``) once shutdown began.
        if self._closed or self._nursery is None:
            raise OSError(errno.ESHUTDOWN, "the server is shutting down")
        old = self.port
        self._replace([trio.SocketListener(trio.socket.from_stdlib_socket(sock)) for sock in sockets])
        if port:
            log.info("main listener moved to %s:%d (line protocol and RESP); port %s closed", self._host, port, old)
        else:
            log.warning("CONFIG SET port 0: the main listener (port %s) is closed; none is open", old)

    def _replace(self, listeners: list[trio.SocketListener]) -> None:
        # Event loop: start the new accept loops, then stop the old ones and
        # close their sockets now (not when their tasks next run), so the old
        # port refuses connections from the moment this returns.
        assert self._nursery is not None  # start() ran
        old_listeners, old_scope = self._listeners, self._scope
        self._listeners, self._scope = listeners, trio.CancelScope()
        for listener in listeners:
            self._nursery.start_soon(self._serve_until_replaced, listener, self._scope)
        old_scope.cancel()
        for listener in old_listeners:
            listener.socket.close()
        self.port = listeners[0].socket.getsockname()[1] if listeners else 0

    async def _serve_until_replaced(self, listener: trio.SocketListener, scope: trio.CancelScope) -> None:
        serve = self._serve
        assert serve is not None  # start() ran
        with scope:
            try:
                await serve(listener)
            except trio.ClosedResourceError:
                # Its socket was closed by _replace while an accept was under way.
                if not scope.cancel_called:
                    raise
