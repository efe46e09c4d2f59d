"""RESP parser and encoder: tables of (bytes in, commands or exact error out),
and (reply value, RESP2 bytes, RESP3 bytes)."""

from __future__ import annotations

import math
import random
import tracemalloc

import pytest

from trio_kv.protocol import resp
from trio_kv.protocol.replies import (
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
from trio_kv.protocol.resp import CLOSED, NEED_DATA, RespParser, RespProtocolError
from trio_kv.protocol.resp_encoder import encode_reply, encode_reply_into, format_double
from trio_kv.protocol.split_args import split_args


def parse_reply(buf: bytes, pos: int = 0) -> tuple[object, int]:
    """Decode one RESP2/RESP3 reply at ``pos``: (value, position after it).

    A client-side decoder for tests, not fast. Bulk strings are bytes,
    integers int, nulls None, arrays lists; the rest are tagged tuples:
    ("simple", str), ("error", str), ("map", [(k, v)]), ("set", [...]),
    ("double", str), ("bool", bool), ("verbatim", format, bytes).
    """
    end = buf.index(b"\r\n", pos)
    kind, line, after = buf[pos : pos + 1], buf[pos + 1 : end], end + 2
    if kind in (b"$", b"="):
        size = int(line)
        if size < 0:
            return None, after
        data = buf[after : after + size]
        assert buf[after + size : after + size + 2] == b"\r\n"
        if kind == b"=":
            return ("verbatim", data[:3].decode(), data[4:]), after + size + 2
        return data, after + size + 2
    if kind in (b"*", b"~", b"%"):
        count = int(line)
        if count < 0:
            return None, after
        items = []
        for _ in range(count * 2 if kind == b"%" else count):
            item, after = parse_reply(buf, after)
            items.append(item)
        if kind == b"%":
            return ("map", list(zip(items[::2], items[1::2]))), after
        return (("set", items) if kind == b"~" else items), after
    simple = {
        b"+": lambda: ("simple", line.decode()),
        b"-": lambda: ("error", line.decode()),
        b":": lambda: int(line),
        b"_": lambda: None,
        b",": lambda: ("double", line.decode()),
        b"#": lambda: ("bool", line == b"t"),
    }
    return simple[kind](), after


def parse_all(data: bytes, *, inline_allowed: bool = True, **limits: int) -> list[list[bytes]]:
    parser = RespParser(inline_allowed=inline_allowed, **limits)
    parser.receive_data(data)
    commands = []
    while True:
        command = parser.next_command()
        if command is NEED_DATA:
            return commands
        commands.append(command)


def error_of(data: bytes, *, inline_allowed: bool = True, **limits: int) -> str:
    with pytest.raises(RespProtocolError) as caught:
        parse_all(data, inline_allowed=inline_allowed, **limits)
    return caught.value.message


# -- parsing: valid input ---------------------------------------------------

SET_KEY_VAL = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$3\r\nval\r\n"

VALID_CASES = [
    (SET_KEY_VAL, [[b"SET", b"key", b"val"]]),
    (SET_KEY_VAL * 3, [[b"SET", b"key", b"val"]] * 3),
    (b"*1\r\n$0\r\n\r\n", [[b""]]),
    # Payloads are binary: CRLF, '*' and '$' inside them are data.
    (b"*2\r\n$3\r\nGET\r\n$6\r\na\r\n*$\x00\r\n", [[b"GET", b"a\r\n*$\x00"]]),
    # *0 and negative counts are skipped, as Redis does.
    (b"*0\r\n*-1\r\n*-10\r\n" + SET_KEY_VAL, [[b"SET", b"key", b"val"]]),
    # Empty lines between commands are ignored.
    (b"\r\n\n" + SET_KEY_VAL + b"\r\n", [[b"SET", b"key", b"val"]]),
    # Incomplete trailing command: what is complete comes out.
    (SET_KEY_VAL + b"*2\r\n$4\r\nPING", [[b"SET", b"key", b"val"]]),
    (b"*1\r\n$1023\r\n" + b"x" * 1023 + b"\r\n", [[b"x" * 1023]]),
    (b"*1\r\n$2000\r\n" + b"x" * 2000 + b"\r\n", [[b"x" * 2000]]),
]


@pytest.mark.parametrize("inline_allowed", [True, False])
@pytest.mark.parametrize(("data", "expected"), VALID_CASES)
def test_valid_multibulk(data: bytes, expected: list[list[bytes]], inline_allowed: bool) -> None:
    assert parse_all(data, inline_allowed=inline_allowed) == expected


INLINE_CASES = [
    (b"PING\r\n", [[b"PING"]]),
    (b"PING\n", [[b"PING"]]),
    (b"  SET  a\t b  \r\n", [[b"SET", b"a", b"b"]]),
    (b'SET k "hello world"\r\n', [[b"SET", b"k", b"hello world"]]),
    (b"\r\n\r\n  \r\nPING\r\n", [[b"PING"]]),
    (b"PING\r\n" + SET_KEY_VAL + b"ECHO x\n", [[b"PING"], [b"SET", b"key", b"val"], [b"ECHO", b"x"]]),
    # A line is only complete once its '\n' arrives.
    (b"PING\r", []),
]


@pytest.mark.parametrize(("data", "expected"), INLINE_CASES)
def test_inline_commands(data: bytes, expected: list[list[bytes]]) -> None:
    assert parse_all(data, inline_allowed=True) == expected


SPLIT_CASES = [
    (b"", []),
    (b"   \t ", []),
    (b"set a b", [b"set", b"a", b"b"]),
    (b'set "a b" c', [b"set", b"a b", b"c"]),
    (b'""', [b""]),
    (b"''", [b""]),
    (b'"\\x41\\x7a\\n\\r\\t\\b\\a\\\\\\""', [b"Az\n\r\t\b\a\\\""]),
    (b'"\\q"', [b"q"]),
    # \x needs two hex digits, else it is an escaped 'x'.
    (b'"\\xZZ"', [b"xZZ"]),
    (b'"\\x4"', [b"x4"]),
    (b"'it\\'s'", [b"it's"]),
    (b"'a\\nb'", [b"a\\nb"]),
    (b'foo"bar"', [b"foobar"]),
    (b'"a" "b"', [b"a", b"b"]),
    # Only space, tab, CR, LF end an unquoted argument; \v and \f are
    # skipped between arguments.
    (b"a\vb", [b"a\vb"]),
    (b"\va \fb", [b"a", b"b"]),
    (b'"a"\vb', [b"a", b"b"]),
    # The line is a C string: NUL ends it.
    (b"a\x00b c", [b"a"]),
    (b"\\x41", [b"\\x41"]),
]


@pytest.mark.parametrize(("line", "expected"), SPLIT_CASES)
def test_split_inline_args(line: bytes, expected: list[bytes]) -> None:
    assert split_args(line, nul_ends_line=True) == expected


@pytest.mark.parametrize("line", [b'"abc', b"'abc", b'"a"b', b"'a'b", b'"abc\\"', b'"a\x00"', b'x "a'])
def test_split_inline_args_unbalanced(line: bytes) -> None:
    assert split_args(line, nul_ends_line=True) is None


# -- parsing: errors, with Redis's exact wording ----------------------------

ERROR_CASES = [
    (b"*x\r\n", "Protocol error: invalid multibulk length"),
    (b"*\r\n", "Protocol error: invalid multibulk length"),
    (b"*01\r\n", "Protocol error: invalid multibulk length"),
    (b"*+1\r\n", "Protocol error: invalid multibulk length"),
    (b"* 1\r\n", "Protocol error: invalid multibulk length"),
    (b"*-0\r\n", "Protocol error: invalid multibulk length"),
    (b"*1\rx\r\n", "Protocol error: invalid multibulk length"),
    (b"*1073741825\r\n", "Protocol error: invalid multibulk length"),
    (b"*99999999999999999999999\r\n", "Protocol error: invalid multibulk length"),
    (b"*1\r\n$x\r\n", "Protocol error: invalid bulk length"),
    (b"*1\r\n$-1\r\n", "Protocol error: invalid bulk length"),
    (b"*1\r\n$01\r\n", "Protocol error: invalid bulk length"),
    (b"*1\r\n$\r\n", "Protocol error: invalid bulk length"),
    (b"*1\r\n$536870913\r\n", "Protocol error: invalid bulk length"),
    (b"*1\r\nfoo\r\n", "Protocol error: expected '$', got 'f'"),
    # From Redis's own test suite (tests/unit/protocol.tcl).
    (b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n", "Protocol error: expected '$', got 'f'"),
    (b"*1\r\n$3\r\nabcX\r\n", "Protocol error: expected CRLF after bulk payload"),
    (b"*1\r\n$3\r\nabc\n\r", "Protocol error: expected CRLF after bulk payload"),
    (b"*" + b"1" * 65536, "Protocol error: too big mbulk count string"),
    (b"*1\r\n$" + b"1" * 65536, "Protocol error: too big bulk count string"),
    (b"x" * 65537, "Protocol error: too big inline request"),
    (b'SET "a\r\n', "Protocol error: unbalanced quotes in request"),
    (b"PING\r\nSET 'a'b\n", "Protocol error: unbalanced quotes in request"),
]


@pytest.mark.parametrize(("data", "message"), ERROR_CASES)
def test_protocol_errors(data: bytes, message: str) -> None:
    assert error_of(data) == message


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"PING\r\n", "Protocol error: expected '*', got 'P'"),
        (b"\rX", "Protocol error: expected '*', got '\r'"),
        (SET_KEY_VAL + b"$3\r\n", "Protocol error: expected '*', got '$'"),
    ],
)
def test_inline_not_allowed(data: bytes, message: str) -> None:
    assert error_of(data, inline_allowed=False) == message


