"""One task per HTTP connection: h11 reads the requests, this module does
the IO, ``protocol.http_response`` writes the responses.

The reading side is h11's own server example: ``receive_some`` feeds
``h11.Connection.receive_data`` and ``next_event`` yields the request head,
its body and its end. Each request gets a fresh ``h11.Connection`` fed with
whatever the previous one had buffered beyond its request (pipelining), so
h11 never waits for a response it did not write. The routes and their JSON
live in ``http.routes``; each request's store work goes through the
dispatcher as a ``Job`` on the shared Redis command table, under this
connection's ``Session`` (RESP error wording), so counters, latency, locks
and durability are the same as for every other protocol.

Rules kept here:

* One request at a time, in order. Keep-alive and pipelining as HTTP/1.1
  allows: requests behind the current one stay in the parser's buffer until
  it is answered; a connection never reads while a response is unsent, so
  memory per connection is one receive buffer, the request head
  (``--http-max-head-bytes``, 431 beyond) and body (``--http-max-body-bytes``,
  413 beyond, refused from ``Content-Length`` before it is read).
* Framing: a request with both ``Content-Length`` and
  ``Transfer-Encoding`` gets 400 and the connection closes (RFC 9112 6.1),
  so a request smuggled behind it is never answered.
* Slow clients: waiting for a request's first byte is bounded by
  ``--http-idle-timeout-seconds`` (then the connection closes quietly,
  unless that byte is already in the socket's buffer: a request that
  arrived before the timeout is served, however late the loop got to it);
  from that byte, reading the whole request is bounded by
  ``--http-request-timeout-seconds`` (then 408 and close), and so is
  sending one response. Waiting for the store is never timed out (a job
  taken by a worker always completes). Deadlines are checked as Redis
  checks client timeouts, by a sweep (``HttpServer.enforce_timeouts``,
  every ``TIMEOUT_SWEEP_SECONDS``) that cancels the connection's one
  scope: a request only stores its deadline and ``_Phase`` (what
  cancelling would interrupt). A trio scope or deadline per request or
  phase cost 5 to 10 us a request, up to a tenth of all its work.
* A send that failed or was cancelled leaves the stream in an unknown
  state: the connection closes right after it. Error responses for broken
  framing (400, 408, 413, 431) carry ``Connection: close`` and are followed
  by a lingering close (``linger``): closing a socket with unread input
  makes the kernel send RST, which can destroy the response before the
  client reads it, so the server half-closes and discards input for up to
  ``LINGER_SECONDS`` first, as nginx does.
* Shutdown (``stop_reading``): a request already read is still answered,
  with ``Connection: close``; a request only partly read, and anything
  pipelined behind the answered one, is dropped with the connection.
* JSON work on a large body or reply (over ``OFFLOAD_BYTES``) runs on a
  helper thread with its own limiter, never the store's, so one big value
  cannot stall the event loop or starve the store's workers.
"""

from __future__ import annotations

import email.utils
import enum
import logging
import math
import select
import time
from typing import cast

import h11
import trio

from ..cluster.batch import level_from_http
from ..http.routes import HttpRequest, HttpResponse, StoreCall, UNMATCHED_ROUTE, error_response, parse_query, split_target
from ..http.wire import HTTP
from ..protocol.http_response import CONTINUE, encode_response, keep_alive
from ..store.engine import Job
from .client_session import new_session
from .sending import send_all
from .streams import linger, socket_of

log = logging.getLogger(__name__)

RECEIVE_BYTES = 64 * 1024
OFFLOAD_BYTES = 256 * 1024
LINGER_SECONDS = 1.0
LINGER_MAX_BYTES = 1024 * 1024


