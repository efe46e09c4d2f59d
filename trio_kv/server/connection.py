"""One task per connection: read, parse, hand requests to the workers, reply.

The connection task does all of its socket's IO; workers never see a socket.
The loop is strictly read -> dispatch -> send: a connection does not read
more requests while any reply of its previous batch is unsent, so what a
client can make the server hold is one receive buffer (``RECEIVE_BYTES``),
the parser's buffer (bounded by the protocol's limits), one batch of reply
values (at most ``--max-batch-commands``) and their encoded bytes, which are
sent whenever they pass ``--max-pending-reply-bytes`` (default 1 MiB).

Protocol choice (decided once, from the first byte): ``*`` means RESP, any
other byte means the line protocol. On the ``--redis-port`` listener every
connection speaks RESP, inline commands included.

Shutdown: ``Connection.stop_reading()`` shuts the socket's read side down,
so a pending receive returns EOF and no later read happens; nothing is
cancelled (a dispatch or a send under way is never interrupted). The
requests already read (including a pipeline sitting in the parser's buffer)
are still executed and answered, then the connection closes. A failed or
cancelled send leaves the stream in an unknown state, so the connection is
closed right after it.
"""

from __future__ import annotations

import logging
import socket
import time

import trio

from ..commands.redis import REDIS_COMMANDS
from ..commands.text import TEXT_COMMANDS
from ..protocol import resp, resp_encoder, text
from ..protocol.replies import Error
from ..store.engine import Job, Store
from .client_session import new_session
from .dispatch import Dispatcher
from .sending import send_all
from .streams import socket_of

log = logging.getLogger(__name__)

RECEIVE_BYTES = 64 * 1024


class Connection:
    def __init__(
        self, stream: trio.SocketStream, store: Store, dispatcher: Dispatcher, *, resp_only: bool
    ) -> None:
        self.stream = stream
        self.store = store
        self.dispatcher = dispatcher
        self.resp_only = resp_only
        self.session = new_session(stream, store, resp=resp_only)
        self.id = self.session.id
        self._stopping = False
        self._eof = False

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
        """CLIENT KILL: close as soon as the current batch is answered."""
        self.session.closing = True
        self.stop_reading()

    async def _receive(self) -> bytes | None:
        """Next chunk from the client; b"" at EOF; None when shutdown stopped the read."""
        if self._stopping:
            return None
        try:
            return await self.stream.receive_some(RECEIVE_BYTES)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return b""

    async def _send(self, data: bytes | bytearray) -> None:
        await send_all(self.stream, data)

    async def run(self) -> None:
        first = await self._receive()
        if not first:
            return
        if self.resp_only or first[:1] == b"*":
            self.session.resp = True
            await self._serve_resp(first)
        else:
            await self._serve_text(first)

    async def _dispatch(self, table, requests: list[list[bytes]], received_at: float) -> Job:
        job = Job(self.session, table, requests, received_at, protocol=self.session.protocol)
        await self.dispatcher.submit(job)
        return job

    async def _serve_text(self, first: bytes) -> None:
        parser = text.TextParser(max_line_bytes=self.store.config.max_line_bytes)
        await self._serve(
            first,
            parser,
            text.TextProtocolError,
            TEXT_COMMANDS,
            encode=lambda out, reply, protocol: out.extend(text.encode_text_reply(reply)),
            encode_protocol_error=lambda error: text.encode_error(error.reason),
            closes=lambda error: error.close,
        )

    async def _serve_resp(self, first: bytes) -> None:
        config = self.store.config
        parser = resp.RespParser(
            inline_allowed=self.resp_only,
            max_bulk_bytes=config.proto_max_bulk_len_bytes,
            max_query_buffer_bytes=config.client_query_buffer_limit_bytes,
            auth_required=self.session.auth_required,
        )
        await self._serve(
            first,
            parser,
            resp.RespProtocolError,
            REDIS_COMMANDS,
            encode=resp_encoder.encode_reply_into,
            encode_protocol_error=lambda error: error.reply_bytes(),
            closes=lambda error: True,
        )

    async def _serve(self, first, parser, protocol_error, table, *, encode, encode_protocol_error, closes) -> None:
        stats = self.store.stats
        max_batch = self.store.config.max_batch_commands
        max_pending = self.store.config.max_pending_reply_bytes
        session = self.session
        received_at = time.perf_counter()
        parser.receive_data(first)
        while True:
            try:
                requests = parser.next_commands(max_batch)
            except protocol_error as error:
                stats.record_error()
                log.debug("client %d: protocol error: %s", self.id, error)
                await self._send(encode_protocol_error(error))
                if closes(error):
                    return
                continue
            if requests:
                job = await self._dispatch(table, requests, received_at)
                protocol = job.protocol
                # HELLO/RESET in the batch: from its own reply on, the new protocol.
                switches = dict(job.protocol_changes) if job.protocol_changes else None
                out = bytearray()
                for index, reply in enumerate(job.replies):
                    if switches is not None and index in switches:
                        protocol = switches[index]
                    encode(out, reply, protocol)
                    if len(out) >= max_pending:
                        # Big replies go out as they are encoded, so the
                        # encoded backlog stays near --max-pending-reply-bytes.
                        await self._send(out)
                        out = bytearray()
                if out:
                    await self._send(out)
                if session.closing:
                    return
                continue
            if self._eof:
                return
            data = await self._receive()
            if data is None:
                return
            received_at = time.perf_counter()
            if not data:
                self._eof = True
            parser.receive_data(data)


def reject_line(resp_only: bool) -> bytes:
    """What a client over ``--max-clients`` reads before it is closed."""
    if resp_only:
        return b"-ERR max number of clients reached\r\n"
    return text.encode_text_reply(Error("max clients reached"))
