"""Properties of the line protocol: chunking never changes what is parsed,
garbage only ever yields commands or protocol errors, the tokenizer matches a
direct port of Redis's ``sdssplitargs``, and ``escape_value`` round-trips."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from trio_kv.protocol.text import (
    CLOSED,
    NEED_DATA,
    TextParser,
    TextProtocolError,
    decode_display,
    escape_value,
    tokenize,
)

SETTINGS = settings(max_examples=200, deadline=None)

# --- an encoder for request tokens, independent of escape_value ---------------

_BARE_FORBIDDEN = b" \t\n\r\"'"
_NAMED = {0x0A: b"\\n", 0x0D: b"\\r", 0x09: b"\\t", 0x08: b"\\b", 0x07: b"\\a"}
# Bytes that stand for themselves after a backslash (x would start \xHH).
_SELF_ESCAPING = frozenset((string.ascii_letters + string.digits + " '").encode()) - set(
    b"nrtbax"
)


def _can_be_bare(token: bytes) -> bool:
    # A leading \v or \f would be skipped as whitespace.
    return bool(token) and token[0] not in b"\x0b\x0c" and not any(
        byte in _BARE_FORBIDDEN for byte in token
    )


def _double_quoted(token: bytes, style: str, upper_hex: bool) -> bytes:
    out = bytearray(b'"')
    for byte in token:
        if style == "hex":
            out += (b"\\x%02X" if upper_hex else b"\\x%02x") % byte
        elif byte in b'"\\':
            out += b"\\" + bytes((byte,))
        elif byte == 0x0A:
            out += b"\\n"
        elif style == "named" and byte in _NAMED:
            out += _NAMED[byte]
        elif style == "named" and byte in _SELF_ESCAPING:
            out += b"\\" + bytes((byte,))
        else:
            out.append(byte)
    return bytes(out + b'"')


@st.composite
def encoded_tokens(draw: st.DrawFn) -> tuple[bytes, bytes, bool]:
    """(token, its encoding, whether the encoding is bare)."""
    token = draw(st.binary(max_size=12) | st.text(max_size=6).map(str.encode))
    styles = ["minimal", "hex", "named"]
    if _can_be_bare(token):
        styles.append("bare")
    if b"\n" not in token and not token.endswith(b"\\"):
        styles.append("single")
    style = draw(st.sampled_from(styles))
    if style == "bare":
        return token, token, True
    if style == "single":
        return token, b"'" + token.replace(b"'", b"\\'") + b"'", False
    # Optionally bare bytes first, then the quoted rest (`ab"c d"`).
    split = draw(st.integers(0, len(token)))
    prefix = token[:split] if _can_be_bare(token[:split]) else b""
    quoted = _double_quoted(token[len(prefix) :], style, draw(st.booleans()))
    return token, prefix + quoted, False


@st.composite
def request_lines(draw: st.DrawFn) -> tuple[list[bytes], bytes]:
    """(command tokens, the encoded line without its terminator)."""
    parts = draw(st.lists(encoded_tokens(), min_size=1, max_size=5))
    encoded = bytearray(draw(st.sampled_from([b"", b" ", b"\t", b"\x0b", b" \x0c"])))
    for index, (_, text, _) in enumerate(parts):
        if index:
            # After a bare token only space, tab (or CR) ends it.
            encoded += draw(st.sampled_from([b" ", b"\t", b"  \t"]))
        encoded += text
    encoded += draw(st.sampled_from([b"", b" ", b"\t ", b" \x0c"]))
    return [token for token, _, _ in parts], bytes(encoded)


@st.composite
def pipelines(draw: st.DrawFn) -> tuple[list[list[bytes]], bytes]:
    commands: list[list[bytes]] = []
    data = bytearray()
    for tokens, text in draw(st.lists(request_lines(), max_size=8)):
        data += draw(st.sampled_from([b"", b"", b"\n", b" \r\n", b"\t\n"]))  # blank lines
        data += text + draw(st.sampled_from([b"\n", b"\r\n"]))
        commands.append(tokens)
    if draw(st.booleans()):
        tokens, text = draw(request_lines())
        data += text  # unterminated: EOF ends it
        commands.append(tokens)
    return commands, bytes(data)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    return [data[start:end] for start, end in zip(points, points[1:])]


def run(parser: TextParser, chunks: list[bytes], limits: list[int]) -> tuple[list, object]:
    """Feed chunks then EOF, taking commands after every chunk with a mix of
    next_command and next_commands; returns (commands, CLOSED or reason)."""
    commands: list[list[bytes]] = []
    limit_index = 0
    for chunk in [*chunks, b""]:
        parser.receive_data(chunk)
        while True:
            limit = limits[limit_index % len(limits)] if limits else 0
            limit_index += 1
            try:
                if limit:
                    batch = parser.next_commands(limit)
                    assert len(batch) <= limit
                    if not batch:
                        break
                    commands += batch
                    continue
                result = parser.next_command()
            except TextProtocolError as error:
                assert error.close
                with_same_reason(parser, error.reason)
                return commands, error.reason
            if result is NEED_DATA:
                break
            if result is CLOSED:
                assert parser.closed
                return commands, CLOSED
            commands.append(result)
    assert parser.closed
    assert parser.next_command() is CLOSED
    return commands, CLOSED


def with_same_reason(parser: TextParser, reason: str) -> None:
    """A dead parser keeps raising its error."""
    try:
        parser.next_command()
    except TextProtocolError as error:
        assert error.reason == reason
    else:
        raise AssertionError("a dead parser returned a result")


@SETTINGS
@given(
    pipeline=pipelines(),
    cuts=st.lists(st.integers(0, 10_000), max_size=20),
    limits=st.lists(st.integers(0, 4), max_size=4),
)
def test_valid_commands_parse_the_same_in_any_chunking(
    pipeline: tuple[list[list[bytes]], bytes], cuts: list[int], limits: list[int]
) -> None:
    commands, data = pipeline
    assert run(TextParser(), chunked(data, cuts), limits) == (commands, CLOSED)


_NOISE = st.lists(
    st.sampled_from(
        [b"a", b"GET", b"x4", b"F", b" ", b"\t", b"\r", b"\n", b"\r\n", b'"', b"'", b"\\", b"\x0b",
         b"\x00", b"\xff"]
    ),
    max_size=60,
).map(b"".join)


@SETTINGS
@given(
    data=_NOISE | st.binary(max_size=80),
    cuts=st.lists(st.integers(0, 10_000), max_size=20),
    limits=st.lists(st.integers(0, 4), max_size=4),
    max_line_bytes=st.integers(1, 24),
)
def test_any_bytes_in_any_chunking_give_commands_or_a_protocol_error(
    data: bytes, cuts: list[int], limits: list[int], max_line_bytes: int
) -> None:
    whole = run(TextParser(max_line_bytes=max_line_bytes), [data], [])
    pieces = run(TextParser(max_line_bytes=max_line_bytes), chunked(data, cuts), limits)
    assert pieces == whole
    commands, _ = whole
    for command in commands:
        assert command and all(type(token) is bytes for token in command)


# --- an oracle: Redis's sdssplitargs, ported line by line --------------------

_ISSPACE = b" \t\n\r\x0b\x0c"
_HEX = b"0123456789abcdefABCDEF"
_C_ESCAPES = {ord("n"): 0x0A, ord("r"): 0x0D, ord("t"): 0x09, ord("b"): 0x08, ord("a"): 0x07}


def sdssplitargs(line: bytes) -> list[bytes] | None:
    """Redis's sds.c splitter, with the end of ``line`` as C's NUL (a NUL
    byte inside is ordinary here). None is Redis's error return."""

    def at(index: int) -> int | None:
        return line[index] if index < len(line) else None

    p = 0
    vector: list[bytes] = []
    while True:
        while at(p) is not None and at(p) in _ISSPACE:
            p += 1
        if at(p) is None:
            return vector
        inq = insq = done = False
        current = bytearray()
        while not done:
            c = at(p)
            if inq:
                if c == 0x5C and at(p + 1) == ord("x") and at(p + 2) is not None and at(
                    p + 2
                ) in _HEX and at(p + 3) is not None and at(p + 3) in _HEX:
                    current.append(int(line[p + 2 : p + 4], 16))
                    p += 3
                elif c == 0x5C and at(p + 1) is not None:
                    p += 1
                    current.append(_C_ESCAPES.get(line[p], line[p]))
                elif c == ord('"'):
                    following = at(p + 1)
                    if following is not None and following not in _ISSPACE:
                        return None
                    done = True
                elif c is None:
                    return None
                else:
                    current.append(c)
            elif insq:
                if c == 0x5C and at(p + 1) == ord("'"):
                    p += 1
                    current.append(ord("'"))
                elif c == ord("'"):
                    following = at(p + 1)
                    if following is not None and following not in _ISSPACE:
                        return None
                    done = True
                elif c is None:
                    return None
                else:
                    current.append(c)
            elif c is None or c in b" \n\r\t":
                done = True
            elif c == ord('"'):
                inq = True
            elif c == ord("'"):
                insq = True
            else:
                current.append(c)
            if at(p) is not None:
                p += 1
        vector.append(bytes(current))


