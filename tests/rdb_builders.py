"""Test-only writers of the packed encodings trio_kv only reads (ziplist,
listpack, intset), so tests can build the payloads older or newer Redis
versions write. Checked against redis-server 7.0, which RESTOREs what they
build (tests/integration/test_dump_restore_vs_redis.py)."""

from __future__ import annotations

from trio_kv.protocol.crc64 import crc64
from trio_kv.protocol.integers import parse_integer


def rdb_length(size: int) -> bytes:
    if size < 64:
        return bytes([size])
    if size < 16384:
        return bytes([(size >> 8) | 0x40, size & 0xFF])
    return b"\x80" + size.to_bytes(4, "big")


def rdb_string(data: bytes) -> bytes:
    return rdb_length(len(data)) + data


def payload(kind: int, body: bytes, version: int = 10) -> bytes:
    """A DUMP payload: type byte, body, version, CRC-64."""
    data = bytes([kind]) + body + version.to_bytes(2, "little")
    return data + crc64(data).to_bytes(8, "little")


def _ziplist_entry(item: bytes, previous_size: int) -> bytes:
    prevlen = bytes([previous_size]) if previous_size < 254 else b"\xfe" + previous_size.to_bytes(4, "little")
    number = parse_integer(item)
    if number is not None:
        if 0 <= number <= 12:
            return prevlen + bytes([0xF1 + number])
        for code, width in ((0xFE, 1), (0xC0, 2), (0xF0, 3), (0xD0, 4), (0xE0, 8)):
            if -(1 << (8 * width - 1)) <= number < 1 << (8 * width - 1):
                return prevlen + bytes([code]) + number.to_bytes(width, "little", signed=True)
    if len(item) < 64:
        header = bytes([len(item)])
    elif len(item) < 16384:
        header = bytes([0x40 | (len(item) >> 8), len(item) & 0xFF])
    else:
        header = b"\x80" + len(item).to_bytes(4, "big")
    return prevlen + header + item


def ziplist(items: list[bytes]) -> bytes:
    entries = []
    previous = 0
    tail = 10
    offset = 10
    for item in items:
        entry = _ziplist_entry(item, previous)
        tail = offset
        offset += len(entry)
        previous = len(entry)
        entries.append(entry)
    body = b"".join(entries)
    total = 10 + len(body) + 1
    count = min(len(items), 65535)
    return total.to_bytes(4, "little") + tail.to_bytes(4, "little") + count.to_bytes(2, "little") + body + b"\xff"


def _backlen(size: int) -> bytes:
    """Redis' lpEncodeBacklen, written out independently of the decoder's:
    7 bits per byte, most significant first, every byte but the first with
    its top bit set, in as many bytes as Redis' thresholds say (note ``<``:
    16383 takes 3 bytes, with a leading 0)."""
    count = 1 if size <= 127 else next(n for n, limit in ((2, 16383), (3, 2097151), (4, 268435455), (5, 2**35)) if size < limit)
    groups = [(size >> (7 * (count - 1 - i))) & 127 for i in range(count)]
    return bytes([groups[0]] + [group | 128 for group in groups[1:]])


def _listpack_entry(item: bytes) -> bytes:
    number = parse_integer(item)
    if number is not None:
        if 0 <= number <= 127:
            encoded = bytes([number])
        elif -4096 <= number < 4096:
            value = number & 0x1FFF
            encoded = bytes([0xC0 | (value >> 8), value & 0xFF])
        else:
            for code, width in ((0xF1, 2), (0xF2, 3), (0xF3, 4), (0xF4, 8)):
                if -(1 << (8 * width - 1)) <= number < 1 << (8 * width - 1):
                    encoded = bytes([code]) + number.to_bytes(width, "little", signed=True)
                    break
    elif len(item) < 64:
        encoded = bytes([0x80 | len(item)]) + item
    elif len(item) < 4096:
        encoded = bytes([0xE0 | (len(item) >> 8), len(item) & 0xFF]) + item
    else:
        encoded = b"\xf0" + len(item).to_bytes(4, "little") + item
    return encoded + _backlen(len(encoded))


def listpack(items: list[bytes]) -> bytes:
    body = b"".join(_listpack_entry(item) for item in items)
    total = 6 + len(body) + 1
    return total.to_bytes(4, "little") + min(len(items), 65535).to_bytes(2, "little") + body + b"\xff"


def intset(values: list[int]) -> bytes:
    width = 2 if all(-(2**15) <= v < 2**15 for v in values) else 4 if all(-(2**31) <= v < 2**31 for v in values) else 8
    ordered = sorted(values)
    return (
        width.to_bytes(4, "little") + len(ordered).to_bytes(4, "little")
        + b"".join(v.to_bytes(width, "little", signed=True) for v in ordered)
    )
