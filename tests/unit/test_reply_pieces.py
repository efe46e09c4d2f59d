"""Replies encoded in pieces (``encode_reply_pieces``, the text encoder's
``encode_text_reply_pieces``): the same bytes as the whole encoding, no
buffer much past the piece size, big values passed by reference."""

from __future__ import annotations

import pytest

from trio_kv.protocol import text
from trio_kv.protocol.replies import OK, Bool, Double, Error, Map, Set, SimpleString
from trio_kv.protocol.resp_encoder import LARGE_BULK_BYTES, encode_reply, encode_reply_pieces, is_streamed

BIG = b"b" * LARGE_BULK_BYTES

REPLIES = [
    [],
    [b"a", b"", None, 7, -3],
    [b"k%d" % i for i in range(10_000)],
    [BIG, b"small", [BIG, Double(2.5), Bool(False)], Error("ERR x")],
    Map([(b"field", BIG), (b"n", 1), (SimpleString("s"), [b"x"])]),
    Set([b"1", BIG, 3]),
    BIG,
]


def _pieces(reply: object, protocol: int, piece_bytes: int) -> tuple[list[bytes | bytearray | memoryview], bytearray]:
    pieces = []
    generator = encode_reply_pieces(bytearray(b"before"), reply, protocol, piece_bytes)
    while True:
        try:
            pieces.append(next(generator))
        except StopIteration as done:
            return pieces, done.value


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("piece_bytes", [1, 1000, 1 << 20])
@pytest.mark.parametrize("reply", REPLIES, ids=range(len(REPLIES)))
def test_pieces_join_to_the_whole_encoding(reply: object, protocol: int, piece_bytes: int) -> None:
    pieces, rest = _pieces(reply, protocol, piece_bytes)
    assert b"".join(bytes(piece) for piece in pieces) + rest == b"before" + encode_reply(reply, protocol)


def test_no_buffer_grows_much_past_the_piece_size() -> None:
    reply = [b"k" * 100] * 100_000  # 10.5 MB encoded
    pieces, rest = _pieces(reply, 2, 64 * 1024)
    assert len(pieces) > 100
    assert max(len(piece) for piece in pieces) < 64 * 1024 + 200


def test_a_big_value_is_yielded_by_reference() -> None:
    pieces, _ = _pieces([BIG, BIG], 2, 1 << 20)
    assert sum(piece is BIG for piece in pieces) == 2


def test_is_streamed_picks_containers_and_big_values() -> None:
    assert is_streamed([]) and is_streamed(Map([])) and is_streamed(Set([])) and is_streamed(BIG)
    assert not is_streamed(b"x") and not is_streamed(1) and not is_streamed(None) and not is_streamed(Error("e"))


def _text_pieces(out: bytes, reply: object, piece_bytes: int = 1 << 20) -> tuple[list, bytearray]:
    pieces = []
    generator = text.encode_text_reply_pieces(bytearray(out), reply, piece_bytes)
    while True:
        try:
            pieces.append(next(generator))
        except StopIteration as done:
            return pieces, done.value


def test_text_pieces_pass_a_big_reply_through() -> None:
    big = text.Labelled(b"VALUE", b"x" * text.LARGE_REPLY_BYTES)
    small = text.Labelled(b"VALUE", b"x" * (text.LARGE_REPLY_BYTES - 1))
    assert text.is_streamed(big) and not text.is_streamed(OK) and not text.is_streamed(Error("e"))
    assert not text.is_streamed(small) and not text.is_streamed(text.Labelled(b"TTL", 10**70))
    pieces, rest = _text_pieces(b"OK\n", big)
    assert pieces == [b"OK\n", text.encode_text_reply(big)] and rest == bytearray()
    pieces, rest = _text_pieces(b"OK\n", small)
    assert pieces == [] and rest == b"OK\n" + text.encode_text_reply(small)
    pieces, rest = _text_pieces(b"OK\n", Error("bad"))
    assert pieces == [] and rest == b"OK\nERROR bad\n"


def test_a_text_listing_is_sent_in_buffers() -> None:
    listing = text.Listing(b"KEYS", [b"key:%d" % i for i in range(10_000)])
    assert text.is_streamed(listing)
    pieces, rest = _text_pieces(b"OK\n", listing, piece_bytes=4096)
    assert b"".join(pieces) + rest == b"OK\n" + text.encode_text_reply(listing)
    assert len(pieces) > 10 and max(map(len, pieces)) < 4096 + 20
