"""RESP replies: the reply values of ``protocol.replies`` as RESP2 or RESP3
bytes (``encode_reply``, ``encode_reply_into``, ``encode_reply_pieces``). No IO.

A reply of any size can be encoded in pieces (``encode_reply_pieces``, for
the replies ``is_streamed`` picks: arrays, maps, sets, big bulk strings): the
encoder yields a piece to send whenever its buffer passes a size, so a
``KEYS *`` or MGET of hundreds of MiB never exists whole as bytes, and a
bulk string of ``LARGE_BULK_BYTES`` or more is yielded as the value object
itself instead of being copied. The caller sends (or queues) each piece
before asking for the next, which is where it may wait for its client.

RESP2 has no map, set, double, boolean, null or verbatim types, so they go
out as Redis 7 sends them to a RESP2 client: maps and sets as flat arrays,
doubles and verbatim strings as bulk strings, booleans as 1/0, nulls as
``$-1``/``*-1``. The common replies (OK, small integers, bulk headers) are
precomputed bytes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Iterable

from .replies import (
    OK,
    PONG,
    QUEUED,
    Bool,
    Double,
    Error,
    Map,
    NoReply,
    NullArray,
    Set,
    SimpleString,
    Verbatim,
)

_SMALL_INT_LIMIT = 1024
_SMALL_BULK_LIMIT = 1024
_INTEGERS = [b":%d\r\n" % n for n in range(_SMALL_INT_LIMIT)]
_BULK_HEADERS = [b"$%d\r\n" % n for n in range(_SMALL_BULK_LIMIT)]
_ARRAY_HEADERS = [b"*%d\r\n" % n for n in range(_SMALL_INT_LIMIT)]
_SIMPLE_CONSTANTS = {id(OK): b"+OK\r\n", id(PONG): b"+PONG\r\n", id(QUEUED): b"+QUEUED\r\n"}
_OK_BYTES = b"+OK\r\n"
_NULL_RESP2 = b"$-1\r\n"
_NULL_ARRAY_RESP2 = b"*-1\r\n"
_NULL_RESP3 = b"_\r\n"
_CRLF = b"\r\n"
# Redis prints a double as an integer when it fits (double2ll's range).
_DOUBLE_AS_INTEGER_LIMIT = float(2**62)


def _line_text(text: str) -> bytes:
    """UTF-8 for a `+`/`-` line, with CR/LF made spaces so the line holds."""
    return text.replace("\r", " ").replace("\n", " ").encode()


def _shortest_digits(value: float) -> tuple[str, int]:
    """Digits and decimal exponent of repr(value) for value > 0:
    value == int(digits) * 10**exponent, digits without trailing zeros."""
    mantissa, _, exponent = repr(value).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    stripped = digits.rstrip("0")
    return stripped, int(exponent or 0) - len(fraction) + len(digits) - len(stripped)


def format_double(value: float) -> bytes:
    """Redis's d2string: "inf"/"-inf"/"nan", integral values as integers,
    else the shortest round-trip digits laid out as fpconv_dtoa does."""
    if math.isnan(value):
        return b"nan"
    if math.isinf(value):
        return b"inf" if value > 0 else b"-inf"
    if value == 0:
        return b"-0" if math.copysign(1.0, value) < 0 else b"0"
    if -_DOUBLE_AS_INTEGER_LIMIT <= value <= _DOUBLE_AS_INTEGER_LIMIT and value.is_integer():
        return b"%d" % int(value)
    sign = "-" if value < 0 else ""
    digits, k = _shortest_digits(abs(value))
    ndigits = len(digits)
    exponent = abs(k + ndigits - 1)
    if k >= 0 and exponent < ndigits + 7:
        text = digits + "0" * k
    elif k < 0 and (k > -7 or exponent < 4):
        offset = ndigits + k
        if offset <= 0:
            text = "0." + "0" * -offset + digits
        else:
            text = digits[:offset] + "." + digits[offset:]
    else:
        mantissa = digits[0] + ("." + digits[1:] if ndigits > 1 else "")
        text = f"{mantissa}e{'-' if k + ndigits - 1 < 0 else '+'}{exponent}"
    return (sign + text).encode()


def _encode_bulk(out: bytearray, value: bytes, resp3: bool) -> None:
    size = len(value)
    out += _BULK_HEADERS[size] if size < _SMALL_BULK_LIMIT else b"$%d\r\n" % size
    out += value
    out += _CRLF


def _encode_str(out: bytearray, value: str, resp3: bool) -> None:
    _encode_bulk(out, value.encode(), resp3)


def _encode_int(out: bytearray, value: int, resp3: bool) -> None:
    out += _INTEGERS[value] if 0 <= value < _SMALL_INT_LIMIT else b":%d\r\n" % value


def _encode_none(out: bytearray, value: None, resp3: bool) -> None:
    out += _NULL_RESP3 if resp3 else _NULL_RESP2


def _encode_null_array(out: bytearray, value: NullArray, resp3: bool) -> None:
    out += _NULL_RESP3 if resp3 else _NULL_ARRAY_RESP2


def _encode_array_header(out: bytearray, prefix: bytes, count: int) -> None:
    if prefix == b"*" and count < _SMALL_INT_LIMIT:
        out += _ARRAY_HEADERS[count]
    else:
        out += b"%b%d\r\n" % (prefix, count)


def _encode_list(out: bytearray, value: list[object], resp3: bool) -> None:
    _encode_array_header(out, b"*", len(value))
    for item in value:
        _encode(out, item, resp3)


def _encode_set(out: bytearray, value: Set, resp3: bool) -> None:
    _encode_array_header(out, b"~" if resp3 else b"*", len(value.items))
    for item in value.items:
        _encode(out, item, resp3)


def _encode_map(out: bytearray, value: Map, resp3: bool) -> None:
    if resp3:
        _encode_array_header(out, b"%", len(value.pairs))
    else:
        _encode_array_header(out, b"*", 2 * len(value.pairs))
    for key, item in value.pairs:
        _encode(out, key, resp3)
        _encode(out, item, resp3)


def _encode_simple(out: bytearray, value: SimpleString, resp3: bool) -> None:
    constant = _SIMPLE_CONSTANTS.get(id(value))
    out += constant if constant is not None else b"+" + _line_text(value.text) + _CRLF


def _encode_error(out: bytearray, value: Error, resp3: bool) -> None:
    out += b"-" + _line_text(value.message) + _CRLF


def _encode_double_value(out: bytearray, value: float, resp3: bool) -> None:
    text = format_double(value)
    if resp3:
        out += b"," + text + _CRLF
    else:
        _encode_bulk(out, text, resp3)


def _encode_double(out: bytearray, value: Double, resp3: bool) -> None:
    _encode_double_value(out, value.value, resp3)


def _encode_bool(out: bytearray, value: Bool, resp3: bool) -> None:
    if resp3:
        out += b"#t\r\n" if value.value else b"#f\r\n"
    else:
        out += _INTEGERS[1] if value.value else _INTEGERS[0]


def _encode_verbatim(out: bytearray, value: Verbatim, resp3: bool) -> None:
    if not resp3:
        _encode_bulk(out, value.data, resp3)
        return
    fmt = value.format.encode()
    if len(fmt) != 3:
        raise ValueError(f"verbatim format must be three characters, got {value.format!r}")
    out += b"=%d\r\n%b:" % (len(value.data) + 4, fmt)
    out += value.data
    out += _CRLF


def _reject_bool(out: bytearray, value: bool, resp3: bool) -> None:
    raise TypeError("a Python bool is not a reply value: use replies.Bool or an int")


_ENCODERS: dict[type, Callable[..., None]] = {
    bytes: _encode_bulk,
    bytearray: _encode_bulk,
    memoryview: _encode_bulk,  # a grown value, uncopied (store.growable)
    str: _encode_str,
    int: _encode_int,
    bool: _reject_bool,
    float: _encode_double_value,
    type(None): _encode_none,
    list: _encode_list,
    SimpleString: _encode_simple,
    Error: _encode_error,
    NullArray: _encode_null_array,
    Map: _encode_map,
    Set: _encode_set,
    Double: _encode_double,
    Bool: _encode_bool,
    Verbatim: _encode_verbatim,
}


def _encode(out: bytearray, reply: object, resp3: bool) -> None:
    encoder = _ENCODERS.get(type(reply))
    if encoder is None:
        raise TypeError(f"cannot encode {type(reply).__name__} as a RESP reply")
    encoder(out, reply, resp3)


def _check_protocol(protocol: int) -> None:
    if protocol != 2 and protocol != 3:
        raise ValueError(f"RESP protocol must be 2 or 3, got {protocol!r}")


def encode_reply_into(out: bytearray, reply: object, protocol: int) -> None:
    """Append ``reply`` encoded for RESP ``protocol`` (2 or 3) to ``out``."""
    _check_protocol(protocol)
    encoder = _ENCODERS.get(type(reply))
    if encoder is None:
        # NoReply (SHUTDOWN) sends nothing, and only as a whole reply: inside
        # an array it would break the element count, so _encode rejects it.
        if type(reply) is NoReply:
            return
        raise TypeError(f"cannot encode {type(reply).__name__} as a RESP reply")
    encoder(out, reply, protocol == 3)


def encode_reply(reply: object, protocol: int) -> bytes:
    """``reply`` encoded for RESP ``protocol`` (2 or 3)."""
    _check_protocol(protocol)
    # Precomputed answers for the commonest replies.
    if reply is OK:
        return _OK_BYTES
    reply_type = type(reply)
    if reply_type is bytes:
        size = len(reply)  # type: ignore[arg-type]
        if size < _SMALL_BULK_LIMIT:
            return _BULK_HEADERS[size] + reply + _CRLF  # type: ignore[operator]
    elif reply_type is int and 0 <= reply < _SMALL_INT_LIMIT:  # type: ignore[operator]
        return _INTEGERS[reply]  # type: ignore[call-overload]
    elif reply is None:
        return _NULL_RESP3 if protocol == 3 else _NULL_RESP2
    out = bytearray()
    encode_reply_into(out, reply, protocol)
    return bytes(out)


# A bulk string this long or longer is yielded as the value itself by
# ``encode_reply_pieces`` (a copy of a big value would cost its size again).
LARGE_BULK_BYTES = 64 * 1024
_CONTAINERS = (list, Set, Map)

Piece = bytes | bytearray | memoryview


def is_streamed(reply: object) -> bool:
    """Whether ``reply`` may be large enough to go through
    ``encode_reply_pieces`` (arrays, maps, sets, bulk strings of
    ``LARGE_BULK_BYTES`` or more); cheap, for the per-reply hot path."""
    reply_type = type(reply)
    if reply_type is bytes:
        return len(reply) >= LARGE_BULK_BYTES  # type: ignore[arg-type]
    return reply_type in _CONTAINERS


class _Pieces:
    """The buffer being filled; replaced by a new one each time it is yielded."""

    __slots__ = ("out", "piece_bytes")

    def __init__(self, out: bytearray, piece_bytes: int) -> None:
        self.out = out
        self.piece_bytes = piece_bytes


def encode_reply_pieces(
    out: bytearray, reply: object, protocol: int, piece_bytes: int
) -> Generator[Piece, None, bytearray]:
    """Encode ``reply`` for RESP ``protocol`` after what ``out`` holds.

    Yields, in order, the bytes to send: a buffer each time it reaches
    ``piece_bytes``, and a bulk string of ``LARGE_BULK_BYTES`` or more as the
    value object itself. A yielded buffer is never touched again. Returns
    (``StopIteration.value``) the unfinished buffer, which the caller keeps
    appending the next replies to. The bytes are exactly
    ``encode_reply_into``'s."""
    _check_protocol(protocol)
    if piece_bytes < 1:
        raise ValueError(f"piece_bytes must be at least 1, got {piece_bytes}")
    state = _Pieces(out, piece_bytes)
    yield from _encode_pieces(state, reply, protocol == 3)
    return state.out


