"""One task per connection: read, parse, hand requests to the workers, reply;
and, only while the client is slow to read, a writer task.

The connection task does all of its socket's reading and executing; workers
never see a socket. Replies are written without blocking
(``sending.Outbox``): in the usual case the kernel takes them at once and no
other task exists. What the kernel does not take is queued, and a writer
task (started then, ending when the queue is empty) sends it as the socket
becomes writable. So reading never waits for a reply to be sent, and a
client that writes a whole pipeline before reading any reply (redis-py's
pipeline, Redis' PIPELINING stresser) cannot deadlock with the server.

Rules this module keeps:

1. Execution, not reading, pauses for a slow reader. Requests are executed
   while the client's unsent output (``Outbox.unsent_bytes``) is below
   ``--max-pending-reply-bytes`` (1 MiB); above it the connection executes
   nothing, keeps reading the client's raw request bytes into the parser's
   buffer, and resumes as soon as the writer brings the output back under
   the limit. Big replies are encoded in pieces (``encode_reply_pieces``)
   and the limit is checked after each piece, so it holds inside one reply
   too; a big value is queued by reference, never copied.
2. Every client's memory is bounded: its unsent output by the limit above
   plus one piece (one reply of at most ``--max-batch-commands`` is being
   encoded), its request bytes by ``--client-query-buffer-limit-bytes``.
   Past that limit the client is closed at once (its unsent replies are
   dropped) and a warning is logged, as Redis does ("Closing client that
   reached max query buffer length"). ``session.query_buffer_bytes`` shows
   the request bytes held (CLIENT LIST's ``qbuf``): unparsed bytes plus the
   batch being executed.
3. A send is never cancelled midway: the writer task is cancelled only when
   the connection closes (its send failed, it was killed, it passed the
   query-buffer limit, or the server's grace period ran out). A failed send
   leaves the stream in an unknown state, so the connection closes right
   after it, answering nothing more.

Protocol: the listener's ``WireProtocol`` (``commands.wire``) brings the
parser, the table, the reply encoding and what a protocol error answers;
this module names no protocol. The main port is the one special case: its
connections start as the line protocol and the first byte chooses, once
(``commands.wire.sniff_main_port``: ``*`` means RESP).

Shutdown: ``Connection.stop_reading()`` shuts the socket's read side down,
so a pending receive returns EOF and no later read happens; nothing is
cancelled (a dispatch or a send under way is never interrupted). The
requests already read (including a pipeline sitting in the parser's buffer)
are still executed and answered, then the connection closes once its
output is sent (the server's grace period bounds that wait).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from typing import cast

import trio

from ..commands.control import ServerControl
from ..commands.table import CommandTable
from ..commands.wire import Framing, ParserLimits, RequestParser, WireProtocol
from ..store.engine import Job, Store
from .client_session import new_session
from .dispatch import Dispatcher
from .sending import Piece, outbox_for
from .streams import socket_of

log = logging.getLogger(__name__)

RECEIVE_BYTES = 64 * 1024
# A big reply is encoded in pieces of this size, and other tasks run between
# two pieces: encoding 1 MiB of a KEYS reply is 20-50 ms of event-loop time,
# and another client's request needs several event-loop turns to be
# answered, so 1 MiB pieces held other clients up for 200 ms and more.
STREAM_PIECE_BYTES = 64 * 1024


class _CloseNow(Exception):
    """The connection must close without sending what is queued."""


def _framing_of(wire: WireProtocol) -> Framing:
    framing = wire.framing
    if framing is None:
        raise ValueError(f"{wire.label} frames its own connections: not served by server.connection")
    return framing


class Connection:
    def __init__(
        self,
        stream: trio.abc.Stream,
        store: Store,
        control: ServerControl,
        dispatcher: Dispatcher,
        *,
        wire: WireProtocol,
        sniff: Callable[[bytes], WireProtocol] | None = None,
    ) -> None:
        self.stream = stream
        self.store = store
        self.dispatcher = dispatcher
        # The main port's first-byte choice (commands.wire.sniff_main_port);
        # None: every connection of this listener speaks ``wire``.
        self._sniff = sniff
        self.session = new_session(stream, store, control, wire=wire)
        self.id = self.session.id
        self._framing = _framing_of(wire)
        self._stopping = False
        self._killed = False
        self._eof = False
        self._outbox = outbox_for(stream)
        # Owns the writer task; set by run().
        self._nursery: trio.Nursery | None = None
        self._writer_running = False
        # While the connection task waits for its output to drain: the scope
        # of that wait (the writer cancels it once unsent output is below
        # _room_below) and the threshold.
        self._room_scope: trio.CancelScope | None = None
        self._room_below = 0
        # time.perf_counter() when the requests being parsed were read.
        self._received_at = 0.0
        # Plain TCP: the socket's descriptor, read with os.read (_receive);
        # -1 for TLS, read through the stream.
        self._fd = stream.socket.fileno() if type(stream) is trio.SocketStream else -1
        # True right after _serve let the other tasks run: the next read may
        # then take what is there without yielding again.
        self._just_yielded = False

    def stop_reading(self) -> None:
        """Shutdown: finish what was read, read nothing more.

        Shutting the socket's read side down wakes a pending receive with
        EOF; no cancel scope is involved, so a receive that had already got
        data, or a dispatch or a send under way, is never interrupted (and a
        scope per read cost about as much as the read itself)."""
        self._stopping = True
        try:
            socket_of(self.stream).shutdown(socket.SHUT_RD)
        except OSError:
            pass  # already disconnected: the next receive sees EOF anyway

    def kill(self) -> None:
        """CLIENT KILL: close as soon as the current batch is answered, or
        at once if the client is not reading its replies."""
        self.session.closing = True
        self._killed = True
        self.stop_reading()
        if self._room_scope is not None:
            self._room_scope.cancel()

    async def _receive(self) -> bytes | None:
        """Next chunk from the client; b"" at EOF; None when shutdown stopped the read.

        Plain TCP is read with one non-blocking ``os.read``, and only when
        the kernel has nothing, ``wait_readable``: ``SocketStream.receive_some``
        costs several microseconds of bookkeeping per read (its checkpoints,
        context managers and error translation), a fifth of the event loop's
        time with 50 unpipelined clients. Like ``receive_some`` it always
        checkpoints, except right after ``_serve`` let the other tasks run
        (``_just_yielded``): the loop then yields once per request, not twice,
        and still never runs two reads without yielding between them."""
        if self._stopping:
            return None
        fd = self._fd
        if fd >= 0:
            if self._just_yielded:
                self._just_yielded = False
            else:
                await trio.lowlevel.checkpoint()
            while True:
                try:
                    return os.read(fd, RECEIVE_BYTES)
                except BlockingIOError:
                    pass
                except OSError:
                    return b""  # reset by the peer, or closed: as EOF
                if self._stopping:
                    return None
                try:
                    await trio.lowlevel.wait_readable(fd)
                except trio.ClosedResourceError:
                    return b""
        try:
            # trio's stubs say bytes | bytearray; socket and TLS streams return bytes.
            return cast(bytes, await self.stream.receive_some(RECEIVE_BYTES))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return b""

    async def run(self) -> None:
        first = await self._receive()
        if not first:
            return
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                if self._sniff is not None:
                    wire = self._sniff(first)
                    self._framing = _framing_of(wire)
                    self.session.wire = wire
                await self._serve(first)
                # Answered everything it will answer: wait until it is sent.
                await self._wait_for_room(None, 1)
            except trio.BrokenResourceError as error:
                log.debug("client %d: connection broken: %s", self.id, error)
                nursery.cancel_scope.cancel()
            except _CloseNow:
                nursery.cancel_scope.cancel()

    # -- output ------------------------------------------------------------

    def _write(self, data: Piece) -> None:
        """Send ``data`` after the earlier replies, never blocking; what the
        kernel does not take now, the writer task sends."""
        if self._outbox.write(data) and not self._writer_running:
            self._writer_running = True
            assert self._nursery is not None  # set by run(), before any reply
            self._nursery.start_soon(self._send_queued)

    async def _send_queued(self) -> None:
        try:
            await self._outbox.send_queued(self._sent_some)
        finally:
            self._writer_running = False

    def _sent_some(self) -> None:
        scope = self._room_scope
        if scope is not None and self._outbox.unsent_bytes < self._room_below:
            scope.cancel()

    async def _wait_for_room(self, parser: RequestParser | None, below: int) -> None:
        """Wait until the unsent output is under ``below`` bytes, reading the
        client's requests into ``parser`` meanwhile (``None``: the connection
        is closing, and what arrives is dropped). Raises
        ``trio.BrokenResourceError`` if a send failed, ``_CloseNow`` if the
        client was killed or passed the query-buffer limit."""
        outbox = self._outbox
        while outbox.unsent_bytes >= below:
            if self._killed:
                log.debug("client %d: killed while its replies were unsent", self.id)
                raise _CloseNow
            data = None
            with trio.CancelScope() as scope:
                self._room_scope = scope
                self._room_below = below
                try:
                    if self._eof or self._stopping:
                        await trio.sleep_forever()
                    data = await self._receive()
                finally:
                    self._room_scope = None
            if scope.cancelled_caught or data is None:
                continue
            if not data:
                self._eof = True
            if parser is not None:
                self._feed(parser, data)
        if outbox.error is not None:
            raise outbox.error

    # -- input -------------------------------------------------------------

    def _feed(self, parser: RequestParser, data: bytes) -> None:
        """Give received bytes (b"": EOF) to the parser; past the query-buffer
        limit, close the client (as Redis: no reply, a warning in the log)."""
        self._received_at = time.perf_counter()
        try:
            parser.receive_data(data)
        except self._framing.protocol_error:
            # The parser already failed after the commands it returned; the
            # connection reports that error when it asks for the next ones.
            return
        buffered = parser.buffered_bytes
        self.session.query_buffer_bytes = buffered
        limit = self.store.client_query_buffer_limit_bytes
        if buffered > limit:
            log.warning(
                "client %d (%s): closing client that reached max query buffer length "
                "(%d bytes buffered, client-query-buffer-limit %d)",
                self.id, self.session.address, buffered, limit,
            )
            raise _CloseNow

    async def _dispatch(self, table: CommandTable, requests: list[list[bytes]], received_at: float) -> Job:
        job = Job(self.session, table, requests, received_at, protocol=self.session.protocol)
        router = self.dispatcher.router
        if router is None:
            await self.dispatcher.submit(job)
        else:
            await router(job)  # a multi-node cluster's coordinator
        return job

    def _new_parser(self) -> RequestParser:
        config = self.store.config
        return self._framing.new_parser(
            ParserLimits(
                max_line_bytes=config.max_line_bytes,
                max_bulk_bytes=config.proto_max_bulk_len_bytes,
                max_query_buffer_bytes=self.store.client_query_buffer_limit_bytes,
                auth_required=self.session.auth_required,
            )
        )

    async def _serve(self, first: bytes) -> None:
        framing = self._framing
        parser = self._new_parser()
        protocol_error = framing.protocol_error
        encode = framing.encode_reply_into
        is_streamed = framing.is_streamed
        encode_pieces = framing.encode_reply_pieces
        table = self.session.wire.table
        stats = self.store.stats
        config = self.store.config
        session = self.session
        outbox = self._outbox
        self._feed(parser, first)
        while True:
            max_pending = config.max_pending_reply_bytes
            if outbox.unsent_bytes >= max_pending:
                # The client is not reading: run nothing more until its
                # output drains, but keep reading its requests.
                await self._wait_for_room(parser, max_pending)
            session.query_buffer_bytes = parser.buffered_bytes
            try:
                requests = parser.next_commands(config.max_batch_commands)
            except protocol_error as error:
                stats.record_error()
                log.debug("client %d: protocol error: %s", self.id, error)
                self._write(framing.protocol_error_reply(error))
                if framing.protocol_error_closes(error):
                    return
                continue
            if requests:
                job = await self._dispatch(table, requests, self._received_at)
                protocol = job.protocol
                # HELLO/RESET in the batch: from its own reply on, the new protocol.
                switches = dict(job.protocol_changes) if job.protocol_changes else None
                out = bytearray()
                for index, reply in enumerate(job.replies):
                    if switches is not None and index in switches:
                        protocol = switches[index]
                    if is_streamed(reply):
                        # Arrays and big values: encoded and sent piece by
                        # piece, so the output limit holds inside the reply.
                        pieces = encode_pieces(out, reply, protocol, min(max_pending, STREAM_PIECE_BYTES))
                        while True:
                            try:
                                piece = next(pieces)
                            except StopIteration as done:
                                out = done.value
                                break
                            self._write(piece)
                            if outbox.unsent_bytes >= max_pending:
                                await self._wait_for_room(parser, max_pending)
                            else:
                                # Encoding a big reply (a KEYS of 1M keys is
                                # about 0.5 s) must not stall every other
                                # client: let them run between pieces.
                                await trio.lowlevel.cancel_shielded_checkpoint()
                    else:
                        encode(out, reply, protocol)
                    if len(out) >= max_pending:
                        self._write(out)
                        out = bytearray()
                        if outbox.unsent_bytes >= max_pending:
                            await self._wait_for_room(parser, max_pending)
                if out:
                    self._write(out)
                # Let the other tasks run before this one reads again: by then
                # its client has usually sent its next request, so the read
                # takes it at once instead of registering with epoll and
                # sleeping (measured: 15% more CPU per request with 50
                # unpipelined clients without this yield).
                await trio.lowlevel.cancel_shielded_checkpoint()
                self._just_yielded = True
                session.query_buffer_bytes = parser.buffered_bytes
                if session.closing:
                    return
                continue
            if self._eof:
                return
            data = await self._receive()
            if data is None:
                return
            if not data:
                self._eof = True
            self._feed(parser, data)

