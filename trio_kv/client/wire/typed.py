"""RESP replies with their types kept, for the CLI. No IO.

redis-cli's output depends on what hiredis' Python reader throws away: a
status (``+OK``, printed bare) from a bulk string (``"OK"``, quoted), a map
from an array, a set, a double's exact text (``(double) 1.5``), a
verbatim string, a big number, a RESP2 null array from a null bulk. So the
CLI reads its replies with this reader instead of ``replies.ReplyReader``;
the client's ``execute`` path never does (it stays on hiredis).

Shape as ``replies.ReplyReader``: ``feed(bytes)``, ``next_reply()`` until
``NEED_DATA``. An incomplete reply is parsed again from its start when more
bytes come: CLI replies are read once each, so that costs nothing that
matters; bulk lengths and nesting are bounded so a bad server cannot make
it allocate without limit.

Values: ``bytes`` (bulk string), ``int``, ``None`` (any null), ``Status``,
``ErrorReply``, ``Double`` (its text), ``Bool``, ``Verbatim``, ``BigNumber``
(its text), ``Aggregate`` (``kind`` one of array, set, map, push, attribute;
a map's ``items`` are key, value, key, value... as hiredis keeps them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import ProtocolError
from .replies import NEED_DATA

MAX_BULK_BYTES = 512 * 1024 * 1024
MAX_AGGREGATE_ITEMS = 1 << 24
MAX_DEPTH = 64


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


_AGGREGATES = {ord("*"): "array", ord("~"): "set", ord("%"): "map", ord(">"): "push", ord("|"): "attribute"}


class _Incomplete(Exception):
    pass


class TypedReplyReader:
    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes | bytearray) -> None:
        self._buffer += data

    def next_reply(self) -> object:
        """The next complete reply, or ``NEED_DATA``; ``ProtocolError`` on bad bytes.
        An attribute (``|``) is returned as a reply of its own, as hiredis does."""
        try:
            value, end = self._parse(0, 0)
        except _Incomplete:
            return NEED_DATA
        del self._buffer[:end]
        return value

    def _line(self, start: int) -> tuple[bytes, int]:
        end = self._buffer.find(b"\r\n", start)
        if end < 0:
            raise _Incomplete
        return bytes(self._buffer[start:end]), end + 2

    @staticmethod
    def _number(text: bytes) -> int:
        try:
            return int(text)
        except ValueError:
            raise ProtocolError(f"bad length or integer {text[:32]!r}") from None

    def _blob(self, length: int, start: int) -> tuple[bytes, int]:
        if not 0 <= length <= MAX_BULK_BYTES:
            raise ProtocolError(f"bulk length {length} out of range")
        end = start + length
        if len(self._buffer) < end + 2:
            raise _Incomplete
        if self._buffer[end : end + 2] != b"\r\n":
            raise ProtocolError("bulk string not followed by CRLF")
        return bytes(self._buffer[start:end]), end + 2

    def _parse(self, pos: int, depth: int) -> tuple[object, int]:
        if pos >= len(self._buffer):
            raise _Incomplete
        kind = self._buffer[pos]
        line, after = self._line(pos + 1)
        if kind == ord("+"):
            return Status(line), after
        if kind == ord("-"):
            return ErrorReply(line), after
        if kind == ord(":"):
            return self._number(line), after
        if kind == ord("$"):
            length = self._number(line)
            return (None, after) if length == -1 else self._blob(length, after)
        if kind == ord("_"):
            return None, after
        if kind == ord(","):
            return Double(line), after
        if kind == ord("#"):
            if line not in (b"t", b"f"):
                raise ProtocolError(f"bad boolean {line[:32]!r}")
            return Bool(line == b"t"), after
        if kind == ord("("):
            return BigNumber(line), after
        if kind in (ord("="), ord("!")):
            data, after = self._blob(self._number(line), after)
            if kind == ord("!"):
                return ErrorReply(data), after
            if data[3:4] != b":":
                raise ProtocolError("verbatim string without its format")
            return Verbatim(data[:3], data[4:]), after
        aggregate = _AGGREGATES.get(kind)
        if aggregate is None:
            raise ProtocolError(f"unexpected reply type byte {bytes([kind])!r}")
        count = self._number(line)
        if count == -1 and aggregate == "array":
            return None, after
        if aggregate in ("map", "attribute"):
            count *= 2
        if not 0 <= count <= MAX_AGGREGATE_ITEMS:
            raise ProtocolError(f"aggregate length {count} out of range")
        if depth >= MAX_DEPTH:
            raise ProtocolError(f"replies nested deeper than {MAX_DEPTH}")
        items: list[object] = []
        for _ in range(count):
            item, after = self._parse(after, depth + 1)
            items.append(item)
        return Aggregate(aggregate, items), after
