"""The line protocol's parser and encoders, driven with plain bytes (no sockets)."""

from __future__ import annotations

import pytest

from trio_kv.protocol.replies import OK, Error
from trio_kv.protocol.text import (
    CLOSED,
    MAX_LINE_BYTES,
    NEED_DATA,
    NOT_FOUND,
    Fields,
    Labelled,
    Listing,
    Table,
    TextParser,
    TextProtocolError,
    encode_error,
    encode_text_reply,
    decode_display,
    escape_value,
    line,
    tokenize,
    value_line,
)

UNBALANCED = "unbalanced quotes"
TOO_LONG = "line too long"


def drain(parser: TextParser) -> tuple[list[list[bytes]], object]:
    """Commands until the parser stops, and how it stopped: NEED_DATA,
    CLOSED or the error reason."""
    commands: list[list[bytes]] = []
    while True:
        try:
            result = parser.next_command()
        except TextProtocolError as error:
            assert error.close
            return commands, error.reason
        if result is NEED_DATA or result is CLOSED:
            return commands, result
        commands.append(result)


def parse(data: bytes, *, eof: bool = True, max_line_bytes: int = MAX_LINE_BYTES):
    parser = TextParser(max_line_bytes=max_line_bytes)
    parser.receive_data(data)
    if eof:
        parser.receive_data(b"")
    return drain(parser)


COMMAND_CASES = [
    # framing
    (b"PING\r\n", [[b"PING"]]),
    (b"PING\n", [[b"PING"]]),
    (b"SET k v\r\nGET k\nDEL k\r\n", [[b"SET", b"k", b"v"], [b"GET", b"k"], [b"DEL", b"k"]]),
    (b"get Key\n", [[b"get", b"Key"]]),  # case is the command layer's business
    (b"  GET \t k  \r\n", [[b"GET", b"k"]]),
    (b"\r\n\n \t \r\nPING\n\n", [[b"PING"]]),  # blank lines are skipped
    (b"GET k\rx\n", [[b"GET", b"k", b"x"]]),  # a lone CR separates, as in Redis
    (b"PING\r\r\n", [[b"PING"]]),
    # double quotes
    (b'SET k "a b"\n', [[b"SET", b"k", b"a b"]]),
    (b'"\\x41"\n', [[b"A"]]),
    (b'"\\xfF\\x00"\n', [[b"\xff\x00"]]),
    (b'"\\x4"\n', [[b"x4"]]),  # not two hex digits: \x is x
    (b'"\\xZZ"\n', [[b"xZZ"]]),
    (b'"\\n\\r\\t\\b\\a\\\\\\""\n', [[b"\n\r\t\b\a\\\""]]),
    (b'"\\q\\ \\\'"\n', [[b"q '"]]),  # unknown escapes stand for themselves
    (b'""\n', [[b""]]),
    (b'SET "" ""\n', [[b"SET", b"", b""]]),
    (b'ab"c d"\n', [[b"abc d"]]),  # bare bytes, then a quoted part
    (b'"a"\tb\n', [[b"a", b"b"]]),
    (b'"a"\x0bb\n', [[b"a", b"b"]]),  # any isspace may follow a closing quote
    (b'"caf\xc3\xa9 \'x\'"\n', [["café 'x'".encode()]]),
    # single quotes
    (b"SET k 'it\\'s'\n", [[b"SET", b"k", b"it's"]]),
    (b"'a\\b \\n'\n", [[b"a\\b \\n"]]),  # literal: only \' is special
    (b"'\\\\''\n", [[b"\\'"]]),
    (b"'a\"b'\n", [[b'a"b']]),
    # Redis's whitespace quirks: \v and \f separate only between tokens
    (b"a\x0bb\n", [[b"a\x0bb"]]),
    (b"\x0bGET\x0c k\x0c\n", [[b"GET\x0c", b"k\x0c"]]),
    (b"\x0b\x0c\n", []),
    # bytes are bytes
    (b"a\x00b \xff\n", [[b"a\x00b", b"\xff"]]),
    (b"back\\slash\n", [[b"back\\slash"]]),
]


