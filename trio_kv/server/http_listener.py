"""The HTTP listener (``--http-port``): its accept loop, and what its
connections share.

It lives in the same nursery tree as the other listeners (see
``server.lifecycle``): the accept loop runs in the accepting nursery, each
connection in the connections nursery and in the same
``ConnectionRegistry``, so ``--max-clients``, CLIENT KILL, shutdown and the
grace period treat HTTP connections exactly like the others. The accept loop
is ``server.listener``'s, with its rules: the server owns and closes every
stream, "overloaded" accept errors back off, and a client over
``--max-clients`` gets an answer (``503`` JSON, then a lingering close)
before it is closed. Protected mode (server.listener, commands.auth) turns
a non-loopback client away with a ``403`` JSON explanation while no
password is set. Both answers are ``commands.wire.HTTP``'s.

The ``Host`` check against DNS rebinding is on when the listener is bound to
a loopback address (``--host 127.0.0.1``, the default): a web page that made
its own domain resolve to 127.0.0.1 still sends that domain as ``Host``.
"""

from __future__ import annotations

import functools
from collections import Counter

import trio

from ..commands.control import ServerControl
from ..http.routes import CorsPolicy, HttpApi, is_loopback_host
from ..http.prometheus import render_metrics
from ..http.wire import HTTP
from ..store.engine import Store
from .dispatch import Dispatcher
from .http_connection import LINGER_MAX_BYTES, LINGER_SECONDS, HttpConnection
from .streams import linger
from .http_metrics import collect_metrics, connection_protocols
from .listener import ConnectionRegistry, accept_connections, send_rejection

# How often deadlines (idle, request, send) are checked: a timeout fires up
# to this much late.
TIMEOUT_SWEEP_SECONDS = 0.1
# Methods counted under their own name in the metrics; others count as "other",
# so a client cannot grow the label set.
_METHOD_LABELS = {name: name.decode() for name in (b"GET", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"POST", b"PATCH")}


class HttpServer:
    """What every HTTP connection shares."""

    def __init__(
        self, store: Store, control: ServerControl, dispatcher: Dispatcher, registry: ConnectionRegistry
    ) -> None:
        self.store = store
        # The running server, for the sessions of HTTP clients and /metrics.
        self.control = control
        self.dispatcher = dispatcher
        self.registry = registry
        # Listeners currently accepting: /readyz is ready only while one is.
        self.accepting = 0
        # (route, method, status) -> responses sent, for /metrics.
        self.responses: Counter[tuple[str, str, int]] = Counter()
        # JSON work on large bodies and replies: its own thread, never the store's limiter.
        self.offload_limiter = trio.CapacityLimiter(1)
        self._sweeping = False
        self.api = HttpApi(
            check_host=is_loopback_host(store.config.host),
            render_metrics=self.render_metrics,
            not_ready_reason=self.not_ready_reason,
            password=lambda: store.requirepass,
            cors=CorsPolicy.parse(store.config.http_cors_origins),
        )

    async def enforce_timeouts(self) -> None:
        """Cancel the requests whose deadline passed, every ``TIMEOUT_SWEEP_SECONDS``
        (Redis' clientsCron idea: no timer per request). One sweep per server."""
        if self._sweeping:
            return
        self._sweeping = True
        try:
            while True:
                await trio.sleep(TIMEOUT_SWEEP_SECONDS)
                now = trio.current_time()
                for connection in list(self.registry.connections.values()):
                    if isinstance(connection, HttpConnection):
                        connection.expire(now)
        finally:
            self._sweeping = False

    def count_response(self, route: str, method: bytes, status: int) -> None:
        self.responses[route, _METHOD_LABELS.get(method, "other"), status] += 1

    def not_ready_reason(self) -> str | None:
        """Why /readyz says no: not listening (yet, or shutting down), still
        loading (``store.ready`` False), or writes refused (disk error)."""
        if not self.accepting:
            return "not accepting connections"
        if not self.store.ready:
            return "loading"
        persistence = self.control.log
        refusal = persistence.refusal() if persistence is not None else None
        if refusal is not None:
            return f"writes refused: {refusal}"
        return None

    def render_metrics(self) -> bytes:
        snapshot = collect_metrics(
            self.store,
            self.control,
            connection_protocols(self.registry),
            dict(self.responses),
            self.not_ready_reason() is None,
        )
        return render_metrics(snapshot)


async def serve_http_listener(
    listener: trio.abc.Listener[trio.abc.Stream], server: HttpServer, connection_nursery: trio.Nursery
) -> None:
    """Accept until cancelled; each connection runs in ``connection_nursery``."""
    async with trio.open_nursery() as sweeper:
        # Stops with the accept loop: after that, the shutdown grace period bounds every connection.
        sweeper.start_soon(server.enforce_timeouts)
        server.accepting += 1
        try:
            await accept_connections(
                listener,
                server.store,
                server.registry,
                connection_nursery,
                open_connection=functools.partial(HttpConnection, server=server),
                reject=_reject,
                deny=_deny,
                log_prefix="HTTP ",
            )
        finally:
            server.accepting -= 1
            sweeper.cancel_scope.cancel()


async def _reject(stream: trio.abc.Stream) -> None:
    await send_rejection(stream, HTTP.max_clients_reply)
    await linger(stream, seconds=LINGER_SECONDS, max_bytes=LINGER_MAX_BYTES)


async def _deny(stream: trio.abc.Stream) -> None:
    await send_rejection(stream, HTTP.denied_reply)
    await linger(stream, seconds=LINGER_SECONDS, max_bytes=LINGER_MAX_BYTES)
