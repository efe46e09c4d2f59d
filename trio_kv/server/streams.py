"""What the server needs of a client stream, whether it is plain TCP
(``trio.SocketStream``) or TLS (``trio.SSLStream`` over one).

The connection code reaches under the stream for the OS socket in a few
places (the peer's address, shutting the read side down at shutdown, the
one-``send`` fast path); for a TLS stream that socket is the transport's,
and bytes must still go through the ``SSLStream`` to be encrypted.
"""

from __future__ import annotations

import trio


def socket_of(stream: trio.abc.Stream) -> trio.socket.SocketType:
    """The OS socket under ``stream``: a SocketStream's own, or the one
    under an SSLStream's transport."""
    while isinstance(stream, trio.SSLStream):
        stream = stream.transport_stream
    return stream.socket  # type: ignore[attr-defined]
