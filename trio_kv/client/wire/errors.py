"""The client's exceptions, shared by the Trio and the blocking flavors. No IO.

``ReplyError`` is an error reply (``-ERR ...``): the server answered, the
connection is fine and stays in the pool. ``ClientConnectionError`` and
``ProtocolError`` mean the connection is unusable: it is closed, never reused.
"""

from __future__ import annotations


class ClientError(Exception):
    """Base of every exception the client raises on purpose."""


class ReplyError(ClientError):
    """An error reply. ``message`` (and ``str()``) is its text exactly as the
    server sent it, without the leading ``-``: ``"ERR syntax error"``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def code(self) -> str:
        """The first word (``ERR``, ``WRONGTYPE``, ``NOAUTH``, ``MOVED``...)."""
        return self.message.split(" ", 1)[0]


class ClientConnectionError(ClientError):
    """The connection failed or was closed by the server (EOF mid-conversation)."""


class ProtocolError(ClientConnectionError):
    """The server sent bytes that are not RESP; the connection is dropped."""
