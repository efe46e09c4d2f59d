"""The DUMP payload codec on bytes redis-server 7.0.15 wrote, and on broken ones.

The literal payloads below were captured from ``redis-cli DUMP`` on a
redis-server 7.0.15 (listpack hash, intset set, quicklist of an
LZF-compressed listpack, listpack sorted set, LZF string, 16-bit integer
string); tests/integration/test_dump_restore_vs_redis.py checks the same
live.
"""

from __future__ import annotations

import math
import struct

import pytest

from tests.rdb_builders import intset, listpack, payload, rdb_length, rdb_string, ziplist
from trio_kv.protocol.crc64 import crc64
from trio_kv.protocol.rdb_packed import PackedError, listpack_items, lzf_decompress, ziplist_items
from trio_kv.protocol.rdb_payload import (
    BadChecksum,
    BadData,
    HashObject,
    ListObject,
    SetObject,
    SortedSetObject,
    StringObject,
    decode_payload,
    encode_payload,
)

REDIS_HASH = (
    b"\x10\x1e\x1e\x00\x00\x00\x06\x00\x81a\x02\x01\x01\x81b\x02\x85hello\x06\x81n\x02\xf2\x90\xee\xfe\x04\xff"
    b"\n\x00\x96\x8a\xeb\x8f\xbbP\xdd\xde"
)
REDIS_INTSET = b"\x0b\x0e\x02\x00\x00\x00\x03\x00\x00\x00\x01\x00\x02\x00,\x01\n\x00\xe5\x10\xb2\x8e{\x95)\xaa"
REDIS_LIST = (
    b"\x12\x01\x02\xc3\x15@U\rU\x00\x00\x00\x03\x00\x81x\x02\x0c\x01\xe0Fy\xe0<\x00\x01H\xff\n\x00B7\xa8^\xb6\xd3\xecL"
)
REDIS_ZSET = b"\x11\x15\x15\x00\x00\x00\x04\x00\x81b\x02\xdf\xfe\x02\x81a\x02\x831.5\x04\xff\n\x00l5\x9d\xf63\xd0\x8b]"
REDIS_LZF_STRING = b"\x00\xc3\x0b<\x03abca\xe0-\x02\x01bc\n\x00o`)\xe4\xaf\xd7d\xac"
REDIS_INT_STRING = b"\x00\xc1\x7f\xff\n\x00\x17`\x82(T\x80\x84\x80"
REDIS_BAR = b"\x00\x03bar\n\x00\xe6\xbeI`\xeef\xfd\x17"


def test_crc64_is_redis_jones_crc() -> None:
    assert crc64(b"123456789") == 0xE9C6D914C4B8D9CA  # Redis' crc64.c test vector
    assert crc64(b"") == 0
    assert crc64(b"56789", crc64(b"1234")) == crc64(b"123456789")


def test_redis_server_payloads_decode() -> None:
    assert decode_payload(REDIS_HASH) == HashObject(((b"a", b"1"), (b"b", b"hello"), (b"n", b"-70000")))
    assert decode_payload(REDIS_INTSET) == SetObject((b"1", b"2", b"300"))
    assert decode_payload(REDIS_LIST) == ListObject((b"x", b"12", b"y" * 70))
    assert decode_payload(REDIS_ZSET) == SortedSetObject(((b"b", -2.0), (b"a", 1.5)))
    assert decode_payload(REDIS_LZF_STRING) == StringObject(b"abc" * 20)
    assert decode_payload(REDIS_INT_STRING) == StringObject(b"-129")


def test_strings_encode_as_redis_server_does() -> None:
    # Short canonical integers take Redis' integer encodings; the rest is raw.
    assert encode_payload(StringObject(b"bar")) == REDIS_BAR
    assert encode_payload(StringObject(b"-129")) == REDIS_INT_STRING
    for text in (b"0", b"127", b"-128", b"32767", b"2147483647", b"-2147483648"):
        assert encode_payload(StringObject(text))[1] >> 6 == 3, text
    for text in (b"2147483648", b"007", b"-0", b"+1", b" 1", b"12345678901"):
        assert encode_payload(StringObject(text))[1] >> 6 != 3, text


def test_plain_encodings_are_the_rdb_types_every_redis_loads() -> None:
    assert encode_payload(ListObject((b"a",)))[0] == 1
    assert encode_payload(SetObject((b"a",)))[0] == 2
    assert encode_payload(HashObject(((b"f", b"v"),)))[0] == 4
    assert encode_payload(SortedSetObject(((b"m", 1.0),)))[0] == 5


