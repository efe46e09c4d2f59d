"""RESP2 and RESP3 replies, read back: the project's one typed reply parser
(the cluster bus's peer links, the membership and status tools, and the
CLI, through ``client/wire/typed.py``). No IO.

h11's shape: ``receive_data(bytes)`` (``b""`` is EOF), ``next_reply()``
returns one decoded reply or ``NEED_DATA``. What each RESP type becomes is
a ``Vocabulary`` (dispatch by table). ``REPLY_VALUES``, the default, gives
the values of ``protocol.replies``: ``+`` -> ``SimpleString``, ``-`` ->
``Error``, ``:`` -> ``int``, ``$`` -> ``bytes`` (``$-1`` -> ``None``),
``*`` -> ``list`` (``*-1`` -> ``NullArray``), and the RESP3 types the
encoder writes, so a reply forwarded for a RESP3 client (``TKV.FORWARD``)
is encoded again as the same bytes: ``_`` -> ``None``, ``%`` -> ``Map``,
``~`` -> ``Set``, ``,`` -> ``Double``, ``#`` -> ``Bool``, ``=`` ->
``Verbatim``, ``!`` (blob error) -> ``Error``. Push (``>``), attribute
(``|``) and big number (``(``) replies are never sent on the bus: not in
``REPLY_VALUES``, so a protocol error there. The CLI's vocabulary keeps
every type and each one's exact text (redis-cli prints them so).

Why not hiredis' reader, which the client's ``execute`` path uses and
which is 4-300x faster (``bench/wire_micro.py``)? It cannot keep a reply's
type: ``+OK`` and ``$2 OK`` both read as ``b"OK"``, a set as a list, a
verbatim string loses its format, a blob error is a protocol error. The
bus forwards replies to clients byte for byte, and the CLI prints each
type its own way, so both need this parser.

Rules kept here:

1. Bounded: a bulk string over ``max_bulk_bytes``, an aggregate over
   ``max_array_items`` items (a map's or attribute's pairs count twice),
   nesting deeper than ``MAX_DEPTH``, or a line over ``MAX_LINE_BYTES``
   raises ``ReplyProtocolError`` (the link closes) as soon as its header
   is read, before anything is allocated for it. So a peer makes a node
   hold at most the bytes it really sent, and no single value over the
   bounds.
2. A reply is returned only when it is complete; a reply cut by EOF raises.
3. Resumable: an aggregate's items already read are kept (a stack of the
   open aggregates), so a large reply arriving in pieces is parsed once,
   not again from its start at each piece; consumed bytes are dropped from
   the buffer's front once ``_COMPACT_AFTER_BYTES`` pile up.
4. A vocabulary's constructor that raises ``ValueError`` (``#x``, ``,abc``)
   makes a ``ReplyProtocolError``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .replies import Bool, Double, Error, Map, NullArray, Set, SimpleString, Verbatim

MAX_LINE_BYTES = 64 * 1024
MAX_DEPTH = 32
DEFAULT_MAX_BULK_BYTES = 512 * 1024 * 1024
DEFAULT_MAX_ARRAY_ITEMS = 1 << 24
# Consumed bytes are dropped from the buffer's front once this many pile up.
_COMPACT_AFTER_BYTES = 64 * 1024



class ReplyProtocolError(Exception):
    """The peer broke RESP; the stream cannot be read further."""


class _NeedDataType:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = _NeedDataType()


@dataclass(frozen=True)
class Vocabulary:
    """What each RESP type byte becomes. ``:`` is always an ``int``, ``$``
    ``bytes`` (``$-1`` ``None``) and ``_`` ``None``; the others come from
    these tables, and a type byte in none of them is a protocol error."""

    # Line types (+ - , # () : the text after the type byte, to a value.
    lines: Mapping[int, Callable[[bytes], object]]
    # Length-prefixed types other than $ (= !): the payload, to a value.
    blobs: Mapping[int, Callable[[bytes], object]]
    # Aggregates (* ~ % > |): the items in order (a map's flat: key,
    # value, key...), to a value; and whether its header counts pairs.
    aggregates: Mapping[int, tuple[Callable[[list[object]], object], bool]]
    # What ``*-1`` (RESP2's null array) becomes.
    null_array: object


def _boolean(text: bytes) -> Bool:
    if text == b"t":
        return Bool(True)
    if text == b"f":
        return Bool(False)
    raise ValueError("a boolean is t or f")


def _verbatim(data: bytes) -> Verbatim:
    if data[3:4] != b":":
        raise ValueError("verbatim string without its format")
    return Verbatim(data[:3].decode("ascii", "replace"), data[4:])


REPLY_VALUES = Vocabulary(
    lines={
        ord("+"): lambda text: SimpleString(text.decode("utf-8", "replace")),
        ord("-"): lambda text: Error(text.decode("utf-8", "replace")),
        ord(","): lambda text: Double(float(text)),
        ord("#"): _boolean,
    },
    blobs={
        ord("="): _verbatim,
        ord("!"): lambda data: Error(data.decode("utf-8", "replace")),
    },
    aggregates={
        ord("*"): (lambda items: items, False),
        ord("~"): (Set, False),
        ord("%"): (lambda items: Map(list(zip(items[::2], items[1::2]))), True),
    },
    null_array=NullArray(),
)


class _Open:
    """An aggregate whose items are still arriving (rule 3)."""

    __slots__ = ("items", "count", "make")

    def __init__(self, count: int, make: Callable[[list[object]], object]) -> None:
        self.items: list[object] = []
        self.count = count
        self.make = make


class ReplyParser:
    def __init__(
        self, *, max_bulk_bytes: int = DEFAULT_MAX_BULK_BYTES, max_array_items: int = DEFAULT_MAX_ARRAY_ITEMS,
        vocabulary: Vocabulary = REPLY_VALUES,
    ) -> None:
        self._buffer = bytearray()
        self._pos = 0
        self._eof = False
        self._max_bulk_bytes = max_bulk_bytes
        self._max_array_items = max_array_items
        # Every type byte but $ and : (read inline): (category, make, paired).
        self._kinds: dict[int, tuple[str, Callable[..., object], bool]] = {0x5F: (_NULL, _none, False)}
        self._kinds.update((kind, (_LINE, make, False)) for kind, make in vocabulary.lines.items())
        self._kinds.update((kind, (_BLOB, make, False)) for kind, make in vocabulary.blobs.items())
        self._kinds.update((kind, (_AGGREGATE, make, paired)) for kind, (make, paired) in vocabulary.aggregates.items())
        self._null_array = vocabulary.null_array
        # The open aggregates, outermost first (rule 3).
        self._open: list[_Open] = []

    @property
    def buffered_bytes(self) -> int:
        """Bytes received and not yet part of a returned reply."""
        return len(self._buffer) - self._pos

    def receive_data(self, data: bytes | bytearray) -> None:
        if not data:
            self._eof = True
        else:
            self._buffer += data

    def next_reply(self) -> object:
        """One complete reply, or ``NEED_DATA``; raises ``ReplyProtocolError``
        on bad bytes or on EOF inside a reply."""
        buffer, pos, stack = self._buffer, self._pos, self._open
        # The bus's usual reply, a one-digit integer (TKV.REPL.PUT's :1 or
        # :0), read without the general loop.
        if (not stack and len(buffer) >= pos + 4 and buffer[pos] == 0x3A and buffer[pos + 2] == 0x0D
                and buffer[pos + 3] == 0x0A and 0x30 <= buffer[pos + 1] <= 0x39):
            digit = buffer[pos + 1] - 0x30
            self._consumed(pos + 4)  # may compact the buffer: read first
            return digit
        size = len(buffer)
        find = buffer.find
        max_line = MAX_LINE_BYTES + 3
        kinds = self._kinds
        while True:
            # One value at pos: a leaf, or an aggregate's header.
            if pos >= size:
                return self._need_data(pos)
            kind = buffer[pos]
            end = find(b"\r\n", pos + 1, pos + max_line)
            if end < 0:
                if size - pos >= max_line:
                    raise ReplyProtocolError(f"reply line longer than {MAX_LINE_BYTES} bytes")
                return self._need_data(pos)
            after = end + 2
            value: object
            if kind == 0x24:  # $ (the commonest, with :)
                try:
                    length = int(buffer[pos + 1 : end])
                except ValueError:
                    raise _bad_integer(buffer[pos + 1 : end]) from None
                if length == -1:
                    value = None
                else:
                    if not 0 <= length <= self._max_bulk_bytes:
                        raise _bad_length(length, self._max_bulk_bytes)
                    data_end = after + length
                    if size < data_end + 2:
                        return self._need_data(pos)
                    if buffer[data_end] != 0x0D or buffer[data_end + 1] != 0x0A:
                        raise ReplyProtocolError("bulk string not followed by CRLF")
                    value = bytes(buffer[after:data_end])
                    after = data_end + 2
            elif kind == 0x3A:  # :
                try:
                    value = int(buffer[pos + 1 : end])
                except ValueError:
                    raise _bad_integer(buffer[pos + 1 : end]) from None
            else:
                entry = kinds.get(kind)
                if entry is None:
                    raise ReplyProtocolError(f"unexpected reply type byte {bytes([kind])!r}")
                category, make, paired = entry
                line = bytes(buffer[pos + 1 : end])
                if category is _AGGREGATE:
                    count = _integer(line)
                    if count == -1 and kind == 0x2A:
                        value = self._null_array
                    else:
                        if paired:
                            count *= 2
                        if not 0 <= count <= self._max_array_items:
                            raise ReplyProtocolError(f"array length {count} outside 0..{self._max_array_items}")
                        if count:
                            if len(stack) >= MAX_DEPTH:
                                raise ReplyProtocolError(f"arrays nested deeper than {MAX_DEPTH}")
                            stack.append(_Open(count, make))
                            pos = after
                            continue
                        value = make([])
                elif category is _LINE:
                    try:  # inline, not _made: status replies are common
                        value = make(line)
                    except ValueError as error:
                        raise ReplyProtocolError(f"bad reply {line[:32]!r}: {error}") from None
                elif category is _BLOB:
                    # As $ above, which stays inline there: the commonest type.
                    length = _integer(line)
                    if not 0 <= length <= self._max_bulk_bytes:
                        raise _bad_length(length, self._max_bulk_bytes)
                    data_end = after + length
                    if size < data_end + 2:
                        return self._need_data(pos)
                    if buffer[data_end] != 0x0D or buffer[data_end + 1] != 0x0A:
                        raise ReplyProtocolError("bulk string not followed by CRLF")
                    value = _made(make, bytes(buffer[after:data_end]))
                    after = data_end + 2
                else:  # _ (RESP3 null)
                    if line:
                        raise ReplyProtocolError("RESP3 null with a payload")
                    value = None
            pos = after
            # The value ends the aggregates it completes.
            while stack:
                top = stack[-1]
                items = top.items
                items.append(value)
                if len(items) < top.count:
                    break
                stack.pop()
                value = top.make(items)
            else:
                self._consumed(pos)
                return value

    def _need_data(self, pos: int) -> object:
        # Items read so far are on the stack: their bytes are consumed.
        self._consumed(pos)
        if self._eof and (self.buffered_bytes or self._open):
            raise ReplyProtocolError("connection closed in the middle of a reply")
        return NEED_DATA

    def _consumed(self, end: int) -> None:
        self._pos = end
        if end >= _COMPACT_AFTER_BYTES:
            del self._buffer[:end]
            self._pos = 0



_LINE, _BLOB, _AGGREGATE, _NULL = "line", "blob", "aggregate", "null"


def _none(_: object) -> None:
    return None


def _bad_integer(text: bytes | bytearray) -> ReplyProtocolError:
    return ReplyProtocolError(f"bad integer {bytes(text[:32])!r}")


def _bad_length(length: int, limit: int) -> ReplyProtocolError:
    return ReplyProtocolError(f"bulk length {length} outside 0..{limit}")


def _integer(text: bytes | bytearray) -> int:
    try:
        return int(text)
    except ValueError:
        raise _bad_integer(text) from None


def _made(make: Callable[[bytes], object], data: bytes) -> object:
    try:
        return make(data)
    except ValueError as error:
        raise ReplyProtocolError(f"bad reply {data[:32]!r}: {error}") from None