def _encode_pieces(state: _Pieces, value: object, resp3: bool) -> Generator[Piece, None, None]:
    value_type = type(value)
    items: Iterable[object]
    if value_type is list:
        _encode_array_header(state.out, b"*", len(value))  # type: ignore[arg-type]
        items = value  # type: ignore[assignment]
    elif value_type is Set:
        _encode_array_header(state.out, b"~" if resp3 else b"*", len(value.items))  # type: ignore[attr-defined]
        items = value.items  # type: ignore[attr-defined]
    elif value_type is Map:
        pairs = value.pairs  # type: ignore[attr-defined]
        _encode_array_header(state.out, b"%" if resp3 else b"*", len(pairs) if resp3 else 2 * len(pairs))
        items = (element for pair in pairs for element in pair)
    elif (value_type is bytes or value_type is bytearray) and len(value) >= LARGE_BULK_BYTES:  # type: ignore[arg-type]
        out = state.out
        out += b"$%d\r\n" % len(value)  # type: ignore[arg-type]
        yield out
        yield value  # type: ignore[misc]
        state.out = bytearray(_CRLF)
        return
    else:
        _encode(state.out, value, resp3)
        if len(state.out) >= state.piece_bytes:
            yield state.out
            state.out = bytearray()
        return
    piece_bytes = state.piece_bytes
    out = state.out
    for item in items:
        if type(item) is bytes and len(item) < LARGE_BULK_BYTES:
            # The common element (KEYS, MGET), encoded inline.
            size = len(item)
            out += _BULK_HEADERS[size] if size < _SMALL_BULK_LIMIT else b"$%d\r\n" % size
            out += item
            out += _CRLF
            if len(out) >= piece_bytes:
                yield out
                out = state.out = bytearray()
        else:
            yield from _encode_pieces(state, item, resp3)
            out = state.out
