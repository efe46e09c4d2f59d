"""A tiny raw-bytes client for integration tests (real sockets, no library)."""

from __future__ import annotations

import trio


class LineClient:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    @classmethod
    async def connect(cls, address: tuple[str, int]) -> "LineClient":
        return cls(await trio.open_tcp_stream(*address))

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def _fill(self) -> bool:
        data = await self.stream.receive_some(65536)
        self.buffer += data
        return bool(data)

    async def read_line(self) -> bytes:
        """One reply line without its newline; raises EOFError at EOF."""
        while True:
            end = self.buffer.find(b"\n")
            if end >= 0:
                line = bytes(self.buffer[:end])
                del self.buffer[: end + 1]
                return line
            if not await self._fill():
                raise EOFError(bytes(self.buffer))

    async def read_lines(self, count: int) -> list[bytes]:
        return [await self.read_line() for _ in range(count)]

    async def read_exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            if not await self._fill():
                raise EOFError(bytes(self.buffer))
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        return data

    async def read_until_eof(self) -> bytes:
        try:
            while await self._fill():
                pass
        except trio.BrokenResourceError:
            pass
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    async def command(self, line: bytes) -> bytes:
        await self.send(line + b"\n")
        return await self.read_line()

    async def aclose(self) -> None:
        await self.stream.aclose()