def test_limits_are_inclusive() -> None:
    # Exactly 64 KiB buffered without a line end is still fine, as in Redis.
    assert parse_all(b"*" + b"1" * 65535) == []
    assert parse_all(b"x" * 65536) == []
    assert parse_all(b"*1073741824\r\n") == []
    assert parse_all(b"*1\r\n$536870912\r\n") == []


def test_custom_bulk_limit_applies_to_small_lengths() -> None:
    assert parse_all(b"*1\r\n$10\r\n0123456789\r\n", max_bulk_bytes=10) == [[b"0123456789"]]
    assert error_of(b"*1\r\n$11\r\n", max_bulk_bytes=10) == "Protocol error: invalid bulk length"


def test_error_reply_bytes() -> None:
    error = RespProtocolError("Protocol error: invalid multibulk length")
    assert error.reply_bytes() == b"-ERR Protocol error: invalid multibulk length\r\n"
    # A raw CR/LF in the message must not break the reply line.
    assert error_of(b"\r\n\rX", inline_allowed=False) == "Protocol error: expected '*', got '\r'"
    crlf = RespProtocolError("Protocol error: expected '$', got '\r'")
    assert crlf.reply_bytes() == b"-ERR Protocol error: expected '$', got ' '\r\n"
    # The offending byte goes out raw, as Redis's %c does.
    assert RespProtocolError(f"got '{chr(0xFF)}'").reply_bytes() == b"-ERR got '\xff'\r\n"