@pytest.mark.parametrize(("data", "expected"), COMMAND_CASES)
def test_commands(data: bytes, expected: list[list[bytes]]) -> None:
    assert parse(data) == (expected, CLOSED)


@pytest.mark.parametrize(("data", "expected"), COMMAND_CASES)
def test_next_commands_agrees_with_next_command(data: bytes, expected: list[list[bytes]]) -> None:
    parser = TextParser()
    parser.receive_data(data)
    got = []
    while batch := parser.next_commands(2):
        assert 1 <= len(batch) <= 2
        got += batch
    assert got == expected
    assert not parser.closed
    parser.receive_data(b"")
    assert parser.next_commands(2) == []
    assert parser.closed


UNBALANCED_CASES = [
    b'SET k "abc\n',
    b'SET k "a"b\n',
    b"SET k 'abc\n",
    b"SET k 'a'b\n",
    b"SET k 'a\\'\n",  # the quote is escaped, so it never closes
    b'SET k "a\\"\n',
    b'SET k "abc\\\n',  # a trailing backslash escapes nothing
    b"a'b\n",
    b'a"\n',
    b'"\n',
    b'"a""b"\n',
]


@pytest.mark.parametrize("data", UNBALANCED_CASES)
def test_unbalanced_quotes(data: bytes) -> None:
    assert parse(data) == ([], UNBALANCED)
    with pytest.raises(TextProtocolError) as caught:
        tokenize(data.rstrip(b"\n"))
    assert caught.value.reason == UNBALANCED
    assert caught.value.close


def test_unbalanced_quotes_with_crlf() -> None:
    assert parse(b'SET k "abc\r\n') == ([], UNBALANCED)


LIMIT = 8

LENGTH_CASES = [
    (b"12345678\n", [[b"12345678"]], CLOSED),
    (b"12345678\r\n", [[b"12345678"]], CLOSED),
    (b"1234 678\r\nPING\n", [[b"1234", b"678"], [b"PING"]], CLOSED),
    (b"123456789\n", [], TOO_LONG),
    (b"123456789\r\n", [], TOO_LONG),
    (b"1234567\r\r\n", [[b"1234567"]], CLOSED),  # the first CR is content
    (b"12345678\r\r\n", [], TOO_LONG),
    (b"PING\n123456789\nPING\n", [[b"PING"]], TOO_LONG),
]


@pytest.mark.parametrize(("data", "commands", "end"), LENGTH_CASES)
def test_line_length(data: bytes, commands: list[list[bytes]], end: object) -> None:
    assert parse(data, max_line_bytes=LIMIT) == (commands, end)


@pytest.mark.parametrize(
    ("data", "end"),
    [
        (b"12345678", NEED_DATA),  # at the limit: may still end
        (b"12345678\r", NEED_DATA),  # the CR may start a CRLF
        (b"123456789", TOO_LONG),  # detected without a terminator
        (b"12345678\rx", TOO_LONG),
        (b"PING\n" + b"x" * 100, TOO_LONG),
    ],
)
def test_unterminated_line_length(data: bytes, end: object) -> None:
    _, got = parse(data, eof=False, max_line_bytes=LIMIT)
    assert got == end


def test_too_long_line_is_detected_piece_by_piece() -> None:
    parser = TextParser(max_line_bytes=LIMIT)
    for _ in range(LIMIT):
        parser.receive_data(b"x")
        assert parser.next_command() is NEED_DATA
    parser.receive_data(b"x")
    with pytest.raises(TextProtocolError) as caught:
        parser.next_command()
    assert (caught.value.reason, caught.value.close) == (TOO_LONG, True)


def test_default_limit_is_64_kib() -> None:
    assert MAX_LINE_BYTES == 64 * 1024
    assert parse(b"x" * MAX_LINE_BYTES + b"\r\n") == ([[b"x" * MAX_LINE_BYTES]], CLOSED)
    assert parse(b"x" * (MAX_LINE_BYTES + 1), eof=False) == ([], TOO_LONG)


