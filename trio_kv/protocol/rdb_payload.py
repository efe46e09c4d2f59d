"""DUMP / RESTORE payloads in Redis 7.0's format. No IO.

A payload is Redis' ``createDumpPayload`` (``cluster.c``): one RDB object
(its type byte, then the object as ``rdbSaveObject`` writes it), then the
RDB version (2 bytes, little-endian, 10 for Redis 7.0), then the CRC-64/Jones
(``protocol.crc64``) of everything before it (8 bytes, little-endian).

``encode_payload(obj)`` writes the plain RDB encodings, which every Redis
since 2.x loads: a string (type 0; integer-encoded as ``rdbTryIntegerEncoding``
does for short canonical integers of 32 bits, else raw: never LZF-compressed),
a list (1), a set (2), a hash (4) and a sorted set with binary scores (5).

``decode_payload(payload)`` reads what redis-server 7.0 writes too: those,
sorted sets with text scores (3), strings stored as 8/16/32-bit integers or
LZF-compressed, and the packed encodings (``protocol.rdb_packed``): list
ziplist (10), intset (11), sorted set ziplist (12), hash ziplist (13), list
quicklist of ziplists (14), hash listpack (16), sorted set listpack (17) and
list quicklist of listpacks or plain nodes (18). Zipmaps (9), streams (15,
19) and module values (6, 7) raise ``BadData``.

Rules this module keeps:

* Errors are Redis': a payload shorter than 10 bytes, of a later RDB
  version or with a wrong checksum raises ``BadChecksum`` (``DUMP payload
  version or checksum are wrong``); anything else that does not decode
  raises ``BadData`` (``Bad data format``), including an empty value and a
  duplicate set member, hash field or sorted set member, and a NaN score.
  Validation is always deep (``sanitize-dump-payload yes``): a value
  decodes whole or not at all. As in Redis' ``restoreCommand``, the object
  is read from the whole payload: bytes after it are ignored, and an object
  that claims more bytes than come before the footer reads the footer's
  (the checksum already vouched for them).
* The objects are plain data in element order: a hash's pairs, a set's
  members, a sorted set's (member, score) pairs, as the payload holds them.
  ``decode_payload(encode_payload(obj)) == obj`` for every valid object.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Final

from .crc64 import crc64
from .integers import parse_integer
from .rdb_packed import PackedError, intset_items, listpack_items, lzf_decompress, ziplist_items

RDB_VERSION: Final = 10
FOOTER_BYTES: Final = 10

TYPE_STRING, TYPE_LIST, TYPE_SET, TYPE_ZSET, TYPE_HASH, TYPE_ZSET_2 = 0, 1, 2, 3, 4, 5
TYPE_LIST_ZIPLIST, TYPE_SET_INTSET, TYPE_ZSET_ZIPLIST, TYPE_HASH_ZIPLIST = 10, 11, 12, 13
TYPE_LIST_QUICKLIST, TYPE_HASH_LISTPACK, TYPE_ZSET_LISTPACK, TYPE_LIST_QUICKLIST_2 = 14, 16, 17, 18
QUICKLIST_PLAIN, QUICKLIST_PACKED = 1, 2

_DOUBLE = struct.Struct("<d")
_INT_ENCODINGS: Final = ((-(2**7), 2**7 - 1, 0, 1), (-(2**15), 2**15 - 1, 1, 2), (-(2**31), 2**31 - 1, 2, 4))
_ENC_LZF: Final = 3


class PayloadError(ValueError):
    """A RESTORE payload Redis would refuse."""


class BadChecksum(PayloadError):
    """Too short, a later RDB version, or a wrong CRC-64."""


class BadData(PayloadError):
    """The object does not decode."""


@dataclass(frozen=True, slots=True)
class StringObject:
    value: bytes


@dataclass(frozen=True, slots=True)
class ListObject:
    items: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class SetObject:
    members: tuple[bytes, ...]  # distinct


@dataclass(frozen=True, slots=True)
class SortedSetObject:
    entries: tuple[tuple[bytes, float], ...]  # distinct members, no NaN


@dataclass(frozen=True, slots=True)
class HashObject:
    pairs: tuple[tuple[bytes, bytes], ...]  # distinct fields


RdbObject = StringObject | ListObject | SetObject | SortedSetObject | HashObject


# --- encoding ------------------------------------------------------------------


def _length(size: int) -> bytes:
    """``rdbSaveLen``."""
    if size < 1 << 6:
        return bytes([size])
    if size < 1 << 14:
        return bytes([(size >> 8) | 0x40, size & 0xFF])
    if size <= 0xFFFFFFFF:
        return b"\x80" + size.to_bytes(4, "big")
    return b"\x81" + size.to_bytes(8, "big")


def _string(value: bytes) -> bytes:
    """``rdbSaveRawString`` without compression: a short canonical integer
    that fits 32 bits as an integer encoding, else length + bytes."""
    if len(value) <= 11:
        number = parse_integer(value)
        if number is not None:
            for low, high, encoding, width in _INT_ENCODINGS:
                if low <= number <= high:
                    return bytes([0xC0 | encoding]) + number.to_bytes(width, "little", signed=True)
    return _length(len(value)) + value


def _object(obj: RdbObject) -> bytes:
    if isinstance(obj, StringObject):
        return bytes([TYPE_STRING]) + _string(obj.value)
    if isinstance(obj, ListObject):
        return b"".join([bytes([TYPE_LIST]), _length(len(obj.items)), *map(_string, obj.items)])
    if isinstance(obj, SetObject):
        return b"".join([bytes([TYPE_SET]), _length(len(obj.members)), *map(_string, obj.members)])
    if isinstance(obj, HashObject):
        parts = [bytes([TYPE_HASH]), _length(len(obj.pairs))]
        for field, value in obj.pairs:
            parts += (_string(field), _string(value))
        return b"".join(parts)
    parts = [bytes([TYPE_ZSET_2]), _length(len(obj.entries))]
    for member, score in obj.entries:
        parts += (_string(member), _DOUBLE.pack(score))
    return b"".join(parts)


def encode_payload(obj: RdbObject) -> bytes:
    """The DUMP payload of ``obj`` (the caller gives a valid, non-empty object)."""
    body = _object(obj) + RDB_VERSION.to_bytes(2, "little")
    return body + crc64(body).to_bytes(8, "little")


# --- decoding ------------------------------------------------------------------


class _Reader:
    """A cursor over the object's bytes; running past the end is ``BadData``."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, size: int) -> bytes:
        end = self.pos + size
        if end > len(self.data):
            raise BadData("object runs past the payload")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def length(self) -> tuple[int, bool]:
        """``rdbLoadLen``: (length, is a special string encoding)."""
        first = self.byte()
        kind = first >> 6
        if kind == 0:
            return first & 0x3F, False
        if kind == 1:
            return ((first & 0x3F) << 8) | self.byte(), False
        if kind == 3:
            return first & 0x3F, True
        if first == 0x80:
            return int.from_bytes(self.take(4), "big"), False
        if first == 0x81:
            return int.from_bytes(self.take(8), "big"), False
        raise BadData(f"unknown length encoding {first:#x}")

    def count(self) -> int:
        size, encoded = self.length()
        if encoded:
            raise BadData("a count cannot be an encoded string")
        return size

    def string(self) -> bytes:
        """``rdbGenericLoadStringObject``."""
        size, encoded = self.length()
        if not encoded:
            return self.take(size)
        for _low, _high, encoding, width in _INT_ENCODINGS:
            if size == encoding:
                return str(int.from_bytes(self.take(width), "little", signed=True)).encode()
        if size == _ENC_LZF:
            compressed, raw = self.count(), self.count()
            try:
                return lzf_decompress(self.take(compressed), raw)
            except PackedError as error:
                raise BadData(str(error)) from None
        raise BadData(f"unknown string encoding {size}")

    def text_score(self) -> float:
        """``rdbLoadDoubleValue``: a length byte then text, or an infinity."""
        size = self.byte()
        if size == 255:
            return -math.inf
        if size == 254:
            return math.inf
        if size == 253:
            return math.nan
        try:
            return float(self.take(size).decode("ascii"))
        except ValueError:
            raise BadData("score is not a number") from None