def test_parser_is_dead_after_an_error() -> None:
    parser = RespParser(inline_allowed=False)
    parser.receive_data(b"*x\r\n")
    with pytest.raises(RespProtocolError) as first:
        parser.next_command()
    with pytest.raises(RespProtocolError) as again:
        parser.next_command()
    assert again.value is first.value
    with pytest.raises(RespProtocolError):
        parser.receive_data(SET_KEY_VAL)


def test_next_commands_returns_earlier_commands_before_raising() -> None:
    parser = RespParser(inline_allowed=False)
    parser.receive_data(SET_KEY_VAL * 2 + b"*1\r\nfoo\r\n" + SET_KEY_VAL)
    assert parser.next_commands(100) == [[b"SET", b"key", b"val"]] * 2
    with pytest.raises(RespProtocolError, match=r"expected '\$', got 'f'"):
        parser.next_commands(100)
    with pytest.raises(RespProtocolError):
        parser.next_commands(100)


def test_next_commands_honours_limit() -> None:
    parser = RespParser(inline_allowed=True)
    parser.receive_data(SET_KEY_VAL * 5 + b"PING\r\n")
    assert len(parser.next_commands(2)) == 2
    assert len(parser.next_commands(2)) == 2
    assert parser.next_commands(2) == [[b"SET", b"key", b"val"], [b"PING"]]
    assert parser.next_commands(2) == []
    assert parser.next_command() is NEED_DATA
    with pytest.raises(ValueError):
        parser.next_commands(0)


