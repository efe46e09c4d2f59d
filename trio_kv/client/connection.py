"""One RESP connection on a Trio stream (TCP, or TLS through ``trio.SSLStream``).

Rules this module keeps:

* No timeouts of its own: the caller's cancel scope decides
  (``with trio.fail_after(1): await conn.execute(...)``).
* A connection whose send or receive was interrupted (cancelled, or any
  other exception) mid-way is in an unknown state: it is marked ``broken``
  and closed at once, and the pool never hands it out again.
  ``Cancelled`` is re-raised, never swallowed.
* Requests are packed and replies read by the pure parts in ``wire``
  (the project's packer, hiredis' reader); this module only moves bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Unpack

import trio

from .options import ConnectKeywords, ConnectOptions
from .wire.errors import ClientConnectionError, ReplyError
from .wire.packing import Arg, handshake_commands, pack_command, pack_commands
from .wire.replies import NEED_DATA, ReplyReader

RECEIVE_BYTES = 64 * 1024


class Connection:
    def __init__(self, stream: trio.abc.Stream, *, protocol: int = 2, decode: bool = False) -> None:
        self._stream = stream
        self._reader = ReplyReader(decode=decode)
        # The RESP version the server agreed to (HELLO 3 succeeded).
        self.protocol = protocol
        # True once a send or receive was interrupted, or the stream failed:
        # never reused. ``closed``: aclose() ran.
        self.broken = False
        self.closed = False
        # Set while a request is in flight: a second task using the same
        # connection meanwhile is a bug (replies would interleave) and gets
        # trio.BusyResourceError at once. A flag, not a lock: a lock's
        # checkpoint costs a scheduler pass per command, and the pool
        # already gives each connection to one task at a time.
        self._busy = False

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def usable(self) -> bool:
        return not (self.broken or self.closed)

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            await trio.aclose_forcefully(self._stream)

    async def execute(self, *args: Arg) -> object:
        """Send one command and return its reply; an error reply raises ``ReplyError``."""
        (reply,) = await self.execute_many([args])
        if isinstance(reply, ReplyError):
            raise reply
        return reply

    async def execute_many(self, commands: Sequence[Sequence[Arg]]) -> list[object]:
        """Send every command in one write, then read one reply each; error
        replies are returned in place as ``ReplyError`` values, not raised."""
        if not commands:
            return []
        data = pack_commands(commands) if len(commands) > 1 else pack_command(commands[0])
        return await self._round_trip(data, len(commands))

    def _claim(self) -> None:
        if self._busy:
            raise trio.BusyResourceError("another task is using this connection")
        if not self.usable:
            raise ClientConnectionError("connection is closed")
        self._busy = True

    async def _round_trip(self, data: bytes, count: int) -> list[object]:
        self._claim()
        try:
            await self._stream.send_all(data)
            return await self._read_replies(count)
        except BaseException:
            # Cancelled or failed between sending and the last reply: the
            # stream's state is unknown (a reply may still be on its way),
            # so this connection is closed now and the error goes on.
            self.broken = True
            await self.aclose()
            raise
        finally:
            self._busy = False

    async def _read_replies(self, count: int) -> list[object]:
        replies: list[object] = []
        reader = self._reader
        while True:
            while len(replies) < count:
                reply = reader.next_reply()
                if reply is NEED_DATA:
                    break
                replies.append(reply)
            if len(replies) == count:
                return replies
            await self._receive_into(reader)

    async def _receive_into(self, reader: ReplyReader) -> None:
        try:
            data = await self._stream.receive_some(RECEIVE_BYTES)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as error:
            raise ClientConnectionError(f"connection lost: {error}") from error
        if not data:
            raise ClientConnectionError("server closed the connection")
        reader.feed(data)

    async def next_push(self) -> list[object]:
        """The next RESP3 push message (an invalidation, a pub/sub message),
        waiting for one if none is kept. A reply that is not a push while
        waiting is a protocol violation for this use (pub/sub connections
        send only pushes): it raises ``ClientConnectionError``."""
        push = self._reader.take_push()
        if push is not None:
            await trio.lowlevel.checkpoint()
            return push
        self._claim()
        try:
            while True:
                reply = self._reader.next_reply()
                if reply is not NEED_DATA:
                    raise ClientConnectionError(f"a reply nobody asked for while waiting for a push: {reply!r}")
                push = self._reader.take_push()
                if push is not None:
                    return push
                await self._receive_into(self._reader)
        except BaseException:
            # As in _round_trip: an interrupted read leaves the stream's state unknown.
            self.broken = True
            await self.aclose()
            raise
        finally:
            self._busy = False

    def take_pushes(self) -> list[list[object]]:
        """Push messages that arrived with replies so far, oldest first."""
        return self._reader.take_pushes()


async def open_connection(host: str, port: int, **options: Unpack[ConnectKeywords]) -> Connection:
    """Connect, (TLS handshake), then HELLO/AUTH/SETNAME (``options``:
    client/options.py). Raises ``ClientConnectionError`` when the TCP or
    TLS connection fails, and the server's ``ReplyError`` when it refuses
    HELLO or AUTH (the connection is closed then)."""
    return await connect(ConnectOptions(host, port, **options))


async def connect(options: ConnectOptions) -> Connection:
    """``open_connection`` with its options made already (the pool's)."""
    host, port, protocol, ssl_context = options.host, options.port, options.protocol, options.ssl_context
    handshake = handshake_commands(
        protocol=protocol, username=options.username, password=options.password, client_name=options.client_name
    )
    try:
        stream: trio.abc.Stream = await trio.open_tcp_stream(host, port)
    except OSError as error:
        raise ClientConnectionError(f"cannot connect to {host}:{port}: {error}") from error
    connection: Connection | None = None
    try:
        if ssl_context is not None:
            tls = trio.SSLStream(stream, ssl_context, server_hostname=options.server_hostname or host)
            stream = tls
            try:
                await tls.do_handshake()
            except trio.BrokenResourceError as error:
                raise ClientConnectionError(f"TLS handshake with {host}:{port} failed: {error.__cause__ or error}") from error
        connection = Connection(stream, protocol=protocol, decode=options.decode)
        for reply in await connection.execute_many(handshake):
            if isinstance(reply, ReplyError):
                raise reply
        return connection
    except BaseException:
        if connection is not None:
            await connection.aclose()
        else:
            await trio.aclose_forcefully(stream)
        raise
