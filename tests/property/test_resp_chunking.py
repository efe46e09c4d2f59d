"""The RESP parser's result does not depend on how the bytes are chunked, and
arbitrary bytes only ever yield commands, NEED_DATA/CLOSED or a protocol error."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from trio_kv.protocol.resp import CLOSED, NEED_DATA, RespParser, RespProtocolError

commands_strategy = st.lists(
    st.lists(st.binary(max_size=40), min_size=1, max_size=6),
    max_size=8,
)
# Bytes that steer random input into the parser's interesting paths.
protocol_bytes = st.binary(max_size=200) | st.lists(
    st.sampled_from([b"*", b"$", b"\r\n", b"\r", b"\n", b"0", b"1", b"3", b"-", b"12", b'"', b"'", b" ", b"\\x4", b"ab"]),
    max_size=80,
).map(b"".join)


def encode_command(args: list[bytes]) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%b\r\n" % (len(arg), arg) for arg in args)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts} | {0, len(data)})
    return [data[start:stop] for start, stop in zip(points, points[1:])]


def feed(
    parser: RespParser, chunks: list[bytes], limits: list[int]
) -> tuple[list[list[bytes]], str | None]:
    """Feed chunks then EOF, draining with next_commands after each; return
    the commands and the protocol error message, if any."""
    commands: list[list[bytes]] = []
    limit_index = 0
    try:
        for chunk in [*chunks, b""]:
            parser.receive_data(chunk)
            while True:
                limit = limits[limit_index % len(limits)] if limits else 1
                limit_index += 1
                batch = parser.next_commands(limit)
                assert len(batch) <= limit
                if not batch:
                    break
                commands.extend(batch)
        assert parser.next_command() is CLOSED
    except RespProtocolError as exc:
        assert exc.reply_bytes().startswith(b"-ERR Protocol error: ")
        assert exc.reply_bytes().count(b"\r\n") == 1
        return commands, exc.message
    return commands, None


@settings(max_examples=150, deadline=None)
@given(
    commands=commands_strategy,
    cuts=st.lists(st.integers(min_value=0), max_size=20),
    limits=st.lists(st.integers(min_value=1, max_value=4), max_size=5),
    blank_lines=st.booleans(),
    inline_allowed=st.booleans(),
)
def test_any_chunking_parses_the_same_commands(
    commands: list[list[bytes]], cuts: list[int], limits: list[int], blank_lines: bool, inline_allowed: bool
) -> None:
    separator = b"\r\n" if blank_lines else b""
    data = b"".join(separator + encode_command(args) for args in commands)
    parser = RespParser(inline_allowed=inline_allowed)
    assert feed(parser, split(data, cuts), limits) == (commands, None)


@settings(max_examples=150, deadline=None)
@given(data=protocol_bytes, cuts=st.lists(st.integers(min_value=0), max_size=10), inline_allowed=st.booleans())
def test_chunking_does_not_change_the_outcome(data: bytes, cuts: list[int], inline_allowed: bool) -> None:
    whole = feed(RespParser(inline_allowed=inline_allowed), [data], [1000])
    chunked = feed(RespParser(inline_allowed=inline_allowed), split(data, cuts), [1, 3])
    assert chunked == whole


@settings(max_examples=200, deadline=None)
@given(
    data=protocol_bytes,
    cuts=st.lists(st.integers(min_value=0), max_size=10),
    inline_allowed=st.booleans(),
    max_bulk_bytes=st.integers(min_value=0, max_value=20),
    max_inline_bytes=st.integers(min_value=1, max_value=20),
    max_query_buffer_bytes=st.integers(min_value=1, max_value=60),
)
def test_random_bytes_only_yield_commands_or_protocol_errors(
    data: bytes,
    cuts: list[int],
    inline_allowed: bool,
    max_bulk_bytes: int,
    max_inline_bytes: int,
    max_query_buffer_bytes: int,
) -> None:
    parser = RespParser(
        inline_allowed=inline_allowed,
        max_bulk_bytes=max_bulk_bytes,
        max_inline_bytes=max_inline_bytes,
        max_query_buffer_bytes=max_query_buffer_bytes,
    )
    # Any other exception propagates and fails the test.
    commands, _ = feed(parser, split(data, cuts), [1, 2])
    for command in commands:
        assert command and all(type(arg) is bytes for arg in command)


@settings(max_examples=100, deadline=None)
@given(commands=commands_strategy, junk=st.sampled_from([b"*x\r\n", b"*1\r\nfoo\r\n", b"*1\r\n$1\r\nab\r\n"]))
def test_commands_before_an_error_are_returned_first(commands: list[list[bytes]], junk: bytes) -> None:
    parser = RespParser(inline_allowed=False)
    parser.receive_data(b"".join(encode_command(args) for args in commands) + junk)
    parsed, error = feed(parser, [], [len(commands) + 5])
    assert parsed == commands
    assert error is not None


def test_need_data_until_the_last_byte() -> None:
    data = encode_command([b"SET", b"key", b"value"])
    parser = RespParser(inline_allowed=True)
    for byte in data[:-1]:
        parser.receive_data(bytes((byte,)))
        assert parser.next_command() is NEED_DATA
    parser.receive_data(data[-1:])
    assert parser.next_command() == [b"SET", b"key", b"value"]