def test_eof_returns_remaining_commands_then_closed() -> None:
    parser = RespParser(inline_allowed=False)
    parser.receive_data(SET_KEY_VAL + b"*1\r\n$4\r\nPI")
    parser.receive_data(b"")
    assert parser.eof_received
    assert parser.next_command() == [b"SET", b"key", b"val"]
    # The partial command is dropped.
    assert parser.next_command() is CLOSED
    assert parser.next_command() is CLOSED
    assert parser.next_commands(10) == []
    with pytest.raises(RuntimeError):
        parser.receive_data(b"more")


def test_eof_on_an_empty_connection() -> None:
    parser = RespParser(inline_allowed=True)
    assert parser.next_command() is NEED_DATA
    parser.receive_data(b"")
    assert parser.next_command() is CLOSED


def test_accepts_bytearray_and_memoryview() -> None:
    parser = RespParser(inline_allowed=False)
    parser.receive_data(bytearray(SET_KEY_VAL[:10]))
    parser.receive_data(memoryview(SET_KEY_VAL[10:]))
    command = parser.next_command()
    assert command == [b"SET", b"key", b"val"]
    assert all(type(arg) is bytes for arg in command)


# -- bounded memory ---------------------------------------------------------


@pytest.mark.parametrize("header", [b"*1\r\n$536870911\r\n", b"*1073741824\r\n", b"*1073741824\r\n$536870912\r\nab"])
def test_declared_lengths_do_not_allocate(header: bytes) -> None:
    parser = RespParser(inline_allowed=False)
    tracemalloc.start()
    try:
        parser.receive_data(header)
        assert parser.next_command() is NEED_DATA
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024


def test_query_buffer_limit_counts_unparsed_bytes() -> None:
    parser = RespParser(inline_allowed=False, max_query_buffer_bytes=100)
    parser.receive_data(b"*1\r\n$1000\r\n" + b"x" * 50)
    assert parser.next_command() is NEED_DATA
    parser.receive_data(b"x" * 60)
    with pytest.raises(RespProtocolError) as caught:
        parser.next_command()
    assert caught.value.message == "Protocol error: query buffer limit exceeded"


def test_query_buffer_limit_counts_the_unfinished_command() -> None:
    parser = RespParser(inline_allowed=False, max_query_buffer_bytes=100)
    arg = b"$40\r\n" + b"a" * 40 + b"\r\n"
    parser.receive_data(b"*3\r\n" + arg + arg)
    assert parser.next_command() is NEED_DATA
    parser.receive_data(b"$40\r\n" + b"b" * 10)
    with pytest.raises(RespProtocolError, match="query buffer limit exceeded"):
        parser.next_command()


def test_query_buffer_limit_does_not_count_complete_commands() -> None:
    parser = RespParser(inline_allowed=False, max_query_buffer_bytes=100)
    parser.receive_data(SET_KEY_VAL * 20)
    assert len(parser.next_commands(1000)) == 20


