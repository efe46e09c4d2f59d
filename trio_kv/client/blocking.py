"""``BlockingClient``: the same client for code without Trio (and the CLI),
on a plain socket (``ssl.SSLContext.wrap_socket`` for TLS), one connection.

The same pure parts as the Trio client (``wire``: the project's packer,
hiredis' reader) and the same options (``options.ConnectOptions``). Timeouts are the socket's (``timeout`` seconds, None waits
forever), as blocking code expects; a send or receive that failed or timed
out mid-way closes the connection (its state is unknown) and the next
command raises ``ClientConnectionError``. ``typed=True`` reads replies
with ``wire.typed`` instead (the CLI prints them as redis-cli does).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Sequence
from typing import Protocol, Unpack

from .options import ConnectKeywords, ConnectOptions
from .wire.errors import ClientConnectionError, ReplyError
from .wire.packing import Arg, handshake_commands, pack_command, pack_commands
from .wire.replies import NEED_DATA, ReplyReader
from .wire.typed import ErrorReply, TypedReplyReader

RECEIVE_BYTES = 64 * 1024


class _Reader(Protocol):
    def feed(self, data: bytes | bytearray) -> None: ...
    def next_reply(self) -> object: ...


class BlockingClient:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 6379,
        *,
        timeout: float | None = None,
        typed: bool = False,
        **options: Unpack[ConnectKeywords],
    ) -> None:
        """Connects, then HELLO/AUTH/SETNAME (``options``: client/options.py,
        as ``Client``'s); raises ``ClientConnectionError`` or the server's
        ``ReplyError`` (and closes) when that fails."""
        self.options = connect = ConnectOptions(host, port, **options)
        self.host, self.port, self.protocol = host, port, connect.protocol
        ssl_context = connect.ssl_context
        self._typed = typed
        self._reader: _Reader = TypedReplyReader() if typed else ReplyReader(decode=connect.decode)
        self.closed = False
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as error:
            raise ClientConnectionError(f"cannot connect to {host}:{port}: {error}") from error
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if ssl_context is not None:
                sock = ssl_context.wrap_socket(sock, server_hostname=connect.server_hostname or host)
        except (OSError, ssl.SSLError) as error:
            sock.close()
            raise ClientConnectionError(f"TLS handshake with {host}:{port} failed: {error}") from error
        self._sock = sock
        try:
            handshake = handshake_commands(
                protocol=connect.protocol, username=connect.username, password=connect.password,
                client_name=connect.client_name,
            )
            for reply in self.execute_many(handshake):
                refused = self._error_of(reply)
                if refused is not None:
                    raise refused
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> BlockingClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._sock.close()

    def _error_of(self, reply: object) -> ReplyError | None:
        if isinstance(reply, ReplyError):
            return reply
        if isinstance(reply, ErrorReply):
            return ReplyError(reply.text.decode("utf-8", "replace"))
        return None

    def execute(self, *args: Arg) -> object:
        """One command's reply; an error reply raises ``ReplyError`` (in
        typed mode too: the CLI uses ``execute_many`` to print errors)."""
        (reply,) = self.execute_many([args])
        error = self._error_of(reply)
        if error is not None:
            raise error
        return reply

    def execute_many(self, commands: Sequence[Sequence[Arg]]) -> list[object]:
        """Every command in one write, then one reply each, error replies in place."""
        if not commands:
            return []
        data = pack_commands(commands) if len(commands) > 1 else pack_command(commands[0])
        self.send(data)
        return [self.read_reply() for _ in commands]

    def send_command(self, args: Sequence[Arg]) -> None:
        """One command out, its reply not read (``read_reply`` reads it)."""
        self.send(pack_command(args))

    def send(self, data: bytes) -> None:
        """Raw bytes out (already packed commands)."""
        if self.closed:
            raise ClientConnectionError("connection is closed")
        try:
            self._sock.sendall(data)
        except OSError as error:
            self.close()
            raise ClientConnectionError(f"connection lost: {error}") from error

    def read_reply(self) -> object:
        """The next reply (in typed mode a RESP3 push is a reply too)."""
        if self.closed:
            raise ClientConnectionError("connection is closed")
        reader = self._reader
        try:
            while True:
                reply = reader.next_reply()
                if reply is not NEED_DATA:
                    return reply
                data = self._sock.recv(RECEIVE_BYTES)
                if not data:
                    raise ClientConnectionError("server closed the connection")
                reader.feed(data)
        except OSError as error:
            self.close()
            raise ClientConnectionError(f"connection lost: {error}") from error
        except BaseException:
            self.close()
            raise

    def pipeline(self) -> BlockingPipeline:
        return BlockingPipeline(self)


class BlockingPipeline:
    """As ``pool.Pipeline``: ``add(*args)``, then ``execute()`` sends them in one write."""

    def __init__(self, client: BlockingClient) -> None:
        self._client = client
        self._commands: list[tuple[Arg, ...]] = []

    def add(self, *args: Arg) -> BlockingPipeline:
        self._commands.append(args)
        return self

    def __len__(self) -> int:
        return len(self._commands)

    def execute(self, *, raise_on_error: bool = True) -> list[object]:
        commands, self._commands = self._commands, []
        replies = self._client.execute_many(commands)
        if raise_on_error:
            for reply in replies:
                error = self._client._error_of(reply)
                if error is not None:
                    raise error
        return replies
