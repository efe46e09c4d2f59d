"""The parsers' buffer accounting matches the memory they really hold: a
bulk string that arrives a byte at a time costs about a byte per byte
(traced with tracemalloc), and ``buffered_bytes`` reports those bytes."""

from __future__ import annotations

import tracemalloc

from trio_kv.protocol.resp import RespParser
from trio_kv.protocol.text import TextParser

PAYLOAD_BYTES = 256 * 1024


def _traced_bytes_while(feed) -> int:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        keep = feed()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del keep
    return after - before


def test_a_bulk_string_arriving_a_byte_at_a_time_costs_about_a_byte_per_byte() -> None:
    def feed() -> RespParser:
        parser = RespParser(inline_allowed=False)
        parser.receive_data(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n" % PAYLOAD_BYTES)
        assert parser.next_commands(10) == []
        byte = b"x"
        for _ in range(PAYLOAD_BYTES):
            parser.receive_data(byte)
            # The connection asks after every receive; nothing is complete.
            assert parser.next_commands(10) == []
        return parser

    parser_cost = _traced_bytes_while(feed)
    # A bytes object per byte (the old list of chunks) cost ~50 bytes each.
    assert parser_cost < 2 * PAYLOAD_BYTES, parser_cost


def test_the_command_completes_after_byte_at_a_time_delivery() -> None:
    parser = RespParser(inline_allowed=False)
    parser.receive_data(b"*2\r\n$3\r\nGET\r\n$1000\r\n")
    assert parser.next_commands(10) == []
    for _ in range(1000):
        parser.receive_data(b"k")
        assert parser.next_commands(10) == []
    assert parser.buffered_bytes >= 1000
    parser.receive_data(b"\r")
    assert parser.next_commands(10) == []
    parser.receive_data(b"\n")
    assert parser.next_commands(10) == [[b"GET", b"k" * 1000]]
    assert parser.buffered_bytes == 0


def test_buffered_bytes_counts_unparsed_and_partial_bytes() -> None:
    parser = RespParser(inline_allowed=False)
    head = b"*2\r\n$3\r\nGET\r\n$10\r\nabc"
    parser.receive_data(head)
    assert parser.next_commands(10) == []
    assert parser.buffered_bytes == len(head)
    # Complete commands waiting to be asked for are unparsed bytes too.
    parser.receive_data(b"defghij\r\n" + b"*1\r\n$4\r\nPING\r\n")
    assert parser.buffered_bytes == len(head) + 9 + 14
    assert parser.next_commands(1) == [[b"GET", b"abcdefghij"]]
    assert parser.buffered_bytes == 14


def test_text_parser_buffered_bytes() -> None:
    parser = TextParser()
    parser.receive_data(b"GET a\nGET")
    assert parser.buffered_bytes == 9
    assert parser.next_commands(10) == [[b"GET", b"a"]]
    assert parser.buffered_bytes == 3


def test_text_parser_parses_a_big_backlog_a_window_at_a_time() -> None:
    # A client that kept writing while its replies waited: MiBs of lines.
    lines = [b"SET key:%d value:%d" % (i, i) for i in range(200_000)]
    parser = TextParser()
    parser.receive_data(b"\n".join(lines[:100_000]) + b"\n" + b"\r\n".join(lines[100_000:]))
    parser.receive_data(b"")
    got = []
    while batch := parser.next_commands(1024):
        # Parsed commands waiting in the parser stay within one window.
        assert len(parser._ready) < 20_000
        got.extend(batch)
    assert got == [line.split() for line in lines]
    assert parser.closed