def count_joins(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    joins: list[int] = []
    original = RespParser._join_chunks

    def counting(self: RespParser) -> None:
        # Bytes the join copies: the unparsed tail plus the queued chunks.
        joins.append(self._unparsed_bytes())
        original(self)

    monkeypatch.setattr(RespParser, "_join_chunks", counting)
    return joins


def test_big_bulk_in_small_chunks_is_joined_once(monkeypatch: pytest.MonkeyPatch) -> None:
    joins = count_joins(monkeypatch)
    value = bytes(range(256)) * (8 * 1024 * 4)  # 8 MiB
    data = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n%b\r\n" % (len(value), value)
    parser = RespParser(inline_allowed=False)
    results = []
    for start in range(0, len(data), 4096):
        parser.receive_data(data[start : start + 4096])
        results.append(parser.next_command())
    assert results[-1] == [b"SET", b"k", value]
    assert all(result is NEED_DATA for result in results[:-1])
    # Chunks are queued until the payload is complete, not re-joined each time.
    assert len(joins) <= 3


def test_line_fed_byte_by_byte_is_not_rescanned(monkeypatch: pytest.MonkeyPatch) -> None:
    joins = count_joins(monkeypatch)
    parser = RespParser(inline_allowed=True)
    line = b"SET key " + b"v" * 5000 + b"\r\n"
    for byte in line:
        parser.receive_data(bytes((byte,)))
        command = parser.next_command()
    assert command == [b"SET", b"key", b"v" * 5000]
    assert len(joins) <= 3


def test_many_args_in_small_chunks_keep_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    joins = count_joins(monkeypatch)
    args = [b"%d" % n for n in range(2000)]
    data = b"*2000\r\n" + b"".join(b"$%d\r\n%b\r\n" % (len(arg), arg) for arg in args)
    parser = RespParser(inline_allowed=False)
    for start in range(0, len(data), 7):
        parser.receive_data(data[start : start + 7])
        command = parser.next_command()
    assert command == args
    # The command's state is kept between calls: each join copies a short
    # unparsed tail plus the new chunk, never the command from its start.
    assert max(joins) <= 32


# -- encoder ----------------------------------------------------------------

ENCODE_CASES = [
    (OK, b"+OK\r\n", b"+OK\r\n"),
    (PONG, b"+PONG\r\n", b"+PONG\r\n"),
    (QUEUED, b"+QUEUED\r\n", b"+QUEUED\r\n"),
    (SimpleString("OK"), b"+OK\r\n", b"+OK\r\n"),
    (SimpleString("a\r\nb"), b"+a  b\r\n", b"+a  b\r\n"),
    (Error("ERR syntax error"), b"-ERR syntax error\r\n", b"-ERR syntax error\r\n"),
    (Error("ERR bad\nthing\r"), b"-ERR bad thing \r\n", b"-ERR bad thing \r\n"),
    (b"", b"$0\r\n\r\n", b"$0\r\n\r\n"),
    (b"a\r\nb", b"$4\r\na\r\nb\r\n", b"$4\r\na\r\nb\r\n"),
    (b"x" * 1500, b"$1500\r\n" + b"x" * 1500 + b"\r\n", b"$1500\r\n" + b"x" * 1500 + b"\r\n"),
    (bytearray(b"ab"), b"$2\r\nab\r\n", b"$2\r\nab\r\n"),
    ("h\u00e9", b"$3\r\nh\xc3\xa9\r\n", b"$3\r\nh\xc3\xa9\r\n"),
    (0, b":0\r\n", b":0\r\n"),
    (1023, b":1023\r\n", b":1023\r\n"),
    (1024, b":1024\r\n", b":1024\r\n"),
    (-5, b":-5\r\n", b":-5\r\n"),
    (2**63 - 1, b":9223372036854775807\r\n", b":9223372036854775807\r\n"),
    (None, b"$-1\r\n", b"_\r\n"),
    (NullArray(), b"*-1\r\n", b"_\r\n"),
    ([], b"*0\r\n", b"*0\r\n"),
    (
        [b"a", 1, None, [b"b", OK]],
        b"*4\r\n$1\r\na\r\n:1\r\n$-1\r\n*2\r\n$1\r\nb\r\n+OK\r\n",
        b"*4\r\n$1\r\na\r\n:1\r\n_\r\n*2\r\n$1\r\nb\r\n+OK\r\n",
    ),
    (
        Map([(b"k", b"v"), (b"n", 1)]),
        b"*4\r\n$1\r\nk\r\n$1\r\nv\r\n$1\r\nn\r\n:1\r\n",
        b"%2\r\n$1\r\nk\r\n$1\r\nv\r\n$1\r\nn\r\n:1\r\n",
    ),
    (Map([]), b"*0\r\n", b"%0\r\n"),
    (Set([b"a", 2]), b"*2\r\n$1\r\na\r\n:2\r\n", b"~2\r\n$1\r\na\r\n:2\r\n"),
    (Double(1.5), b"$3\r\n1.5\r\n", b",1.5\r\n"),
    (Double(3.0), b"$1\r\n3\r\n", b",3\r\n"),
    (Double(math.inf), b"$3\r\ninf\r\n", b",inf\r\n"),
    (Double(-math.inf), b"$4\r\n-inf\r\n", b",-inf\r\n"),
    (Double(math.nan), b"$3\r\nnan\r\n", b",nan\r\n"),
    (2.5, b"$3\r\n2.5\r\n", b",2.5\r\n"),
    (Bool(True), b":1\r\n", b"#t\r\n"),
    (Bool(False), b":0\r\n", b"#f\r\n"),
    (Verbatim("txt", b"hi\r\n"), b"$4\r\nhi\r\n\r\n", b"=8\r\ntxt:hi\r\n\r\n"),
    (Verbatim("mkd", b""), b"$0\r\n\r\n", b"=4\r\nmkd:\r\n"),
]


@pytest.mark.parametrize(("reply", "resp2", "resp3"), ENCODE_CASES)
def test_encode_reply(reply: object, resp2: bytes, resp3: bytes) -> None:
    assert encode_reply(reply, 2) == resp2
    assert encode_reply(reply, 3) == resp3
    for protocol, expected in ((2, resp2), (3, resp3)):
        out = bytearray(b"prefix")
        encode_reply_into(out, reply, protocol)
        assert out == b"prefix" + expected
        # Each encoding is exactly one well-formed reply.
        assert parse_reply(expected)[1] == len(expected)


def test_encoded_replies_decode_back() -> None:
    reply = [b"k", Map([(b"f", Set([1, Double(0.5)]))]), Bool(True), Verbatim("txt", b"v")]
    value, _ = parse_reply(encode_reply(reply, 3))
    assert value == [
        b"k",
        ("map", [(b"f", ("set", [1, ("double", "0.5")]))]),
        ("bool", True),
        ("verbatim", "txt", b"v"),
    ]
    assert parse_reply(encode_reply(reply, 2))[0] == [b"k", [b"f", [1, b"0.5"]], 1, b"v"]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.5, b"1.5"),
        (0.1, b"0.1"),
        (-2.25, b"-2.25"),
        (3.0, b"3"),
        (-0.0, b"-0"),
        (0.0, b"0"),
        (float(2**62), b"4611686018427387904"),
        # Beyond double2ll's range fpconv writes the shortest digits, padded
        # with zeros while the exponent stays small, else in e-notation.
        (float(2**63), b"9223372036854776000"),
        (1e20, b"1e+20"),
        (1e25, b"1e+25"),
        (1.5e-7, b"1.5e-7"),
        (1e-5, b"0.00001"),
        (123456.789, b"123456.789"),
        (1.7976931348623157e308, b"1.7976931348623157e+308"),
        (5e-324, b"5e-324"),
    ],
)
def test_format_double_like_redis(value: float, text: bytes) -> None:
    assert format_double(value) == text
    if math.isfinite(value):
        assert float(text) == value


