"""The bytes of trio_kv's persistence files: effects, records and file headers.

An *effect* is one change to the keyspace, as a tuple (what the keyspace
emits to its effects sink, ``store/effects.py``, and what recovery applies):

* ``("SET", key, value, expire_at_ms | None)``: the key now holds exactly this
  value and this absolute expiry (None: no TTL).
* ``("PATCH", key, old_length, offset, data, expire_at_ms | None)`` (format
  version 2): APPEND or SETRANGE, logged as the request and not the value:
  the value is cut or zero-padded to ``old_length``, ``data`` is written at
  ``offset`` (zeros fill any gap), and the key's expiry becomes
  ``expire_at_ms``. Deterministic on replay because the log is in apply
  order; Keyspace.apply_patch says why a fuzzy snapshot does not break it.
* ``("UPDATE", key, type_code, created, update, expire_at_ms | None)``
  (format version 3): a change to a value that is not a string (a hash...),
  as the family's ``ValueUpdate`` bytes (commands/values.py), absolute per
  element; ``created``: applied to an empty value of that family, whatever
  the key held. The family is named by its ``TYPE_CODE`` byte, so this
  module knows no family. Keyspace.apply_update says why a replay is exact.
  A snapshot holds a typed value as one created UPDATE.
* ``("VERSION", key, stored_clock)`` (format version 4): cluster mode only,
  the key's versions after the record's other effects: a header byte and
  the packed DVVSet clock (store/versions.py owns the bytes; recovery hands
  them back as they are).
* ``("DEL", key)``, ``("EXPIRE", key, at_ms)``, ``("PERSIST", key)``, ``("CLEAR",)``.
* ``("END", key_count)``: only as the last record of a snapshot, proof that the
  snapshot is complete.

A *record* is one atomic unit (one write command, a whole MULTI/EXEC, one
snapshot batch): a list of effects, framed as::

    [u32 payload length][u32 checksum][payload]        little-endian

A file is the 4-byte magic ``TKV1``, one framed header record (file kind,
format version, generation), then records. docs/persistence-format.md is the
full description; keep the two in step.

Versions: this build writes version 4 and reads 1 to 4. Version 2 adds
the PATCH effect, version 3 the UPDATE effect, version 4 the VERSION
effect, and nothing else, so the framing is the same; a file holding an effect its version does not have is
damage (an older build would not read it). Recovery never appends to a log
of an older version: it starts a new generation instead
(data_dir.DataDir.replay), so every file's header tells which effects it
may hold, and an older build refuses a newer file by its header instead of
failing in the middle of it.

Rules kept here:

* The checksum is CRC-32 (zlib's, the IEEE/ISO-HDLC polynomial) of the
  payload, not CRC-32C: Python has no C-speed CRC-32C without a third-party
  package, and a pure-Python one costs about a microsecond per byte. zlib's
  runs at gigabytes per second and has the same width, so the same 2**-32
  chance of missing random damage and every burst up to 32 bits caught.
* Lengths are u32 (not varints): one ``struct`` call instead of a Python loop,
  which keeps encoding one SET near half a microsecond. Times are i64
  (milliseconds since the epoch; signed so that no value the keyspace accepts
  can make encoding fail after the write was applied).
* ``encode_record`` refuses a payload over ``MAX_RECORD_BYTES``; the reader
  treats a complete length field above it as corruption (a torn write never
  produces a wrong length field, only a short file).
* ``encode_record`` is on every logged write's path (it runs under the
  store's write lock), so it is cheap for small records: the payload is
  joined once, checksummed with one ``crc32`` call and framed with one
  concatenation (a one-SET record: about 0.4 us, against 0.75 us for a
  ``crc32`` call per field; a batch of 100 SETs 21 us against 32 us). A
  record of one effect other than a small SET, or whose payload is over
  ``COPY_ONCE_BYTES``, is framed over its parts instead (the checksum
  computed part by part), so a big value is copied once (a big unit of
  several effects is joined once more first). ``record_parts`` lets a
  snapshot write the parts with no copy at all.
* No IO here.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Any

MAGIC = b"TKV1"
FORMAT_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)
KIND_LOG = "log"
KIND_SNAPSHOT = "snapshot"
_KIND_BYTES = {KIND_LOG: ord("L"), KIND_SNAPSHOT: ord("S")}
_KIND_NAMES = {byte: name for name, byte in _KIND_BYTES.items()}

FRAME_BYTES = 8
MAX_RECORD_BYTES = 1 << 31

# Effect names (the first element of an effect tuple).
SET = "SET"
DEL = "DEL"
EXPIRE = "EXPIRE"
PERSIST = "PERSIST"
CLEAR = "CLEAR"
END = "END"
PATCH = "PATCH"
UPDATE = "UPDATE"
VERSION = "VERSION"

# Type bytes on disk. A SET with a TTL has its own type so that a SET
# without one carries no time field.
_T_SET = 1
_T_SET_EXPIRING = 2
_T_DEL = 3
_T_EXPIRE = 4
_T_PERSIST = 5
_T_CLEAR = 6
_T_END = 7
# Version 2: APPEND / SETRANGE as the request (with and without a TTL).
_T_PATCH = 8
_T_PATCH_EXPIRING = 9
# Version 3: a change to a typed value (with and without a TTL).
_T_UPDATE = 10
_T_UPDATE_EXPIRING = 11
# Version 4: a key's versions (cluster mode).
_T_VERSION = 12
_LAST_TYPE = {1: _T_END, 2: _T_PATCH_EXPIRING, 3: _T_UPDATE_EXPIRING, 4: _T_VERSION}

# The frame in front of every payload: length, checksum.
FRAME = struct.Struct("<II")
_pack_frame = FRAME.pack
_pack_u32 = struct.Struct("<I").pack
_pack_type_len = struct.Struct("<BI").pack
_pack_type_time_len = struct.Struct("<BqI").pack
_pack_type_u64 = struct.Struct("<BQ").pack
_pack_offsets_len = struct.Struct("<QQI").pack
_pack_code_flag_len = struct.Struct("<BBI").pack
_unpack_code_flag_len = struct.Struct("<BBI").unpack_from
_unpack_offsets_len = struct.Struct("<QQI").unpack_from
_unpack_u32 = struct.Struct("<I").unpack_from
_unpack_time_len = struct.Struct("<qI").unpack_from
_unpack_u64 = struct.Struct("<Q").unpack_from
_header_payload = struct.Struct("<BBQ")
_crc32 = zlib.crc32

HEADER_PAYLOAD_BYTES = _header_payload.size
HEADER_BYTES = len(MAGIC) + FRAME_BYTES + HEADER_PAYLOAD_BYTES

Effect = tuple[Any, ...]


class RecordFormatError(ValueError):
    """A payload whose checksum is right but whose content is not a valid
    record (a bug or an unknown format version, never a torn write)."""


@dataclass(frozen=True, slots=True)
class FileHeader:
    kind: str  # KIND_LOG or KIND_SNAPSHOT
    generation: int
    version: int = FORMAT_VERSION


def checksum(payload: bytes | memoryview) -> int:
    return _crc32(payload)


def frame(payload: bytes) -> bytes:
    return b"".join(_framed([payload]))


def _framed(parts: list[Any]) -> list[Any]:
    """``parts`` (the payload's pieces) with the frame in front."""
    length = 0
    crc = 0
    for part in parts:
        length += len(part)
        crc = _crc32(part, crc)
    # An empty payload would frame as eight zero bytes: a zero-filled tail.
    if not length:
        raise ValueError("a record holds at least one effect")
    if length > MAX_RECORD_BYTES:
        raise ValueError(f"record of {length} bytes is over the {MAX_RECORD_BYTES}-byte limit")
    parts.insert(0, _pack_frame(length, crc))
    return parts


# Payloads up to this size are joined, then framed (two copies, one crc32
# call); bigger ones are framed over their parts (one copy, a crc32 call per
# part). 64 KiB copies in a few microseconds, less than a crc32 call per
# field costs a batch of small writes.
COPY_ONCE_BYTES = 64 * 1024


def encode_record(effects: list[Effect]) -> bytes:
    """One framed record holding ``effects`` in order."""
    if len(effects) == 1:
        effect = effects[0]
        if effect[0] == SET and len(effect[2]) <= COPY_ONCE_BYTES:
            # The most common record by far (a put, a SET): no list, no loop.
            key = effect[1]
            value = effect[2]
            at_ms = effect[3]
            if at_ms is None:
                payload = _pack_type_len(_T_SET, len(key)) + key + _pack_u32(len(value)) + value
            else:
                payload = _pack_type_time_len(_T_SET_EXPIRING, at_ms, len(key)) + key + _pack_u32(len(value)) + value
            if len(payload) <= MAX_RECORD_BYTES:
                return _pack_frame(len(payload), _crc32(payload)) + payload
        return b"".join(record_parts(effects))  # maybe one big value: copied once
    parts = payload_parts(effects)
    payload = b"".join(parts)
    length = len(payload)
    if not length or length > COPY_ONCE_BYTES or length > MAX_RECORD_BYTES:
        # A big unit: framed over its parts (or refused, by _framed).
        return b"".join(_framed(parts))
    return _pack_frame(length, _crc32(payload)) + payload


def record_parts(effects: list[Effect]) -> list[Any]:
    """The framed record of ``effects`` as a list of bytes-like pieces whose
    concatenation is ``encode_record(effects)``: values are not copied."""
    return _framed(payload_parts(effects))


def payload_parts(effects: list[Effect]) -> list[Any]:
    """The payload of the record of ``effects`` (no frame) as a list of
    bytes-like pieces: values are not copied."""
    parts: list[Any] = []
    for effect in effects:
        op = effect[0]
        if op == SET:
            key = effect[1]
            value = effect[2]
            at_ms = effect[3]
            if at_ms is None:
                parts += (_pack_type_len(_T_SET, len(key)), key, _pack_u32(len(value)), value)
            else:
                parts += (_pack_type_time_len(_T_SET_EXPIRING, at_ms, len(key)), key, _pack_u32(len(value)), value)
        elif op == PATCH:
            _, key, old_length, offset, data, at_ms = effect
            if at_ms is None:
                parts += (_pack_type_len(_T_PATCH, len(key)), key)
            else:
                parts += (_pack_type_time_len(_T_PATCH_EXPIRING, at_ms, len(key)), key)
            parts += (_pack_offsets_len(old_length, offset, len(data)), data)
        elif op == UPDATE:
            _, key, code, created, update, at_ms = effect
            if at_ms is None:
                parts += (_pack_type_len(_T_UPDATE, len(key)), key)
            else:
                parts += (_pack_type_time_len(_T_UPDATE_EXPIRING, at_ms, len(key)), key)
            parts += (_pack_code_flag_len(code, 1 if created else 0, len(update)), update)
        elif op == DEL:
            parts += (_pack_type_len(_T_DEL, len(effect[1])), effect[1])
        elif op == VERSION:
            _, key, clock = effect
            parts += (_pack_type_len(_T_VERSION, len(key)), key, _pack_u32(len(clock)), clock)
        elif op == EXPIRE:
            parts += (_pack_type_time_len(_T_EXPIRE, effect[2], len(effect[1])), effect[1])
        elif op == PERSIST:
            parts += (_pack_type_len(_T_PERSIST, len(effect[1])), effect[1])
        elif op == CLEAR:
            parts.append(b"\x06")
        elif op == END:
            parts.append(_pack_type_u64(_T_END, effect[1]))
        else:
            raise ValueError(f"unknown effect {effect!r}")
    return parts


def _key_span(payload: bytes, pos: int, expiring: bool) -> tuple[int | None, int, int]:
    """The expiry (None: none), key start and key end of an effect at
    ``pos`` whose kind comes in a plain and an expiring form (``u32`` key
    length, or ``i64`` expiry then ``u32`` key length, after the type byte).
    SET decodes the same layout inline: it is most of every log."""
    if not expiring:
        return None, pos + 5, pos + 5 + _unpack_u32(payload, pos + 1)[0]
    at_ms, key_len = _unpack_time_len(payload, pos + 1)
    return at_ms, pos + 13, pos + 13 + key_len


def decode_record(payload: bytes, version: int = FORMAT_VERSION) -> list[Effect]:
    """The effects of one record's payload (already checksummed), read from
    a file of format ``version``."""
    effects: list[Effect] = []
    append = effects.append
    end = len(payload)
    last_type = _LAST_TYPE[version]
    pos = 0
    try:
        while pos < end:
            kind = payload[pos]
            if kind > last_type:
                raise RecordFormatError(f"unknown effect type {kind} at payload offset {pos} (format version {version})")
            if kind == _T_SET:
                key_end = pos + 5 + _unpack_u32(payload, pos + 1)[0]
                value_end = key_end + 4 + _unpack_u32(payload, key_end)[0]
                if value_end > end:
                    raise RecordFormatError("SET runs past the end of the record")
                append((SET, payload[pos + 5 : key_end], payload[key_end + 4 : value_end], None))
                pos = value_end
            elif kind == _T_SET_EXPIRING:
                at_ms, key_len = _unpack_time_len(payload, pos + 1)
                key_end = pos + 13 + key_len
                value_end = key_end + 4 + _unpack_u32(payload, key_end)[0]
                if value_end > end:
                    raise RecordFormatError("SET runs past the end of the record")
                append((SET, payload[pos + 13 : key_end], payload[key_end + 4 : value_end], at_ms))
                pos = value_end
            elif kind == _T_VERSION:
                key_end = pos + 5 + _unpack_u32(payload, pos + 1)[0]
                clock_end = key_end + 4 + _unpack_u32(payload, key_end)[0]
                if clock_end > end:
                    raise RecordFormatError("VERSION runs past the end of the record")
                append((VERSION, payload[pos + 5 : key_end], payload[key_end + 4 : clock_end]))
                pos = clock_end
            elif kind == _T_DEL or kind == _T_PERSIST:
                key_end = pos + 5 + _unpack_u32(payload, pos + 1)[0]
                if key_end > end:
                    raise RecordFormatError("key runs past the end of the record")
                append((DEL if kind == _T_DEL else PERSIST, payload[pos + 5 : key_end]))
                pos = key_end
            elif kind == _T_EXPIRE:
                at_ms, key_len = _unpack_time_len(payload, pos + 1)
                key_end = pos + 13 + key_len
                if key_end > end:
                    raise RecordFormatError("EXPIRE runs past the end of the record")
                append((EXPIRE, payload[pos + 13 : key_end], at_ms))
                pos = key_end
            elif kind == _T_CLEAR:
                append((CLEAR,))
                pos += 1
            elif kind == _T_END:
                append((END, _unpack_u64(payload, pos + 1)[0]))
                pos += 9
            elif kind == _T_PATCH or kind == _T_PATCH_EXPIRING:
                at_ms, key_start, key_end = _key_span(payload, pos, kind == _T_PATCH_EXPIRING)
                old_length, offset, data_len = _unpack_offsets_len(payload, key_end)
                data_end = key_end + 20 + data_len
                if data_end > end:
                    raise RecordFormatError("PATCH runs past the end of the record")
                append((PATCH, payload[key_start:key_end], old_length, offset, payload[key_end + 20 : data_end], at_ms))
                pos = data_end
            elif kind == _T_UPDATE or kind == _T_UPDATE_EXPIRING:
                at_ms, key_start, key_end = _key_span(payload, pos, kind == _T_UPDATE_EXPIRING)
                code, created, update_len = _unpack_code_flag_len(payload, key_end)
                update_end = key_end + 6 + update_len
                if update_end > end or created > 1:
                    raise RecordFormatError("UPDATE runs past the end of the record or has a bad flag")
                append((UPDATE, payload[key_start:key_end], code, created == 1, payload[key_end + 6 : update_end], at_ms))
                pos = update_end
            else:
                raise RecordFormatError(f"unknown effect type {kind} at payload offset {pos}")
    except struct.error as error:
        raise RecordFormatError(f"effect cut short at payload offset {pos}") from error
    return effects


def encode_header(kind: str, generation: int, version: int = FORMAT_VERSION) -> bytes:
    """The bytes every file starts with: magic and the framed header record
    (``version`` other than the current one: for tests and torn-header checks)."""
    return MAGIC + frame(_header_payload.pack(_KIND_BYTES[kind], version, generation))


def decode_header_payload(payload: bytes) -> FileHeader:
    if len(payload) != HEADER_PAYLOAD_BYTES:
        raise RecordFormatError(f"header payload of {len(payload)} bytes, expected {HEADER_PAYLOAD_BYTES}")
    kind_byte, version, generation = _header_payload.unpack(payload)
    kind = _KIND_NAMES.get(kind_byte)
    if kind is None:
        raise RecordFormatError(f"unknown file kind byte {kind_byte:#x}")
    if version not in READABLE_VERSIONS:
        readable = ", ".join(str(v) for v in READABLE_VERSIONS)
        raise RecordFormatError(f"format version {version}, this build reads {readable}")
    return FileHeader(kind, generation, version)