def _score(text: bytes) -> float:
    """A score stored as an element of a packed sorted set."""
    try:
        return float(text.decode("ascii"))
    except ValueError:
        raise BadData("score is not a number") from None


def _pairs(items: list[bytes]) -> list[tuple[bytes, bytes]]:
    if len(items) % 2:
        raise BadData("odd number of elements in a pair encoding")
    return list(zip(items[0::2], items[1::2]))


def _distinct(names: list[bytes], what: str) -> None:
    if len(set(names)) != len(names):
        raise BadData(f"duplicate {what}")


def _hash(pairs: list[tuple[bytes, bytes]]) -> HashObject:
    _distinct([field for field, _ in pairs], "hash field")
    return HashObject(tuple(pairs))


def _sorted_set(entries: list[tuple[bytes, float]]) -> SortedSetObject:
    _distinct([member for member, _ in entries], "sorted set member")
    if any(math.isnan(score) for _, score in entries):
        raise BadData("NaN score")
    return SortedSetObject(tuple(entries))


def _set(members: list[bytes]) -> SetObject:
    _distinct(members, "set member")
    return SetObject(tuple(members))


def _quicklist(reader: _Reader, with_containers: bool) -> ListObject:
    items: list[bytes] = []
    for _ in range(reader.count()):
        container = reader.count() if with_containers else QUICKLIST_PACKED
        blob = reader.string()
        if not blob:
            raise BadData("empty quicklist node")
        if container == QUICKLIST_PLAIN:
            items.append(blob)
        elif container == QUICKLIST_PACKED:
            items += listpack_items(blob) if with_containers else ziplist_items(blob)
        else:
            raise BadData("quicklist node of an unknown container")
    return ListObject(tuple(items))