@pytest.mark.parametrize(
    ("data", "commands", "end"),
    [
        (b"PING", [[b"PING"]], CLOSED),
        (b"PING\r", [[b"PING"]], CLOSED),
        (b"SET k v\nGET k", [[b"SET", b"k", b"v"], [b"GET", b"k"]], CLOSED),
        (b"k 'a b'", [[b"k", b"a b"]], CLOSED),
        (b"  \t", [], CLOSED),
        (b"", [], CLOSED),
        (b'SET k "a', [], UNBALANCED),
        (b"123456789", [], TOO_LONG),
    ],
)
def test_eof_ends_the_last_line(data: bytes, commands: list[list[bytes]], end: object) -> None:
    assert parse(data, max_line_bytes=LIMIT) == (commands, end)


def test_partial_line_waits_for_more_data() -> None:
    parser = TextParser()
    parser.receive_data(b"SET k 'a ")
    assert parser.next_command() is NEED_DATA
    assert parser.next_commands(10) == []
    assert not parser.closed
    parser.receive_data(b"b'\r")
    assert parser.next_command() is NEED_DATA
    parser.receive_data(b"\nPI")
    assert parser.next_command() == [b"SET", b"k", b"a b"]
    assert parser.next_command() is NEED_DATA
    parser.receive_data(b"NG\n")
    assert parser.next_command() == [b"PING"]
    assert parser.next_command() is NEED_DATA


def test_data_after_eof_is_a_bug() -> None:
    parser = TextParser()
    parser.receive_data(b"")
    with pytest.raises(RuntimeError):
        parser.receive_data(b"PING\n")


def test_next_commands_returns_earlier_commands_before_raising() -> None:
    parser = TextParser()
    parser.receive_data(b'A\nB 1\nSET k "x\nC\n')
    assert parser.next_commands(10) == [[b"A"], [b"B", b"1"]]
    for _ in range(2):  # the error is sticky: the parser is dead
        with pytest.raises(TextProtocolError) as caught:
            parser.next_commands(10)
        assert caught.value.reason == UNBALANCED
        with pytest.raises(TextProtocolError):
            parser.next_command()
    parser.receive_data(b"PING\n")  # discarded
    with pytest.raises(TextProtocolError):
        parser.next_commands(10)
    assert not parser.closed


def test_next_commands_keeps_order_across_a_limit() -> None:
    parser = TextParser()
    parser.receive_data(b"A\nB\nC\n'D\nE\n")
    assert parser.next_commands(2) == [[b"A"], [b"B"]]
    assert parser.next_command() == [b"C"]
    with pytest.raises(TextProtocolError):
        parser.next_command()


def test_next_commands_honours_the_limit() -> None:
    parser = TextParser()
    parser.receive_data(b"".join(b"GET k%d\r\n" % i for i in range(5)))
    sizes = []
    while batch := parser.next_commands(2):
        sizes.append(len(batch))
    assert sizes == [2, 2, 1]


def test_error_on_first_line_raises_at_once() -> None:
    parser = TextParser()
    parser.receive_data(b"'\nPING\n")
    with pytest.raises(TextProtocolError):
        parser.next_commands(10)


@pytest.mark.parametrize("bad", [0, -1])
def test_bad_limits(bad: int) -> None:
    with pytest.raises(ValueError):
        TextParser(max_line_bytes=bad)
    with pytest.raises(ValueError):
        TextParser().next_commands(bad)


def test_long_pipeline_in_small_chunks() -> None:
    data = b"".join(b"GET key:%06d\r\n" % i for i in range(2000))
    parser = TextParser(max_line_bytes=32)
    got = []
    for start in range(0, len(data), 7):
        parser.receive_data(data[start : start + 7])
        got += parser.next_commands(64)
    assert got == [[b"GET", b"key:%06d" % i] for i in range(2000)]


