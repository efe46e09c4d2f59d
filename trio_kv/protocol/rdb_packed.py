"""Decoders for the packed blobs inside Redis RDB objects. No IO, decode only.

Redis stores small values as one string holding a packed structure; a DUMP
from redis-server 7.0 carries them as they are. Each function here takes
that blob and answers its elements as ``bytes`` (integers as their decimal
form, as Redis' ``lpGet`` / ``ziplistGet`` give them), or raises
``PackedError``:

* ``listpack_items``: Redis 7's listpack (``listpack.c``): a 6-byte header
  (total bytes, element count or 65535), entries of encoding + data +
  back-length, the byte 0xFF.
* ``ziplist_items``: the older ziplist (``ziplist.c``, RDB types 10, 12, 13
  and the nodes of type 14): a 10-byte header (total bytes, tail offset,
  count), entries of previous-length + encoding + data, the byte 0xFF.
* ``intset_items``: ``intset.c``: encoding (2, 4 or 8 bytes per integer),
  count, then the integers little-endian, strictly ascending.
* ``lzf_decompress``: ``lzf_d.c``, for RDB strings stored compressed.

Rules this module keeps:

* Validation is always the deep one (Redis' ``sanitize-dump-payload yes``):
  every header field, length, back-length and terminator is checked, so a
  blob either decodes whole or fails; nothing is read past its end.
* The caller checks what the structure means (pairs, duplicates, empty).
"""

from __future__ import annotations

from typing import Final


class PackedError(ValueError):
    """A packed blob is malformed."""


_LP_HEADER: Final = 6
_ZL_HEADER: Final = 10
_END: Final = 0xFF
_UNKNOWN_COUNT: Final = 65535


def _signed(data: bytes, start: int, size: int) -> int:
    return int.from_bytes(data[start : start + size], "little", signed=True)


def _take(blob: bytes, start: int, size: int) -> bytes:
    end = start + size
    if size < 0 or end > len(blob) - 1:  # never into or past the terminator
        raise PackedError("entry runs past the end")
    return blob[start:end]


def _backlen(entry_bytes: int) -> bytes:
    """Listpack's ``lpEncodeBacklen``: an entry's length, stored after it."""
    if entry_bytes <= 127:
        return bytes([entry_bytes])
    if entry_bytes < 16383:
        return bytes([entry_bytes >> 7, (entry_bytes & 127) | 128])
    if entry_bytes < 2097151:
        return bytes([entry_bytes >> 14, ((entry_bytes >> 7) & 127) | 128, (entry_bytes & 127) | 128])
    if entry_bytes < 268435455:
        return bytes(
            [entry_bytes >> 21, ((entry_bytes >> 14) & 127) | 128, ((entry_bytes >> 7) & 127) | 128,
             (entry_bytes & 127) | 128]
        )
    return bytes(
        [entry_bytes >> 28, ((entry_bytes >> 21) & 127) | 128, ((entry_bytes >> 14) & 127) | 128,
         ((entry_bytes >> 7) & 127) | 128, (entry_bytes & 127) | 128]
    )


# Listpack integer encodings past the one-byte ones: first byte -> data bytes.
_LP_INTS: Final = {0xF1: 2, 0xF2: 3, 0xF3: 4, 0xF4: 8}


def _listpack_entry(blob: bytes, pos: int) -> tuple[bytes, int]:
    """The element at ``pos`` and the entry's size before its back-length."""
    first = blob[pos]
    if first < 0x80:  # 0xxxxxxx: 7-bit unsigned integer
        return str(first).encode(), 1
    if first < 0xC0:  # 10xxxxxx: string of up to 63 bytes
        size = first & 0x3F
        return _take(blob, pos + 1, size), 1 + size
    if first < 0xE0:  # 110xxxxx yyyyyyyy: 13-bit signed integer
        value = ((first & 0x1F) << 8) | _take(blob, pos + 1, 1)[0]
        return str(value - 8192 if value >= 4096 else value).encode(), 2
    if first < 0xF0:  # 1110xxxx yyyyyyyy: string of up to 4095 bytes
        size = ((first & 0x0F) << 8) | _take(blob, pos + 1, 1)[0]
        return _take(blob, pos + 2, size), 2 + size
    if first == 0xF0:  # 32-bit string length
        size = int.from_bytes(_take(blob, pos + 1, 4), "little")
        return _take(blob, pos + 5, size), 5 + size
    width = _LP_INTS.get(first)
    if width is None:
        raise PackedError(f"listpack: invalid encoding byte {first:#x}")
    return str(_signed(_take(blob, pos + 1, width), 0, width)).encode(), 1 + width


