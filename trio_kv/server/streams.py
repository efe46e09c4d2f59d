"""What the server needs of a client stream, whether it is plain TCP
(``trio.SocketStream``) or TLS (``trio.SSLStream`` over one).

The connection code reaches under the stream for the OS socket in a few
places (the peer's address, shutting the read side down at shutdown, the
one-``send`` fast path); for a TLS stream that socket is the transport's,
and bytes must still go through the ``SSLStream`` to be encrypted.
"""

from __future__ import annotations

import socket

import trio


def socket_of(stream: trio.abc.Stream) -> trio.socket.SocketType:
    """The OS socket under ``stream``: a SocketStream's own, or the one
    under an SSLStream's transport."""
    while isinstance(stream, trio.SSLStream):
        stream = stream.transport_stream
    return stream.socket  # type: ignore[attr-defined]


async def linger(stream: trio.abc.Stream, *, seconds: float, max_bytes: int) -> None:
    """Half-close, then discard what the client still sends (at most
    ``max_bytes`` for ``seconds``), so closing does not reset an answer it
    has not read yet: closing a socket with unread input makes the kernel
    send RST. Done on the OS socket, so it works under TLS too (the stream
    is dropped after)."""
    sock = socket_of(stream)
    with trio.move_on_after(seconds):
        try:
            sock.shutdown(socket.SHUT_WR)
            discarded = 0
            while discarded < max_bytes:
                data = await sock.recv(64 * 1024)
                if not data:
                    break
                discarded += len(data)
        except OSError:
            pass
