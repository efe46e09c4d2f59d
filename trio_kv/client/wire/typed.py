"""RESP replies with their types kept, for the CLI. No IO.

redis-cli's output depends on what hiredis' Python reader throws away: a
status (``+OK``, printed bare) from a bulk string (``"OK"``, quoted), a map
from an array, a set, a double's exact text (``(double) 1.5``), a
verbatim string, a big number, a RESP2 null array from a null bulk. So the
CLI reads its replies with this reader instead of ``replies.ReplyReader``;
the client's ``execute`` path never does (it stays on hiredis).

Shape as ``replies.ReplyReader``: ``feed(bytes)``, ``next_reply()`` until
``NEED_DATA``. The parsing is the project's one typed reply parser
(``protocol/resp_reply.py``, the cluster's peer links' too) with a
vocabulary of this module's types: its bounds (bulk lengths, aggregate
sizes, nesting) keep a bad server from making the CLI allocate without
limit; its ``ReplyProtocolError`` is raised here as the client's
``ProtocolError``.

Values: ``bytes`` (bulk string), ``int``, ``None`` (any null), ``Status``,
``ErrorReply``, ``Double`` (its text), ``Bool``, ``Verbatim``, ``BigNumber``
(its text), ``Aggregate`` (``kind`` one of array, set, map, push, attribute;
a map's ``items`` are key, value, key, value... as hiredis keeps them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ...protocol.resp_reply import NEED_DATA as PARSER_NEED_DATA
from ...protocol.resp_reply import ReplyParser, ReplyProtocolError, Vocabulary
from .errors import ProtocolError
from .replies import NEED_DATA


@dataclass(frozen=True, slots=True)
class Status:
    text: bytes


@dataclass(frozen=True, slots=True)
class ErrorReply:
    text: bytes


@dataclass(frozen=True, slots=True)
class Double:
    text: bytes


@dataclass(frozen=True, slots=True)
class Bool:
    value: bool


@dataclass(frozen=True, slots=True)
class Verbatim:
    format: bytes
    text: bytes


@dataclass(frozen=True, slots=True)
class BigNumber:
    text: bytes


@dataclass(frozen=True, slots=True)
class Aggregate:
    kind: str
    items: list[object] = field(default_factory=list)


def _bool(text: bytes) -> Bool:
    if text not in (b"t", b"f"):
        raise ValueError("a boolean is t or f")
    return Bool(text == b"t")


def _verbatim(data: bytes) -> Verbatim:
    if data[3:4] != b":":
        raise ValueError("verbatim string without its format")
    return Verbatim(data[:3], data[4:])


def _aggregate(kind: str, paired: bool) -> tuple[Callable[[list[object]], object], bool]:
    return (lambda items: Aggregate(kind, items)), paired


# Every RESP3 type, each with its exact text. An attribute (``|``) is a
# reply of its own, as hiredis returns it.
CLI_VALUES = Vocabulary(
    lines={
        ord("+"): Status,
        ord("-"): ErrorReply,
        ord(","): Double,
        ord("#"): _bool,
        ord("("): BigNumber,
    },
    blobs={ord("="): _verbatim, ord("!"): ErrorReply},
    aggregates={
        ord("*"): _aggregate("array", False),
        ord("~"): _aggregate("set", False),
        ord("%"): _aggregate("map", True),
        ord(">"): _aggregate("push", False),
        ord("|"): _aggregate("attribute", True),
    },
    null_array=None,
)


class TypedReplyReader:
    def __init__(self) -> None:
        self._parser = ReplyParser(vocabulary=CLI_VALUES)

    def feed(self, data: bytes | bytearray) -> None:
        if data:  # b"" is EOF to the parser; the client notices EOF itself
            self._parser.receive_data(data)

    def next_reply(self) -> object:
        """The next complete reply, or ``NEED_DATA``; ``ProtocolError`` on bad bytes."""
        try:
            reply = self._parser.next_reply()
        except ReplyProtocolError as error:
            raise ProtocolError(str(error)) from None
        return NEED_DATA if reply is PARSER_NEED_DATA else reply