def listpack_items(blob: bytes) -> list[bytes]:
    if len(blob) < _LP_HEADER + 1:
        raise PackedError("listpack: shorter than its header")
    if int.from_bytes(blob[0:4], "little") != len(blob):
        raise PackedError("listpack: header size differs from the blob's")
    if blob[-1] != _END:
        raise PackedError("listpack: no terminator")
    count = int.from_bytes(blob[4:6], "little")
    items: list[bytes] = []
    pos = _LP_HEADER
    end = len(blob) - 1
    while pos < end:
        if blob[pos] == _END:
            raise PackedError("listpack: terminator before the end")
        item, size = _listpack_entry(blob, pos)
        back = _backlen(size)
        if blob[pos + size : pos + size + len(back)] != back or pos + size + len(back) > end:
            raise PackedError("listpack: wrong back-length")
        items.append(item)
        pos += size + len(back)
    if count != _UNKNOWN_COUNT and count != len(items):
        raise PackedError("listpack: header count differs from the entries")
    return items


# Ziplist integer encodings: encoding byte -> data bytes.
_ZL_INTS: Final = {0xC0: 2, 0xD0: 4, 0xE0: 8, 0xF0: 3, 0xFE: 1}


def _ziplist_entry(blob: bytes, pos: int) -> tuple[bytes, int]:
    """The element whose encoding starts at ``pos``, and where the entry ends."""
    first = blob[pos]
    kind = first >> 6
    if kind == 0:
        size = first & 0x3F
        return _take(blob, pos + 1, size), pos + 1 + size
    if kind == 1:
        size = ((first & 0x3F) << 8) | _take(blob, pos + 1, 1)[0]
        return _take(blob, pos + 2, size), pos + 2 + size
    if kind == 2:
        size = int.from_bytes(_take(blob, pos + 1, 4), "big")
        return _take(blob, pos + 5, size), pos + 5 + size
    if 0xF1 <= first <= 0xFD:  # 1111xxxx: an immediate 0..12
        return str((first & 0x0F) - 1).encode(), pos + 1
    width = _ZL_INTS.get(first)
    if width is None:
        raise PackedError(f"ziplist: invalid encoding byte {first:#x}")
    return str(_signed(_take(blob, pos + 1, width), 0, width)).encode(), pos + 1 + width


def ziplist_items(blob: bytes) -> list[bytes]:
    if len(blob) < _ZL_HEADER + 1:
        raise PackedError("ziplist: shorter than its header")
    if int.from_bytes(blob[0:4], "little") != len(blob):
        raise PackedError("ziplist: header size differs from the blob's")
    if blob[-1] != _END:
        raise PackedError("ziplist: no terminator")
    tail = int.from_bytes(blob[4:8], "little")
    count = int.from_bytes(blob[8:10], "little")
    items: list[bytes] = []
    pos = _ZL_HEADER
    end = len(blob) - 1
    previous_size = 0
    last_start = _ZL_HEADER
    while pos < end:
        start = pos
        prevlen = blob[pos]
        if prevlen == 0xFE:
            prevlen = int.from_bytes(_take(blob, pos + 1, 4), "little")
            pos += 5
        else:
            pos += 1
        if prevlen != previous_size or pos >= end:
            raise PackedError("ziplist: wrong previous-entry length")
        item, pos = _ziplist_entry(blob, pos)
        items.append(item)
        previous_size = pos - start
        last_start = start
    if tail != last_start:
        raise PackedError("ziplist: wrong tail offset")
    if count != _UNKNOWN_COUNT and count != len(items):
        raise PackedError("ziplist: header count differs from the entries")
    return items


def intset_items(blob: bytes) -> list[bytes]:
    if len(blob) < 8:
        raise PackedError("intset: shorter than its header")
    width = int.from_bytes(blob[0:4], "little")
    count = int.from_bytes(blob[4:8], "little")
    if width not in (2, 4, 8):
        raise PackedError("intset: invalid encoding")
    if len(blob) != 8 + width * count:
        raise PackedError("intset: size differs from its count")
    values = [_signed(blob, 8 + i * width, width) for i in range(count)]
    if any(a >= b for a, b in zip(values, values[1:])):
        raise PackedError("intset: not strictly ascending")
    return [str(value).encode() for value in values]


def lzf_decompress(data: bytes, size: int) -> bytes:
    """``lzf_d.c``: exactly ``size`` bytes, or ``PackedError``."""
    out = bytearray()
    pos = 0
    end = len(data)
    while pos < end:
        control = data[pos]
        pos += 1
        if control < 32:  # a literal run of control + 1 bytes
            run = control + 1
            if pos + run > end or len(out) + run > size:
                raise PackedError("lzf: literal runs past the end")
            out += data[pos : pos + run]
            pos += run
            continue
        length = control >> 5
        if length == 7:
            if pos >= end:
                raise PackedError("lzf: cut short")
            length += data[pos]
            pos += 1
        if pos >= end:
            raise PackedError("lzf: cut short")
        distance = ((control & 0x1F) << 8) + data[pos] + 1
        pos += 1
        length += 2
        start = len(out) - distance
        if start < 0 or len(out) + length > size:
            raise PackedError("lzf: back reference out of range")
        if distance >= length:
            out += out[start : start + length]
        else:  # overlapping: the last `distance` bytes repeat
            period = bytes(out[start:])
            out += (period * (length // distance + 1))[:length]
    if len(out) != size:
        raise PackedError("lzf: wrong decompressed size")
    return bytes(out)
