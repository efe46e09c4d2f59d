"""Reading a log or snapshot file record by record, with the torn-tail rules.

A crash or power loss can leave the end of the file the writer was appending
to unfinished. That is a *torn tail*, and the reader reports it as
``TornTail(offset, reason)`` (``offset`` = where the good data ends):

* the file is shorter than its header (a log torn before its first record:
  an empty log), or holds only zeros;
* the last record is incomplete: fewer than 8 frame bytes, or a declared
  length that runs past the end of the file;
* the last record's checksum does not match;
* a zero-filled tail: a frame of length 0 and nothing but zero bytes after it
  (file systems can extend a file before its data lands).

"Last" means followed by nothing, or by nothing but zero bytes. Any bad
record followed by other data is *corruption*: ``CorruptLog`` is raised,
naming the file and the offset, because records after it would be lost if it
were cut there. A bad header (magic, checksum, kind, generation) and a
complete length field above ``MAX_RECORD_BYTES`` are corruption too.

Rules kept here:

* The file is read through a buffer (``READ_BUFFER_BYTES``); only one record
  is in memory at a time, so files of any size can be read.
* A declared length is checked against the file size before anything is
  read, so a damaged length never makes the reader allocate gigabytes.
* No decoding of payloads here (records.decode_record does that).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType

from .records import (
    FRAME,
    FRAME_BYTES,
    HEADER_BYTES,
    HEADER_PAYLOAD_BYTES,
    MAGIC,
    MAX_RECORD_BYTES,
    READABLE_VERSIONS,
    FileHeader,
    RecordFormatError,
    checksum,
    decode_header_payload,
    encode_header,
)

READ_BUFFER_BYTES = 1024 * 1024
_ZERO_SCAN_BYTES = 1024 * 1024


class DurabilityError(Exception):
    """Base of the errors that stop recovery."""


class CorruptLog(DurabilityError):
    """Damage that is not a torn tail: loading must stop (never guess)."""

    def __init__(self, path: str | os.PathLike[str], offset: int, reason: str) -> None:
        self.path = os.fspath(path)
        self.offset = offset
        self.reason = reason
        super().__init__(f"{self.path}: corrupt at offset {offset}: {reason}")


@dataclass(frozen=True, slots=True)
class TornTail:
    offset: int  # where the good data ends: the length to truncate to
    reason: str


class RecordReader:
    """One file's header and records. Use as a context manager; iterate for
    ``(offset, payload)`` of each good record. After the iteration:
    ``good_offset`` (end of the last good record), ``torn`` (TornTail or
    None), ``records`` (how many were yielded). ``header`` is None only when
    the header itself is torn."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        expect_kind: str | None = None,
        expect_generation: int | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.header: FileHeader | None = None
        self.torn: TornTail | None = None
        self.good_offset = 0
        self.records = 0
        self._file = open(self.path, "rb", buffering=READ_BUFFER_BYTES)
        try:
            self.file_size = os.fstat(self._file.fileno()).st_size
            self._read_header(expect_kind, expect_generation)
        except BaseException:
            self._file.close()
            raise

    def __enter__(self) -> RecordReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def _corrupt(self, offset: int, reason: str) -> CorruptLog:
        return CorruptLog(self.path, offset, reason)

    def _rest_is_zero(self) -> bool:
        """Whether every byte from the current position to EOF is zero."""
        read = self._file.read
        while chunk := read(_ZERO_SCAN_BYTES):
            if chunk.count(0) != len(chunk):
                return False
        return True

    def _read_header(self, expect_kind: str | None, expect_generation: int | None) -> None:
        data = self._file.read(HEADER_BYTES)
        expected = None
        if expect_kind is not None and expect_generation is not None:
            # Any version this build reads: a torn header of an older file counts too.
            expected = [encode_header(expect_kind, expect_generation, version) for version in READABLE_VERSIONS]
        all_zero = data.count(0) == len(data)
        if len(data) < HEADER_BYTES:
            # The header is written before any record: a file cut inside it
            # is a log torn before its first record, i.e. an empty log.
            if expected is not None:
                looks_like_header = any(header.startswith(data) for header in expected)
            else:
                looks_like_header = MAGIC.startswith(data[:4])
            if all_zero or looks_like_header:
                self.torn = TornTail(0, f"file of {len(data)} bytes is shorter than its {HEADER_BYTES}-byte header")
                return
            raise self._corrupt(0, "not a trio_kv file (bad magic)")
        if all_zero and self._rest_is_zero():
            self.torn = TornTail(0, "file holds only zero bytes")
            return
        if data[:4] != MAGIC:
            raise self._corrupt(0, f"not a trio_kv file (magic {data[:4]!r}, expected {MAGIC!r})")
        length, crc = FRAME.unpack_from(data, 4)
        payload = data[4 + FRAME_BYTES :]
        if length != HEADER_PAYLOAD_BYTES or checksum(payload) != crc:
            raise self._corrupt(4, "header record damaged (length or checksum mismatch)")
        try:
            header = decode_header_payload(payload)
        except RecordFormatError as error:
            raise self._corrupt(4, f"bad header: {error}") from None
        if expect_kind is not None and header.kind != expect_kind:
            raise self._corrupt(4, f"header says kind {header.kind!r}, expected {expect_kind!r}")
        if expect_generation is not None and header.generation != expect_generation:
            raise self._corrupt(4, f"header says generation {header.generation}, the file name says {expect_generation}")
        self.header = header
        self.good_offset = HEADER_BYTES

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        if self.header is None:
            return
        read = self._file.read
        unpack_frame = FRAME.unpack
        offset = self.good_offset
        while True:
            head = read(FRAME_BYTES)
            if len(head) < FRAME_BYTES:
                if head:
                    reason = "zero-filled tail" if head.count(0) == len(head) else "incomplete record frame"
                    self.torn = TornTail(offset, f"{reason} ({len(head)} of {FRAME_BYTES} frame bytes)")
                return
            length, crc = unpack_frame(head)
            if length == 0:
                if crc == 0 and self._rest_is_zero():
                    self.torn = TornTail(offset, "zero-filled tail")
                    return
                raise self._corrupt(offset, "record of length 0 followed by data")
            if length > MAX_RECORD_BYTES:
                raise self._corrupt(offset, f"declared length {length} is over the {MAX_RECORD_BYTES}-byte limit")
            end = offset + FRAME_BYTES + length
            if end > self.file_size:
                # The file may have grown since it was opened (a live log).
                self.file_size = os.fstat(self._file.fileno()).st_size
                if end > self.file_size:
                    present = self.file_size - offset - FRAME_BYTES
                    self.torn = TornTail(offset, f"incomplete record (declares {length} bytes, {present} present)")
                    return
            payload = read(length)
            if len(payload) < length:
                self.torn = TornTail(offset, f"incomplete record (declares {length} bytes, {len(payload)} present)")
                return
            if checksum(payload) != crc:
                if self._rest_is_zero():
                    self.torn = TornTail(offset, "checksum mismatch in the last record")
                    return
                raise self._corrupt(offset, "checksum mismatch (more records follow)")
            self.good_offset = end
            self.records += 1
            yield offset, payload
            offset = end
