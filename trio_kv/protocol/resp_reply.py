"""RESP2 and RESP3 replies, read back: the client side of RESP (the cluster
bus's outbound links read their peers' replies with it). No IO.

h11's shape: ``receive_data(bytes)`` (``b""`` is EOF), ``next_reply()``
returns one decoded reply or ``NEED_DATA``. Replies decode to the values of
``protocol.replies``: ``+`` -> ``SimpleString``, ``-`` -> ``Error``, ``:`` ->
``int``, ``$`` -> ``bytes`` (``$-1`` -> ``None``), ``*`` -> ``list``
(``*-1`` -> ``NullArray``). The RESP3 types the encoder writes decode too,
so a reply forwarded for a RESP3 client (``TKV.FORWARD``) is encoded again
as the same bytes: ``_`` -> ``None``, ``%`` -> ``Map``, ``~`` -> ``Set``,
``,`` -> ``Double``, ``#`` -> ``Bool``, ``=`` -> ``Verbatim``, ``!`` (blob
error) -> ``Error``. Push (``>``), attribute (``|``) and big number (``(``)
replies are never sent on the bus and are a protocol error.

Rules kept here:

1. Bounded: a bulk string over ``max_bulk_bytes``, an array (set, map:
   its pairs count twice) over ``max_array_items`` or nested deeper than ``MAX_DEPTH``, or a line over
   ``MAX_LINE_BYTES`` raises ``ReplyProtocolError`` (the link closes).
2. A reply is returned only when it is complete; a reply cut by EOF raises.
   An incomplete array is parsed again from its start when more bytes
   arrive (bus replies are small; a huge one costs quadratic time, which
   is why the bounds exist).
"""

from __future__ import annotations

from collections.abc import Sequence

from .replies import Bool, Double, Error, Map, NullArray, Set, SimpleString, Verbatim
from .resp_encoder import encode_reply

MAX_LINE_BYTES = 64 * 1024
MAX_DEPTH = 32
# Consumed bytes are dropped from the buffer's front once this many pile up.
_COMPACT_AFTER_BYTES = 64 * 1024


class ReplyProtocolError(Exception):
    """The peer broke RESP; the stream cannot be read further."""


class _NeedData(Exception):
    pass


class _NeedDataType:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = _NeedDataType()