# --- encoders ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        (b"bar", b"bar"),
        (b"key:001-x", b"key:001-x"),
        (b"caf\xc3\xa9", b"caf\xc3\xa9"),  # UTF-8 stays raw
        (b"back\\slash", b"back\\slash"),
        (b"", b'""'),
        (b"a\r\nb", b'"a\\r\\nb"'),
        (b"\r", b'"\\r"'),
        (b"\n", b'"\\n"'),
        (b"tab\t", b'"tab\\t"'),
        (b"a b", b"a b"),  # spaces stay raw: the value is the rest of the line
        (b" lead", b" lead"),
        (b'"quoted"', b'"\\"quoted\\""'),  # a leading quote would look quoted
        (b"'x", b"'x"),
        (b"it's", b"it's"),
        (b'a\\"', b'a\\"'),
        (b'"', b'"\\""'),
        (b"\x00\x1b\x7f\x0b", b'"\\x00\\x1b\\x7f\\x0b"'),
    ],
)
def test_escape_value(value: bytes, escaped: bytes) -> None:
    assert escape_value(value) == escaped
    assert decode_display(escaped) == value
    if escaped.startswith(b'"'):
        assert tokenize(escaped) == [value]


def test_value_line() -> None:
    assert value_line(b"VALUE", b"bar") == b"VALUE bar\n"
    assert value_line(b"VALUE", b"a\nb") == b'VALUE "a\\nb"\n'


def test_line() -> None:
    assert line(b"KEYS 2") == b"KEYS 2\n"
    for bad in (b"a\nb", b"a\r"):
        with pytest.raises(ValueError):
            line(bad)


@pytest.mark.parametrize(
    ("reason", "encoded"),
    [
        ("unknown command", b"ERROR unknown command\n"),
        ("bad\r\nthing\n", b"ERROR bad  thing \n"),
        ("caf\u00e9", "ERROR café\n".encode()),
        ("\udcff", b"ERROR \\udcff\n"),
    ],
)
def test_encode_error(reason: str, encoded: bytes) -> None:
    assert encode_error(reason) == encoded


def test_encode_text_reply() -> None:
    assert encode_text_reply(OK) == b"OK\n"
    assert encode_text_reply(NOT_FOUND) == b"NOT_FOUND\n"
    assert encode_text_reply(Labelled(b"VALUE", b"a b")) == b"VALUE a b\n"
    assert encode_text_reply(Labelled(b"VALUE", b"a\nb")) == b'VALUE "a\\nb"\n'
    assert encode_text_reply(Labelled(b"TTL", -1)) == b"TTL -1\n"
    # Listed items are escaped and kept in the order given.
    assert encode_text_reply(Listing(b"KEYS", [b"b", b"", b"a"])) == b'KEYS 3\nb\n""\na\n'
    assert encode_text_reply(Listing(b"KEYS", [])) == b"KEYS 0\n"
    assert encode_text_reply(Fields((("gets", 1), ("keys", 20)))) == b"gets:1 keys:20\n"
    assert encode_text_reply(Table((Fields((("count", 2),), word=b"get"),))) == b"get count:2\nEND\n"
    assert encode_text_reply(Table(())) == b"END\n"
    assert encode_text_reply(Error("unknown command")) == b"ERROR unknown command\n"
    # Bytes are not a reply value: a handler never encodes.
    for wrong in (b"OK\n", "OK\n", None, 1, [b"KEYS 0\n"], ("x",)):
        with pytest.raises(TypeError):
            encode_text_reply(wrong)


def test_a_suppressed_reply_encodes_to_nothing() -> None:
    # CLIENT REPLY OFF|SKIP: the engine puts NO_REPLY where a reply was.
    from trio_kv.protocol.replies import NO_REPLY
    from trio_kv.protocol.resp_encoder import encode_reply

    assert encode_text_reply(NO_REPLY) == b""
    assert encode_reply(NO_REPLY, 2) == encode_reply(NO_REPLY, 3) == b""