@pytest.mark.parametrize("reply", [True, object(), (b"a",), {b"k": b"v"}])
def test_encode_rejects_unknown_values(reply: object) -> None:
    with pytest.raises(TypeError):
        encode_reply(reply, 2)


def test_no_reply_sends_nothing_and_only_as_a_whole_reply() -> None:
    assert encode_reply(NoReply(), 2) == b""
    out = bytearray(b"x")
    encode_reply_into(out, NoReply(), 3)
    assert out == b"x"
    with pytest.raises(TypeError):
        encode_reply([b"a", NoReply()], 2)
    with pytest.raises(TypeError):
        encode_reply(Map([(b"k", NoReply())]), 3)


def test_encode_rejects_unknown_protocol_and_bad_verbatim() -> None:
    with pytest.raises(ValueError):
        encode_reply([b"a"], 4)
    with pytest.raises(ValueError):
        encode_reply(Verbatim("text", b"x"), 3)


def test_module_constants_have_units() -> None:
    assert resp.MAX_BULK_BYTES == 512 * 1024 * 1024
    assert resp.MAX_INLINE_BYTES == 64 * 1024
    assert resp.MAX_QUERY_BUFFER_BYTES == 1024 * 1024 * 1024


# --- the split fast path must accept exactly what the general parser does ---


