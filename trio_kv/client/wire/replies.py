"""RESP bytes to Python values with hiredis' ``Reader`` (C). No IO.

h11's shape: ``feed(bytes)``, then ``next_reply()`` until it returns
``NEED_DATA``. Values are hiredis': simple and bulk strings ``bytes`` (or
``str`` with ``decode=True``), integers ``int``, nil ``None``, arrays and
sets ``list``, maps ``dict``, doubles ``float``, booleans ``bool``, verbatim
strings their text without the format, big numbers ``bytes``; an error
reply is a ``ReplyError`` *value* (returned, not raised, so a pipeline or
an EXEC can hold one among other replies; the caller raises it).

RESP3 push messages (``>``: invalidations, pub/sub) arrive between replies;
``next_reply`` never returns one: it keeps them, at most ``max_pushes``
(the oldest are dropped past that, counted in ``dropped_pushes``), for
``take_pushes``.
"""

from __future__ import annotations

from collections import deque
from typing import Final

import hiredis

from .errors import ProtocolError, ReplyError


class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = _NeedData()
DEFAULT_MAX_PUSHES = 10_000


class ReplyReader:
    def __init__(self, *, decode: bool = False, max_pushes: int = DEFAULT_MAX_PUSHES) -> None:
        self._reader = hiredis.Reader(
            protocolError=ProtocolError,
            replyError=ReplyError,
            notEnoughData=NEED_DATA,
            encoding="utf-8" if decode else None,
        )
        self._pushes: deque[list[object]] = deque(maxlen=max_pushes)
        self.dropped_pushes = 0

    def feed(self, data: bytes | bytearray) -> None:
        self._reader.feed(data)  # type: ignore[arg-type]  # hiredis reads any buffer

    def next_reply(self) -> object:
        """The next complete reply (pushes set aside), or ``NEED_DATA``.
        Raises ``ProtocolError`` on bytes that are not RESP."""
        while True:
            reply = self._reader.gets()
            if type(reply) is not hiredis.PushNotification:
                return reply
            if len(self._pushes) == self._pushes.maxlen:
                self.dropped_pushes += 1
            self._pushes.append(list(reply))

    def has_pushes(self) -> bool:
        return bool(self._pushes)

    def take_pushes(self) -> list[list[object]]:
        """Every push message kept so far, oldest first (and forget them)."""
        pushes = list(self._pushes)
        self._pushes.clear()
        return pushes

    def take_push(self) -> list[object] | None:
        return self._pushes.popleft() if self._pushes else None
