"""Sending replies without ever making the reader wait.

``send_all`` (HTTP): one ``socket.send`` for the usual case, whatever the
kernel did not take through ``SocketStream.send_all``; a TLS stream always
goes through ``SSLStream.send_all``, which encrypts. Calling the trio
socket's ``send`` directly skips ``send_all``'s bookkeeping (about 2 us of
event-loop time per reply, measured). A peer that left is
``trio.BrokenResourceError``.

``Outbox`` (line/RESP connections): the connection's unsent reply bytes, in
order. ``write`` never blocks: it hands the bytes to the kernel with one
non-blocking ``os.write`` when nothing is queued (the usual case: no task,
no event-loop round trip), and queues whatever the kernel did not take.
``send_queued`` is the body of the connection's writer task: it waits until
the socket is writable and sends the queue, oldest first, with ``os.writev``.
So the connection task that calls ``write`` is free to keep reading while
its client does not read; it decides, from ``unsent_bytes``, when to stop
executing. Pieces given to ``write`` must not be modified afterwards (they
are queued by reference: a big value is never copied).

``TlsOutbox`` is the same contract over a ``trio.SSLStream``: bytes must be
encrypted, so there is no kernel fast path; ``write`` always queues, and the
writer task sends the queue with ``SSLStream.send_all`` (which may run
beside the connection's ``receive_some``, as trio allows for SSLStream).
"""

from __future__ import annotations

import collections
import itertools
import os
from collections.abc import Callable

import trio

# os.writev takes at most IOV_MAX (1024 on Linux) buffers per call.
_WRITEV_MAX_BUFFERS = 256

Piece = bytes | bytearray | memoryview


async def send_all(stream: trio.abc.Stream, data: bytes | bytearray) -> None:
    if type(stream) is not trio.SocketStream:
        await stream.send_all(data)
        return
    try:
        sent = await stream.socket.send(data)
    except OSError as error:
        raise trio.BrokenResourceError(error) from error
    if sent < len(data):
        await stream.send_all(memoryview(data)[sent:])


class Outbox:
    """A connection's reply bytes that the kernel has not taken yet."""

    __slots__ = ("_socket", "_fd", "_queue", "unsent_bytes", "error")

    def __init__(self, stream: trio.SocketStream) -> None:
        self._socket = stream.socket
        self._fd = stream.socket.fileno()
        # Pieces not yet sent, oldest first; the first may be a memoryview of
        # what is left of a partly sent piece.
        self._queue: collections.deque[Piece] = collections.deque()
        # Their total size: the client's output buffer, which the connection
        # keeps near --max-pending-reply-bytes.
        self.unsent_bytes = 0
        # The send error that broke the connection (then nothing more is sent).
        self.error: trio.BrokenResourceError | None = None

    def write(self, data: Piece) -> bool:
        """Send ``data`` after what is queued, without blocking; True when
        something is now queued (the caller makes sure a writer task runs).
        Raises ``trio.BrokenResourceError`` once a send has failed."""
        if self.error is not None:
            raise self.error
        if not data:
            return bool(self._queue)
        if self._queue:
            self._queue.append(data)
            self.unsent_bytes += len(data)
            return True
        try:
            sent = os.write(self._fd, data)
        except BlockingIOError:
            sent = 0
        except OSError as error:
            self.error = trio.BrokenResourceError(error)
            raise self.error from error
        if sent == len(data):
            return False
        self._queue.append(memoryview(data)[sent:] if sent else data)
        self.unsent_bytes += len(data) - sent
        return True

    async def send_queued(self, sent_some: Callable[[], None]) -> None:
        """Send the queue until it is empty (the writer task's body), calling
        ``sent_some()`` after each send that took bytes. A failed send
        records ``error`` (and calls ``sent_some``) instead of raising:
        the connection task sees it at its next ``write``."""
        queue = self._queue
        fd = self._fd
        while queue:
            await trio.lowlevel.wait_writable(self._socket)
            try:
                if len(queue) == 1:
                    sent = os.write(fd, queue[0])
                else:
                    sent = os.writev(fd, list(itertools.islice(queue, _WRITEV_MAX_BUFFERS)))
            except BlockingIOError:
                continue
            except OSError as error:
                self.error = trio.BrokenResourceError(error)
                queue.clear()
                self.unsent_bytes = 0
                sent_some()
                return
            self.unsent_bytes -= sent
            while sent:
                first = queue[0]
                if sent >= len(first):
                    sent -= len(first)
                    queue.popleft()
                else:
                    queue[0] = memoryview(first)[sent:]
                    sent = 0
            sent_some()


class TlsOutbox:
    """``Outbox`` for a TLS stream: everything goes through the writer task."""

    __slots__ = ("_stream", "_queue", "unsent_bytes", "error")

    def __init__(self, stream: trio.abc.Stream) -> None:
        self._stream = stream
        self._queue: collections.deque[Piece] = collections.deque()
        self.unsent_bytes = 0
        self.error: trio.BrokenResourceError | None = None

    def write(self, data: Piece) -> bool:
        """Queue ``data``; True when something is queued (always, unless the
        queue is empty and ``data`` is too). Raises once a send has failed."""
        if self.error is not None:
            raise self.error
        if data:
            self._queue.append(data)
            self.unsent_bytes += len(data)
        return bool(self._queue)

    async def send_queued(self, sent_some: Callable[[], None]) -> None:
        """As ``Outbox.send_queued``: the writer task's body."""
        queue = self._queue
        while queue:
            piece = queue[0]
            try:
                await self._stream.send_all(piece)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as error:
                self.error = trio.BrokenResourceError(error)
                queue.clear()
                self.unsent_bytes = 0
                sent_some()
                return
            queue.popleft()
            self.unsent_bytes -= len(piece)
            sent_some()


def outbox_for(stream: trio.abc.Stream) -> Outbox | TlsOutbox:
    """The outbox that fits ``stream``: the kernel fast path for plain TCP."""
    if type(stream) is trio.SocketStream:
        return Outbox(stream)
    return TlsOutbox(stream)
