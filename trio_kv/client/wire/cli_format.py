"""Typed replies (``typed``) printed as redis-cli 7.0 prints them. No IO.

Two formats, as redis-cli's ``cliFormatReplyTTY`` and ``cliFormatReplyRaw``:
``format_tty`` when standard output is a terminal (or ``--no-raw``): bulk
strings quoted with C escapes, ``(integer) 1``, ``(nil)``, numbered and
indented aggregates, ``(error) ...``; ``format_raw`` otherwise (or
``--raw``): bare bytes, one item per line, nothing for nil. Both return the
bytes to write, final newline included. tests/integration/test_cli_vs_redis_cli.py
compares them with redis-cli's output byte for byte.
"""

from __future__ import annotations

from .typed import Aggregate, BigNumber, Bool, Double, ErrorReply, Status, Verbatim

_EMPTY = {
    "array": b"(empty array)\n",
    "map": b"(empty hash)\n",
    "set": b"(empty set)\n",
    "push": b"(empty push)\n",
}
_NUMBER_SEPARATOR = {"set": "~", "map": "#", "attribute": "#"}
_PAIRED = ("map", "attribute")
_ESCAPES = {
    ord("\\"): b"\\\\",
    ord('"'): b'\\"',
    ord("\n"): b"\\n",
    ord("\r"): b"\\r",
    ord("\t"): b"\\t",
    ord("\a"): b"\\a",
    ord("\b"): b"\\b",
}
# sdscatrepr's table, made once: C isprint() in the C locale is 0x20..0x7e.
_REPR = [
    _ESCAPES.get(byte, bytes([byte]) if 0x20 <= byte <= 0x7E else b"\\x%02x" % byte) for byte in range(256)
]


def quoted(data: bytes) -> bytes:
    """Redis' ``sdscatrepr``: ``"..."`` with C escapes (redis-cli shows bulk strings so)."""
    return b'"' + b"".join([_REPR[byte] for byte in data]) + b'"'


def _c_string(text: bytes) -> bytes:
    # redis-cli prints statuses and errors with %s: they end at a NUL.
    nul = text.find(b"\0")
    return text if nul < 0 else text[:nul]


def _multiline(reply: object) -> bool:
    """Whether ``format_tty`` takes more than one line for ``reply``."""
    if not isinstance(reply, Aggregate) or not reply.items:
        return False
    if reply.kind in _PAIRED:
        return len(reply.items) > 2 or _multiline(reply.items[1])
    return len(reply.items) > 1 or _multiline(reply.items[0])


def format_tty(reply: object, prefix: bytes = b"") -> bytes:
    if reply is None:
        return b"(nil)\n"
    if isinstance(reply, bytes):
        return quoted(reply) + b"\n"
    if isinstance(reply, int):
        return b"(integer) %d\n" % reply
    if isinstance(reply, Status):
        return _c_string(reply.text) + b"\n"
    if isinstance(reply, ErrorReply):
        return b"(error) " + _c_string(reply.text) + b"\n"
    if isinstance(reply, Double):
        return b"(double) " + reply.text + b"\n"
    if isinstance(reply, Bool):
        return b"(true)\n" if reply.value else b"(false)\n"
    if isinstance(reply, Verbatim):
        return reply.text + b"\n"
    if isinstance(reply, BigNumber):
        return reply.text + b"\n"
    if isinstance(reply, Aggregate):
        return _format_aggregate_tty(reply, prefix)
    raise TypeError(f"not a typed reply: {reply!r}")


def _format_aggregate_tty(reply: Aggregate, prefix: bytes) -> bytes:
    items = reply.items
    if not items:
        return _EMPTY.get(reply.kind, b"(empty aggregate type)\n")
    is_map = reply.kind in _PAIRED
    count = len(items) // 2 if is_map else len(items)
    width = len(str(count))
    inner = prefix + b" " * (width + 2)
    separator = _NUMBER_SEPARATOR.get(reply.kind, ")").encode()
    out: list[bytes] = []
    step = 2 if is_map else 1
    for index in range(0, len(items), step):
        number = index // step + 1
        out.append(b"%s%*d%s " % (b"" if index == 0 else prefix, width, number, separator))
        if not is_map:
            out.append(format_tty(items[index], inner))
            continue
        # A map entry: "key => value", the value on the next line when it is a multi-line one.
        out.append(format_tty(items[index], inner)[:-1] + b" => ")
        value = items[index + 1]
        if _multiline(value):
            out.append(b"\n" + inner)
        out.append(format_tty(value, inner))
    return b"".join(out)


def format_raw(reply: object) -> bytes:
    """``--raw`` (and piped output): the reply's bytes, items one per line."""
    return _raw(reply) + b"\n"


def _raw(reply: object) -> bytes:
    if reply is None:
        return b""
    if isinstance(reply, bytes):
        return reply
    if isinstance(reply, int):
        return b"%d" % reply
    if isinstance(reply, Status):
        return reply.text
    if isinstance(reply, ErrorReply):
        return reply.text + b"\n"
    if isinstance(reply, Double | BigNumber):
        return reply.text
    if isinstance(reply, Bool):
        return b"(true)" if reply.value else b"(false)"
    if isinstance(reply, Verbatim):
        return reply.text
    if isinstance(reply, Aggregate):
        if reply.kind in _PAIRED:
            pairs = zip(reply.items[::2], reply.items[1::2])
            return b"\n".join(_raw(key) + b" " + _raw(value) for key, value in pairs)
        return b"\n".join(_raw(item) for item in reply.items)
    raise TypeError(f"not a typed reply: {reply!r}")


def is_error(reply: object) -> bool:
    return isinstance(reply, ErrorReply)
