"""``Client``: a pool of ``Connection``s with a limit, and pipelines.

Rules this module keeps:

* At most ``max_connections`` connections exist at once (a
  ``trio.Semaphore``); a caller past the limit waits, in its own cancel scope.
* A connection goes back to the idle list only if it is ``usable``: one
  whose request was cancelled or failed mid-way was closed by
  ``Connection`` and is dropped (its slot is freed).
* ``ReplyError`` (the server answered with an error) leaves the connection
  fine: it goes back to the pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Unpack

import trio

from .connection import Connection, connect
from .options import ConnectKeywords, ConnectOptions
from .wire.errors import ReplyError
from .wire.packing import Arg

DEFAULT_MAX_CONNECTIONS = 16


class Client:
    """A Trio RESP client for trio_kv and Redis. ``async with Client(...)``
    closes every idle connection on the way out; ``aclose()`` does too."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 6379,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        **options: Unpack[ConnectKeywords],
    ) -> None:
        """``options``: client/options.py (protocol, username, password,
        client_name, ssl_context, server_hostname, decode)."""
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        # What every connection of the pool is opened with.
        self.options = ConnectOptions(host, port, **options)
        self.max_connections = max_connections
        self._slots = trio.Semaphore(max_connections)
        self._idle: list[Connection] = []
        self._opened = 0
        self._closed = False

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.aclose()

    def statistics(self) -> dict[str, int]:
        """Connections open now (idle and leased), idle, and opened in all."""
        leased = self.max_connections - self._slots.value
        return {"idle": len(self._idle), "leased": leased, "open": len(self._idle) + leased, "opened": self._opened}

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """Lease one connection (waiting while ``max_connections`` are
        leased); it returns to the pool afterwards if still usable. For
        commands that need one connection: WATCH/MULTI/EXEC, pushes."""
        if self._closed:
            raise RuntimeError("the client is closed")
        if not self._take_slot_nowait():
            await self._slots.acquire()
        try:
            connection = self._idle.pop() if self._idle else None
            if connection is None:
                connection = await connect(self.options)
                self._opened += 1
            try:
                yield connection
            finally:
                if connection.usable and not self._closed:
                    self._idle.append(connection)
                else:
                    await connection.aclose()
        finally:
            self._slots.release()

    async def execute(self, *args: Arg) -> object:
        """One command's reply; an error reply raises ``ReplyError``."""
        async with self.connection() as connection:
            return await connection.execute(*args)

    def _take_slot_nowait(self) -> bool:
        # A free slot is taken without a checkpoint (the command's send
        # checkpoints anyway): a scheduler pass per command is most of an
        # unpipelined command's cost on the client's side.
        try:
            self._slots.acquire_nowait()
        except trio.WouldBlock:
            return False
        return True

    async def execute_many(self, commands: Sequence[Sequence[Arg]]) -> list[object]:
        async with self.connection() as connection:
            return await connection.execute_many(commands)

    def pipeline(self) -> Pipeline:
        return Pipeline(self)


class Pipeline:
    """Commands queued with ``add(*args)`` and sent in one write by
    ``execute()``, on one connection; replies in order. Not a transaction:
    queue MULTI ... EXEC yourself for one."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._commands: list[tuple[Arg, ...]] = []

    def add(self, *args: Arg) -> Pipeline:
        self._commands.append(args)
        return self

    def __len__(self) -> int:
        return len(self._commands)

    async def execute(self, *, raise_on_error: bool = True) -> list[object]:
        """Every reply in order. With ``raise_on_error`` (the default) the
        first error reply is raised after all replies were read (the
        connection stays usable); otherwise errors are ``ReplyError`` items."""
        commands, self._commands = self._commands, []
        replies = await self._client.execute_many(commands)
        if raise_on_error:
            for reply in replies:
                if isinstance(reply, ReplyError):
                    raise reply
        return replies