def test_footer_errors_are_bad_checksum() -> None:
    with pytest.raises(BadChecksum):
        decode_payload(b"short")
    with pytest.raises(BadChecksum):
        decode_payload(REDIS_BAR[:-1] + bytes([REDIS_BAR[-1] ^ 1]))
    with pytest.raises(BadChecksum):
        decode_payload(payload(0, rdb_string(b"bar"), version=11))
    # An earlier RDB version is accepted, as Redis does.
    assert decode_payload(payload(0, rdb_string(b"bar"), version=9)) == StringObject(b"bar")


@pytest.mark.parametrize(
    "kind, body",
    [
        (0, b""),  # no string at all
        (0, b"\x40\x40abc"),  # runs past the whole payload
        (1, b"\x00"),  # empty list
        (2, rdb_length(2) + rdb_string(b"a") + rdb_string(b"a")),  # duplicate member
        (4, rdb_length(2) + rdb_string(b"f") + rdb_string(b"1") + rdb_string(b"f") + rdb_string(b"2")),
        (5, rdb_length(1) + rdb_string(b"m") + struct.pack("<d", math.nan)),  # NaN score
        (3, rdb_length(1) + rdb_string(b"m") + b"\x03abc"),  # unparsable text score
        (15, b"\x00"),  # a stream
        (7, b"\x00"),  # a module value
        (9, rdb_string(b"\x00\xff")),  # a zipmap
        (16, rdb_string(listpack([b"f", b"v", b"g"]))),  # odd pairs
        (16, rdb_string(listpack([b"f", b"v", b"f", b"w"]))),  # duplicate field
        (11, rdb_string(intset([1, 2])[:-1])),  # intset cut short
        (11, rdb_string(b"\x02\x00\x00\x00\x02\x00\x00\x00\x02\x00\x01\x00")),  # not ascending
        (18, rdb_length(1) + rdb_length(3) + rdb_string(b"x")),  # unknown container
        (0, b"\xc3\x02\x05ab"),  # LZF that does not decompress to 5 bytes
    ],
)
def test_bad_objects_are_bad_data(kind: int, body: bytes) -> None:
    with pytest.raises(BadData):
        decode_payload(payload(kind, body))


def test_older_encodings_decode() -> None:
    items = [b"a", b"0", b"12", b"13", b"-1", b"300", b"-70000", b"9223372036854775807", b"x" * 100, b"y" * 20000]
    assert decode_payload(payload(10, rdb_string(ziplist(items)))) == ListObject(tuple(items))
    assert decode_payload(payload(14, rdb_length(2) + rdb_string(ziplist(items[:3])) + rdb_string(ziplist(items[3:])))) == (
        ListObject(tuple(items))
    )
    assert decode_payload(payload(13, rdb_string(ziplist([b"f", b"1", b"g", b"x" * 70])))) == HashObject(
        ((b"f", b"1"), (b"g", b"x" * 70))
    )
    assert decode_payload(payload(12, rdb_string(ziplist([b"m", b"1", b"n", b"2.5"])))) == SortedSetObject(
        ((b"m", 1.0), (b"n", 2.5))
    )
    text_scores = rdb_length(3) + rdb_string(b"a") + b"\x032.5" + rdb_string(b"b") + b"\xfe" + rdb_string(b"c") + b"\xff"
    assert decode_payload(payload(3, text_scores)) == SortedSetObject(((b"a", 2.5), (b"b", math.inf), (b"c", -math.inf)))
    plain_node = rdb_length(2) + rdb_length(1) + rdb_string(b"big") + rdb_length(2) + rdb_string(listpack([b"s"]))
    assert decode_payload(payload(18, plain_node)) == ListObject((b"big", b"s"))


def test_listpack_and_ziplist_check_their_framing() -> None:
    good = listpack([b"a", b"5000", b"x" * 200])
    assert listpack_items(good) == [b"a", b"5000", b"x" * 200]
    for broken in (good[:-1], good[:-2] + b"\xff", b"\x00" + good[1:], good[:6] + b"\xf9" + good[7:]):
        with pytest.raises(PackedError):
            listpack_items(broken)
    zl = ziplist([b"a", b"5000", b"x" * 300])
    assert ziplist_items(zl) == [b"a", b"5000", b"x" * 300]
    for broken in (zl[:-1], zl[:4] + b"\x00\x00\x00\x00" + zl[8:], zl[:10] + b"\x07" + zl[11:]):
        with pytest.raises(PackedError):
            ziplist_items(broken)


def test_lzf_back_references_may_overlap() -> None:
    # A literal "ab", then a back reference of 6 at distance 2: "abababab".
    assert lzf_decompress(b"\x01ab\x80\x01", 8) == b"abababab"
    with pytest.raises(PackedError):
        lzf_decompress(b"\x01ab\x80\x05", 8)  # reaches before the start
