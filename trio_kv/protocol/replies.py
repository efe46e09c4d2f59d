"""Reply values: what a command handler returns, before any protocol encodes it.

Handlers never write bytes to a connection; they return one of these values
and the connection's encoder (``protocol.resp`` or ``protocol.text``) turns it
into bytes. Plain Python types are used where the meaning is unambiguous:

* ``bytes``       -> a bulk string (RESP ``$``)
* ``int``         -> an integer (RESP ``:``); ``bool`` is not an int here, see Bool
* ``None``        -> a null (RESP2 ``$-1``, RESP3 ``_``)
* ``list``        -> an array (RESP ``*``) of reply values

and small classes for the rest. The line protocol's handlers return
``SimpleString``, ``Error``, ``NO_REPLY`` and its own line shapes
(``protocol.text``: ``Labelled``, ``Listing``, ``Fields``, ``Table``), never
bytes; ``Error`` is shared so that every protocol counts errors the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SimpleString:
    """A status reply such as ``+OK``; ``text`` must not contain CR or LF."""

    text: str


@dataclass(frozen=True, slots=True)
class Error:
    """An error reply. For RESP, ``message`` starts with the error code
    (``"ERR syntax error"``, ``"WRONGTYPE ..."``); for the text protocol it is
    the reason after ``ERROR `` (``"unknown command"``)."""

    message: str


@dataclass(frozen=True, slots=True)
class NullArray:
    """RESP2's ``*-1`` (for example EXEC aborted by WATCH); RESP3 ``_``."""


@dataclass(frozen=True, slots=True)
class Map:
    """RESP3 ``%`` map; RESP2 sends it as a flat array of key, value, ..."""

    pairs: Sequence[tuple[object, object]]


@dataclass(frozen=True, slots=True)
class Set:
    """RESP3 ``~`` set; RESP2 sends it as an array."""

    items: Sequence[object]


@dataclass(frozen=True, slots=True)
class Double:
    """RESP3 ``,`` double; RESP2 sends it as a bulk string."""

    value: float


@dataclass(frozen=True, slots=True)
class Bool:
    """RESP3 ``#t``/``#f``; RESP2 sends it as the integer 1 or 0."""

    value: bool


@dataclass(frozen=True, slots=True)
class Verbatim:
    """RESP3 ``=`` verbatim string with a three-letter format (``txt``);
    RESP2 sends it as a bulk string."""

    format: str
    data: bytes


@dataclass(frozen=True, slots=True)
class NoReply:
    """Nothing is sent for this command (SHUTDOWN: Redis closes the
    connection without a reply). Only valid as a command's whole reply,
    never inside an array or a map."""


NO_REPLY = NoReply()
OK = SimpleString("OK")
PONG = SimpleString("PONG")
QUEUED = SimpleString("QUEUED")