@pytest.mark.parametrize(
    "payloads",
    [
        [[b"GET", b"k"], [b"SET", b"k", b"a\r\nb"], [b"GET", b"x\r\n"]],
        [[b"SET", b"k", b"\r\n"], [b"DEL", b"a", b"b", b"c", b"d"]],
        [[b"SET", b"k", b""], [b"PING"]],
        [[b"X" * 20000, b"y"]],  # a length beyond the fast path's header table
    ],
)
def test_split_fast_path_agrees_with_general_parser(payloads):
    wire = b"".join(
        b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args) for args in payloads
    )
    parser = RespParser(inline_allowed=False)
    parser.receive_data(wire)
    assert parser.next_commands(100) == payloads


@pytest.mark.parametrize(
    "wire, message",
    [
        (b"*2\r\n$3\r\nGET\r\n$03\r\nabc\r\n", None),  # non-canonical length: general parser decides
        (b"*2\r\n$3\r\nGET\r\n$2\r\nabc\r\n", "Protocol error: expected CRLF after bulk payload"),
        (b"*2\r\n$3\r\nGET\r\n$4\r\nabc\r\n*1\r\n$4\r\nPING\r\n", "Protocol error: expected CRLF after bulk payload"),
    ],
)
def test_split_fast_path_leaves_odd_input_to_general_parser(wire, message):
    general = RespParser(inline_allowed=False)
    for byte in wire:  # byte by byte: never on the fast path's whole-command route
        general.receive_data(bytes([byte]))
    whole = RespParser(inline_allowed=False)
    whole.receive_data(wire)

    def outcome(parser):
        try:
            return parser.next_commands(100)
        except RespProtocolError as error:
            return error.message

    assert outcome(whole) == outcome(general)
    if message is not None:
        assert outcome(whole) == message


def test_a_backlog_bigger_than_the_fast_path_window_parses_exactly() -> None:
    # A client that wrote a pipeline while its replies waited leaves MiBs of
    # commands in the buffer; the fast path takes them a window at a time,
    # and the window cuts commands, CRLFs and payloads anywhere.
    rng = random.Random(8)
    commands = []
    for i in range(30_000):
        shape = rng.random()
        if shape < 0.4:
            commands.append([b"GET", b"key:%d" % i])
        elif shape < 0.8:
            commands.append([b"SET", b"key:%d" % i, b"v" * rng.randrange(0, 300)])
        elif shape < 0.95:
            commands.append([b"SET", b"crlf", b"a\r\nb" * rng.randrange(1, 5)])
        else:
            commands.append([b"MSET"] + [b"x" * rng.randrange(0, 20_000) for _ in range(4)])
    data = b"".join(b"*%d\r\n" % len(c) + b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in c) for c in commands)
    for limit in (1, 7, 1024):
        parser = RespParser(inline_allowed=False)
        parser.receive_data(data[: len(data) // 2])
        got = []
        while batch := parser.next_commands(limit):
            assert len(batch) <= limit
            got.extend(batch)
        parser.receive_data(data[len(data) // 2 :])
        while batch := parser.next_commands(limit):
            got.extend(batch)
        assert got == commands
        assert parser.buffered_bytes == 0