def _read_object(kind: int, reader: _Reader) -> RdbObject:
    if kind == TYPE_STRING:
        return StringObject(reader.string())
    if kind == TYPE_LIST:
        return ListObject(tuple(reader.string() for _ in range(reader.count())))
    if kind == TYPE_SET:
        return _set([reader.string() for _ in range(reader.count())])
    if kind == TYPE_HASH:
        return _hash([(reader.string(), reader.string()) for _ in range(reader.count())])
    if kind in (TYPE_ZSET, TYPE_ZSET_2):
        entries = []
        for _ in range(reader.count()):
            member = reader.string()
            score = _DOUBLE.unpack(reader.take(8))[0] if kind == TYPE_ZSET_2 else reader.text_score()
            entries.append((member, score))
        return _sorted_set(entries)
    if kind in (TYPE_LIST_QUICKLIST, TYPE_LIST_QUICKLIST_2):
        return _quicklist(reader, with_containers=kind == TYPE_LIST_QUICKLIST_2)
    if kind == TYPE_LIST_ZIPLIST:
        return ListObject(tuple(ziplist_items(reader.string())))
    if kind == TYPE_SET_INTSET:
        return SetObject(tuple(intset_items(reader.string())))
    if kind in (TYPE_HASH_ZIPLIST, TYPE_HASH_LISTPACK):
        blob = reader.string()
        return _hash(_pairs(ziplist_items(blob) if kind == TYPE_HASH_ZIPLIST else listpack_items(blob)))
    if kind in (TYPE_ZSET_ZIPLIST, TYPE_ZSET_LISTPACK):
        blob = reader.string()
        pairs = _pairs(ziplist_items(blob) if kind == TYPE_ZSET_ZIPLIST else listpack_items(blob))
        return _sorted_set([(member, _score(score)) for member, score in pairs])
    raise BadData(f"RDB object type {kind} is not supported")


def _is_empty(obj: RdbObject) -> bool:
    if isinstance(obj, StringObject):
        return False
    if isinstance(obj, ListObject):
        return not obj.items
    if isinstance(obj, SetObject):
        return not obj.members
    if isinstance(obj, SortedSetObject):
        return not obj.entries
    return not obj.pairs


def check_footer(payload: bytes) -> None:
    """Redis' ``verifyDumpPayload``; raises ``BadChecksum``."""
    if len(payload) < FOOTER_BYTES:
        raise BadChecksum("payload shorter than its footer")
    footer = payload[-FOOTER_BYTES:]
    if int.from_bytes(footer[:2], "little") > RDB_VERSION:
        raise BadChecksum("RDB version later than 10")
    if crc64(payload[:-8]) != int.from_bytes(footer[2:], "little"):
        raise BadChecksum("CRC-64 differs")


def decode_payload(payload: bytes) -> RdbObject:
    """The object in a DUMP payload; ``BadChecksum`` or ``BadData`` (see the module)."""
    check_footer(payload)
    # Redis reads the object from the whole buffer, footer included (an
    # object that overruns into the footer's bytes is read from them).
    reader = _Reader(payload)
    try:
        obj = _read_object(reader.byte(), reader)
    except PackedError as error:
        raise BadData(str(error)) from None
    if _is_empty(obj):
        raise BadData("empty value")
    return obj