_LINE_NOISE = st.lists(
    st.sampled_from(
        [b"a", b"x", b"4", b"F", b"n", b" ", b"\t", b"\r", b"\n", b"\x0b", b"\x0c", b'"', b"'",
         b"\\", b"\\x", b"\x00", b"\xff"]
    ),
    max_size=30,
).map(b"".join)


@SETTINGS
@given(line=_LINE_NOISE | st.binary(max_size=30))
def test_tokenize_matches_sdssplitargs(line: bytes) -> None:
    expected = sdssplitargs(line)
    try:
        got = tokenize(line)
    except TextProtocolError as error:
        assert error.reason == "unbalanced quotes"
        assert expected is None
    else:
        assert got == expected


@SETTINGS
@given(line=request_lines())
def test_tokenize_decodes_the_encoder(line: tuple[list[bytes], bytes]) -> None:
    tokens, encoded = line
    assert tokenize(encoded) == tokens
    assert sdssplitargs(encoded) == tokens


# --- escape_value ---------------------------------------------------------------


@SETTINGS
@given(value=st.binary(max_size=40) | st.text(max_size=20).map(str.encode))
def test_escape_value_round_trips(value: bytes) -> None:
    escaped = escape_value(value)
    assert decode_display(escaped) == value
    assert not any(byte < 0x20 or byte == 0x7F for byte in escaped)
    if escaped.startswith(b'"'):
        # Quoted: one token that the request tokenizer decodes, so it can be
        # pasted back into a SET.
        assert tokenize(escaped) == [value]
        parser = TextParser()
        parser.receive_data(b"SET k " + escaped + b"\r\n")
        assert parser.next_command() == [b"SET", b"k", value]
    else:
        assert escaped == value  # a client taking the rest of the line gets it raw