class _DateHeader:
    """RFC 9110's ``Date``, formatted once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def __call__(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._value = email.utils.formatdate(now, usegmt=True).encode()
        return self._value


http_date = _DateHeader()


class _Close(Exception):
    """The request cannot be answered normally; the connection closes."""


class _Phase(enum.Enum):
    """Where a request's cycle is, so its scope's cancellation means the right thing."""

    IDLE = "waiting for a request"  # deadline: idle timeout; cancel = close quietly
    READING = "reading a request"  # deadline: request timeout; cancel = 408, close
    RESPONDING = "waiting for the store"  # never cancelled but by the grace period's end
    SENDING = "sending a response"  # deadline: request timeout; cancel = close


class HttpConnection:
    def __init__(self, stream: trio.abc.Stream, server) -> None:
        # ``server`` is the listener's ``HttpServer`` (store, dispatcher, api, counters).
        self.stream = stream
        self.server = server
        store = server.store
        self.config = store.config
        # Store errors are worded as Redis words them (commands.wire.HTTP).
        self.session = new_session(stream, store, server.control, wire=HTTP)
        # Each request is authenticated by the API (Bearer) before it runs a job.
        self.session.authenticated = True
        self.id = self.session.id
        self._stopping = False
        # Cancelled by a timeout or shutdown; whatever it interrupts, the
        # connection closes after (``_phase`` says whether with a 408).
        self._scope = trio.CancelScope()
        self._phase = _Phase.IDLE
        # trio.current_time() past which the sweep cancels ``_scope``.
        self._deadline = math.inf
        # The current request's Origin header (CORS headers depend on it).
        self._origin: bytes | None = None

    def stop_reading(self) -> None:
        """Shutdown: answer what was read, read nothing more."""
        self._stopping = True
        if self._phase in (_Phase.IDLE, _Phase.READING):
            self._scope.cancel()

    def expire(self, now: float) -> None:
        """The timeout sweep: cancel the request if its deadline has passed.

        An idle connection whose next request is already in the socket's
        buffer is not idle: the event loop was late (a stall longer than the
        idle timeout) and its receive simply has not run yet. It is left to
        read that request, which then gets the request timeout."""
        if now < self._deadline or self._phase is _Phase.RESPONDING:
            return
        if self._phase is _Phase.IDLE and _has_input(socket_of(self.stream)):
            return
        self._scope.cancel()

    def kill(self) -> None:
        """CLIENT KILL: close once the current response is sent."""
        self.session.closing = True
        self.stop_reading()

    async def run(self) -> None:
        with trio.CancelScope() as self._scope:
            try:
                await self._serve_requests()
            except _Close:
                return
        if self._scope.cancelled_caught and self._phase is _Phase.READING and not self._stopping:
            log.debug("client %d: request timeout", self.id)
            with trio.move_on_after(self.config.http_request_timeout_seconds):
                if await self._send(error_response(408, "Request timeout"), b"", UNMATCHED_ROUTE, close=True):
                    await linger(self.stream, seconds=LINGER_SECONDS, max_bytes=LINGER_MAX_BYTES)

    async def _serve_requests(self) -> None:
        buffered, eof = b"", False
        while True:
            parser = h11.Connection(h11.SERVER, max_incomplete_event_size=self.config.http_max_head_bytes)
            if buffered:
                parser.receive_data(buffered)
            if eof:
                parser.receive_data(b"")
            if not await self._serve_one(parser, pipelined=bool(buffered) or eof):
                return
            buffered, eof = parser.trailing_data

    async def _serve_one(self, parser: h11.Connection, *, pipelined: bool) -> bool:
        """Read, answer and send one request; True to keep the connection open."""
        read = await self._read_request(parser, pipelined)
        if read is None:
            return False
        request, client_keeps_alive = read
        self._phase = _Phase.RESPONDING
        self._deadline = math.inf
        route, response = await self._respond_to(request, time.perf_counter())
        sent = await self._send(response, request.method, route, close=not client_keeps_alive)
        return sent and client_keeps_alive and not (self._stopping or self.session.closing)

    # --- reading -----------------------------------------------------------------

    async def _receive(self, phase: _Phase, deadline: float) -> bytes | None:
        """Next chunk, b"" at EOF, None once shutdown began. Past ``deadline``
        the sweep cancels the connection's scope (``run`` decides what that means)."""
        if self._stopping:
            return None
        self._phase = phase
        self._deadline = deadline
        try:
            # trio's stubs say bytes | bytearray; socket and TLS streams return bytes.
            return cast(bytes, await self.stream.receive_some(RECEIVE_BYTES))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return b""

    async def _read_request(self, parser: h11.Connection, pipelined: bool) -> tuple[HttpRequest, bool] | None:
        """The next complete request and whether the client keeps the
        connection open after it; None when the connection should close
        quietly (EOF, idle timeout, shutdown). Raises ``_Close`` after
        answering a request that cannot be served (bad framing, too large,
        too slow). ``pipelined``: the parser already holds data."""
        config = self.config
        started_at = None
        self._origin = None
        # A parser without data needs data: skip asking it.
        event: object = h11.NEED_DATA
        if pipelined:  # the request has begun already
            started_at = trio.current_time()
            self._phase = _Phase.READING
            self._deadline = started_at + config.http_request_timeout_seconds
            event = None
        head: h11.Request | None = None
        headers: list[tuple[bytes, bytes]] = []
        body = bytearray()
        while True:
            if event is None:
                try:
                    event = parser.next_event()
                except h11.RemoteProtocolError as error:
                    if parser.trailing_data[1]:
                        raise _Close from None  # the client hung up mid-request: nobody to answer
                    log.debug("client %d: bad HTTP request: %s", self.id, error)
                    await self._refuse(error.error_status_hint, str(error) or "Bad request", head)
            if event is h11.NEED_DATA:
                if started_at is None:
                    data = await self._receive(_Phase.IDLE, trio.current_time() + config.http_idle_timeout_seconds)
                    started_at = trio.current_time()
                    self._phase = _Phase.READING
                    self._deadline = started_at + config.http_request_timeout_seconds
                else:
                    data = await self._receive(_Phase.READING, started_at + config.http_request_timeout_seconds)
                if data is None:
                    return None
                parser.receive_data(data)
            elif isinstance(event, h11.Request):
                head = event
                # Iterating h11's Headers goes through Sequence.__getitem__: do it once.
                headers = list(event.headers)
                self._origin = _header(headers, b"origin")
                if _head_bytes(event, headers) > config.http_max_head_bytes:
                    # h11's own limit only covers a head still incomplete in
                    # its buffer; one that arrived whole is measured here.
                    await self._refuse(431, "Request head too large", head)
                declared = _content_length(headers)
                if _header(headers, b"transfer-encoding") is not None and declared is not None:
                    # RFC 9112 6.1: both framings at once is how a request is
                    # smuggled past a proxy that reads the other one; refuse
                    # and close, so nothing behind it is ever answered.
                    await self._refuse(400, "Both Content-Length and Transfer-Encoding", head)
                if declared is not None and declared > config.http_max_body_bytes:
                    await self._refuse_too_large(head)
                if parser.they_are_waiting_for_100_continue and not await self._send_bytes(CONTINUE):
                    raise _Close
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > config.http_max_body_bytes:
                    await self._refuse_too_large(head)
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                request = HttpRequest(head.method, head.target, headers, bytes(body))
                return request, keep_alive(head.http_version, headers)
            else:  # ConnectionClosed: the client is gone between requests
                return None
            event = None

    async def _refuse_too_large(self, head: h11.Request | None) -> None:
        limit = self.config.http_max_body_bytes
        await self._refuse(413, f"Request body larger than {limit} bytes", head)

    async def _refuse(self, status: int, message: str, head: h11.Request | None) -> None:
        """Answer a request that cannot be served, linger, and end the
        connection (raises ``_Close``)."""
        method = head.method if head is not None else b""
        if await self._send(error_response(status, message), method, UNMATCHED_ROUTE, close=True):
            await linger(self.stream, seconds=LINGER_SECONDS, max_bytes=LINGER_MAX_BYTES)
        raise _Close

    # --- answering ---------------------------------------------------------------

    async def _respond_to(self, request: HttpRequest, received_at: float) -> tuple[str, HttpResponse]:
        server = self.server
        if len(request.body) > OFFLOAD_BYTES:
            routed = await trio.to_thread.run_sync(server.api.handle, request, limiter=server.offload_limiter)
        else:
            routed = server.api.handle(request)
        plan = routed.plan
        if isinstance(plan, StoreCall) and server.dispatcher.router is not None:
            refused = self._cluster_levels(request)
            if refused is not None:
                return routed.route, refused
        while isinstance(plan, StoreCall):
            job = Job(self.session, HTTP.table, plan.commands, received_at)
            router = server.dispatcher.router
            if router is None:
                await server.dispatcher.submit(job)
            else:
                await router(job)  # a multi-node cluster's coordinator
            plan = await self._continue(plan, job.replies)
        return routed.route, plan

    def _cluster_levels(self, request: HttpRequest) -> HttpResponse | None:
        """A multi-node cluster: this request's ``?w=`` / ``?r=`` levels on the
        session (cluster.batch.level_from_http), or a 400 for a bad one."""
        parts = split_target(request.target)
        query = parse_query(parts[1]) if parts is not None else {}
        levels: list[str | None] = []
        for name in (b"w", b"r"):
            text = query.get(name)
            if text is None:
                levels.append(None)
                continue
            try:
                levels.append(level_from_http(text.decode("latin-1"), self.session.config.cluster_replicas).value)
            except ValueError:
                return error_response(400, f"{name.decode()} must be ONE, QUORUM, ALL or a replica count")
        self.session.cluster_write_level, self.session.cluster_read_level = levels
        return None

    async def _continue(self, call: StoreCall, replies: list[object]):
        size = sum(len(reply) for reply in replies if isinstance(reply, (bytes, memoryview)))
        if size > OFFLOAD_BYTES:
            return await trio.to_thread.run_sync(call.then, replies, limiter=self.server.offload_limiter)
        return call.then(replies)

    async def _send(self, response: HttpResponse, method: bytes, route: str, *, close: bool = False) -> bool:
        """Send one response, with ``Connection: close`` when ``close`` or
        when shutting down; True if it went out."""
        close = close or self._stopping or self.session.closing
        self._phase = _Phase.SENDING
        self._deadline = trio.current_time() + self.config.http_request_timeout_seconds
        headers = [*self.server.api.cors.response_headers(self._origin), *response.headers, (b"date", http_date())]
        if response.content_type is not None:
            headers.append((b"content-type", response.content_type))
        data = encode_response(response.status, headers, response.body, head_only=method == b"HEAD", close=close)
        self.server.count_response(route, method, response.status)
        if response.counts_as_error:
            self.server.store.stats.record_error()
        return await self._send_bytes(data)

    async def _send_bytes(self, data: bytes) -> bool:
        """Send under the current deadline; False if the stream broke (a
        timeout cancels the connection's scope instead)."""
        try:
            await send_all(self.stream, data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as error:
            log.debug("client %d: send failed: %s", self.id, error)
            return False
        return True


def _head_bytes(request: h11.Request, headers: list[tuple[bytes, bytes]]) -> int:
    """The request line and headers' size on the wire (give or take whitespace)."""
    line = len(request.method) + len(request.target) + len(b"  HTTP/1.1\r\n")
    return line + sum(len(name) + len(value) + 4 for name, value in headers) + 2


def _has_input(sock: trio.socket.SocketType) -> bool:
    """Whether a receive on ``sock`` would return at once (data or EOF)."""
    try:
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return False  # closed: nothing to protect


def _header(headers: list[tuple[bytes, bytes]], wanted: bytes) -> bytes | None:
    for name, value in headers:
        if name == wanted:
            return value
    return None


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    value = _header(headers, b"content-length")
    return None if value is None else int(value)