class ReplyParser:
    def __init__(self, *, max_bulk_bytes: int = 512 * 1024 * 1024, max_array_items: int = 1 << 24) -> None:
        self._buffer = bytearray()
        self._pos = 0
        self._eof = False
        self._max_bulk_bytes = max_bulk_bytes
        self._max_array_items = max_array_items

    @property
    def buffered_bytes(self) -> int:
        return len(self._buffer) - self._pos

    def receive_data(self, data: bytes) -> None:
        if not data:
            self._eof = True
        else:
            self._buffer += data

    def next_reply(self) -> object:
        """One complete reply, or ``NEED_DATA``; raises ``ReplyProtocolError``
        on bad bytes or on EOF inside a reply."""
        buffer, pos = self._buffer, self._pos
        # The bus's usual reply, a one-digit integer (TKV.REPL.PUT's :1 or
        # :0), read without the general parser's calls.
        if (len(buffer) >= pos + 4 and buffer[pos] == 0x3A and buffer[pos + 2] == 0x0D
                and buffer[pos + 3] == 0x0A and 0x30 <= buffer[pos + 1] <= 0x39):
            digit = buffer[pos + 1] - 0x30
            self._consumed(pos + 4)  # may compact the buffer: read first
            return digit
        try:
            value, end = self._parse(pos, 0)
        except _NeedData:
            if self._eof and self.buffered_bytes:
                raise ReplyProtocolError("connection closed in the middle of a reply") from None
            return NEED_DATA
        self._consumed(end)
        return value

    def _consumed(self, end: int) -> None:
        self._pos = end
        if end >= _COMPACT_AFTER_BYTES:
            del self._buffer[:end]
            self._pos = 0

    def _line(self, start: int) -> tuple[bytes, int]:
        buffer = self._buffer
        end = buffer.find(b"\r\n", start, start + MAX_LINE_BYTES + 2)
        if end < 0:
            if len(buffer) - start > MAX_LINE_BYTES:
                raise ReplyProtocolError(f"reply line longer than {MAX_LINE_BYTES} bytes")
            raise _NeedData
        return bytes(buffer[start:end]), end + 2

    def _integer(self, text: bytes) -> int:
        try:
            return int(text)
        except ValueError:
            raise ReplyProtocolError(f"bad integer {text[:32]!r}") from None

    def _parse(self, pos: int, depth: int) -> tuple[object, int]:
        if pos >= len(self._buffer):
            raise _NeedData
        kind = self._buffer[pos]
        line, after = self._line(pos + 1)
        if kind == 0x2B:  # +
            return SimpleString(line.decode("utf-8", "replace")), after
        if kind == 0x2D:  # -
            return Error(line.decode("utf-8", "replace")), after
        if kind == 0x3A:  # :
            return self._integer(line), after
        if kind == 0x24:  # $
            length = self._integer(line)
            if length == -1:
                return None, after
            return self._blob(length, after)
        if kind == 0x2A:  # *
            count = self._integer(line)
            if count == -1:
                return NullArray(), after
            return self._items(count, after, depth)
        if kind == 0x5F:  # _ (RESP3 null)
            if line:
                raise ReplyProtocolError("RESP3 null with a payload")
            return None, after
        if kind == 0x25:  # % (RESP3 map)
            items, after = self._items(2 * self._integer(line), after, depth)
            return Map(list(zip(items[::2], items[1::2]))), after
        if kind == 0x7E:  # ~ (RESP3 set)
            items, after = self._items(self._integer(line), after, depth)
            return Set(items), after
        if kind == 0x2C:  # , (RESP3 double)
            try:
                return Double(float(line)), after
            except ValueError:
                raise ReplyProtocolError(f"bad double {line[:32]!r}") from None
        if kind == 0x23:  # # (RESP3 boolean)
            if line not in (b"t", b"f"):
                raise ReplyProtocolError(f"bad boolean {line[:32]!r}")
            return Bool(line == b"t"), after
        if kind == 0x3D:  # = (RESP3 verbatim string: "fmt:" then the data)
            data, after = self._blob(self._integer(line), after)
            if len(data) < 4 or data[3:4] != b":":
                raise ReplyProtocolError("verbatim string without its format")
            return Verbatim(data[:3].decode("ascii", "replace"), data[4:]), after
        if kind == 0x21:  # ! (RESP3 blob error)
            data, after = self._blob(self._integer(line), after)
            return Error(data.decode("utf-8", "replace")), after
        raise ReplyProtocolError(f"unexpected reply type byte {bytes([kind])!r}")

    def _blob(self, length: int, after: int) -> tuple[bytes, int]:
        """A length-prefixed payload (``$``, ``=``, ``!``) starting at ``after``."""
        if not 0 <= length <= self._max_bulk_bytes:
            raise ReplyProtocolError(f"bulk length {length} outside 0..{self._max_bulk_bytes}")
        end = after + length
        if len(self._buffer) < end + 2:
            raise _NeedData
        if self._buffer[end : end + 2] != b"\r\n":
            raise ReplyProtocolError("bulk string not followed by CRLF")
        return bytes(self._buffer[after:end]), end + 2

    def _items(self, count: int, after: int, depth: int) -> tuple[list[object], int]:
        """``count`` replies of an aggregate (``*``, ``%``, ``~``) from ``after``."""
        if not 0 <= count <= self._max_array_items:
            raise ReplyProtocolError(f"array length {count} outside 0..{self._max_array_items}")
        if depth >= MAX_DEPTH:
            raise ReplyProtocolError(f"arrays nested deeper than {MAX_DEPTH}")
        items: list[object] = []
        for _ in range(count):
            item, after = self._parse(after, depth + 1)
            items.append(item)
        return items, after


def encode_request(args: list[bytes] | tuple[bytes, ...]) -> bytes:
    """A request as RESP: an array of bulk strings (the reply encoder's
    array of bulk strings, which is exactly that)."""
    return encode_reply(list(args), 2)


def encode_requests(requests: Sequence[Sequence[bytes]]) -> bytes:
    """Several requests back to back, each as ``encode_request`` writes it
    (one buffer for a batch: the bus link sends a batch in one piece)."""
    parts: list[bytes] = []
    extend = parts.extend
    for args in requests:
        parts.append(b"*%d\r\n" % len(args))
        for arg in args:
            size = len(arg)
            extend((_BULK_HEADERS[size] if size < _CACHED_HEADERS else b"$%d\r\n" % size, arg, b"\r\n"))
    return b"".join(parts)


# Bulk string headers of the common lengths, made once (a bus batch is
# hundreds of small arguments).
_CACHED_HEADERS = 1024
_BULK_HEADERS = tuple(b"$%d\r\n" % size for size in range(_CACHED_HEADERS))
