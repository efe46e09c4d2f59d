"""The hint files: per target node, the writes it missed, on disk until
it acknowledged them (hinted handoff, ``hints.py`` drives this module).

Synchronous file IO: every method is called from a thread
(``trio.to_thread.run_sync`` under the hints' own limiter), never on the
event loop; one lock makes the calls of concurrent threads atomic.

Files: ``DATA/hints/<target address>.<seq>.hints`` (``seq`` counts up per
target, from 1). A file is the magic ``TKVH``, one framed header record
holding the hint format version, then records, all framed as the
append-only log's (``store/durability/records.py``: u32 payload length,
u32 CRC-32 of the payload, payload; little-endian). A record's payload is
one hint: i64 ``written_at_ms`` (wall clock, milliseconds since the
epoch: hints outlive the process) then the ``TKV.REPL.PUT key clock``
request exactly as it was sent to the other replicas (RESP bytes,
``replicator.repl_put``). Replaying it is that request again: a merge of
the key's whole state (DVVSet sync) on the target, idempotent, so a hint
sent twice, or one whose write did reach the target, is harmless.

Rules kept here:

* Appends go to the target's newest file only while this process has it
  open: at start every file found is *sealed* (read-only; a torn tail from
  a crash stays at its end, where the reader stops). ``seal`` closes the
  open file, so replay reads sealed files only, while new hints go to a
  new file. A file is also sealed once it holds ``SEGMENT_BYTES``, so a
  replay reads a bounded file and deletes it once its records are acked.
* Bounded: a target's hint bytes (its files) stay within ``max_bytes``;
  hints past it are dropped and counted (``append``'s return).
* Damage never stops a replay: a record whose checksum is wrong but whose
  frame is plausible is skipped; a frame that runs past the end of the
  file (a torn tail) or a bad header ends the file; both are counted as
  ``damaged``. What is dropped, anti-entropy repairs.
* The window: ``read`` leaves out hints older than ``window_ms``
  (counted), ``expire`` deletes sealed files whose newest hint is older
  (their mtime) without reading them.
* Durability: ``append`` (a coordinator's own hints) writes without
  fsync. ``append_all`` (a fallback's hints under sloppy quorum, whose ack
  counts toward W) writes all of its records or none, and with
  ``sync=True`` fsyncs the file (and the directory when it made the file)
  before it returns; without, the file is marked dirty and ``sync_dirty``
  (the ``everysec`` task) or its sealing fsyncs it.
* ``drop_target`` deletes every file of a target (a member removed from
  the ring).
"""

from __future__ import annotations

import os
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from ...store.durability.records import FRAME, FRAME_BYTES, MAX_RECORD_BYTES, checksum, frame

HINT_MAGIC = b"TKVH"
HINT_FORMAT_VERSION = 1
HINT_HEADER = HINT_MAGIC + frame(bytes([HINT_FORMAT_VERSION]))
SUFFIX = ".hints"
# A target's open file is sealed past this size (a replay's unit of work).
SEGMENT_BYTES = 1024 * 1024
_WRITTEN_AT = struct.Struct("<q")


def encode_hint(written_at_ms: int, request: bytes) -> bytes:
    """One hint record, framed (``frame``: length, CRC-32, payload)."""
    return frame(_WRITTEN_AT.pack(written_at_ms) + request)


def file_name(target: str, seq: int) -> str:
    return f"{target}.{seq}{SUFFIX}"


def parse_file_name(name: str) -> tuple[str, int] | None:
    """(target address, seq) of a hint file's name; None for other files."""
    if not name.endswith(SUFFIX):
        return None
    target, _, seq = name[: -len(SUFFIX)].rpartition(".")
    if not target or not seq.isdigit():
        return None
    return target, int(seq)


@dataclass
class ReadHints:
    """One sealed file's hints still inside the window, in written order."""

    requests: list[bytes]
    # Hints left out: older than the window / lost to damage.
    expired: int = 0
    damaged: int = 0


def read_hint_file(path: str, oldest_ms: int) -> ReadHints:
    """The requests of hint file ``path`` written at or after ``oldest_ms``
    (see the module's damage rules)."""
    with open(path, "rb") as file:
        data = file.read()
    result = ReadHints([])
    if data[: len(HINT_HEADER)] != HINT_HEADER:
        # Torn before its header was whole, or not a hint file: nothing in it is trusted.
        result.damaged += 1 if len(data) > len(HINT_HEADER) or data.strip(b"\x00") else 0
        return result
    offset = len(HINT_HEADER)
    end = len(data)
    unpack_frame = FRAME.unpack_from
    while offset < end:
        if end - offset < FRAME_BYTES:
            result.damaged += 1  # a torn frame
            break
        length, crc = unpack_frame(data, offset)
        start = offset + FRAME_BYTES
        if length < _WRITTEN_AT.size or length > MAX_RECORD_BYTES or start + length > end:
            result.damaged += 1  # a torn tail, or a length we cannot step over
            break
        payload = data[start : start + length]
        offset = start + length
        if checksum(payload) != crc:
            result.damaged += 1
            continue
        (written_at_ms,) = _WRITTEN_AT.unpack_from(payload)
        if written_at_ms < oldest_ms:
            result.expired += 1
            continue
        result.requests.append(payload[_WRITTEN_AT.size :])
    return result


def count_records(path: str) -> int:
    """How many frames hint file ``path`` holds (for statistics; checksums unread)."""
    with open(path, "rb") as file:
        data = file.read()
    if data[: len(HINT_HEADER)] != HINT_HEADER:
        return 0
    count, offset, end = 0, len(HINT_HEADER), len(data)
    while end - offset >= FRAME_BYTES:
        length, _crc = FRAME.unpack_from(data, offset)
        offset += FRAME_BYTES + length
        if length == 0 or offset > end:
            break
        count += 1
    return count


@dataclass
class _Target:
    # Sealed files, oldest first, and their sizes.
    sealed: dict[int, int]
    # The seq of the next file to open.
    next_seq: int = 1
    # The open file (None: none; the next append opens next_seq).
    file: BinaryIO | None = None
    open_seq: int = 0
    open_bytes: int = 0
    # Records appended to or found in this target's files (not yet deleted), approximately.
    records: int = 0
    # The open file holds fallback hints written but not yet fsynced.
    unsynced: bool = False

    @property
    def bytes(self) -> int:
        return sum(self.sealed.values()) + self.open_bytes


class HintFiles:
    """Every target's hint files in ``directory`` (see the module docstring)."""

    def __init__(self, directory: str, *, max_bytes: int, window_seconds: float,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.window_ms = int(window_seconds * 1000)
        self._clock = wall_clock
        self._lock = threading.Lock()
        self._targets: dict[str, _Target] = {}

    # -- start ----------------------------------------------------------------

    def open(self) -> None:
        """Create the directory; seal every file found (a crash's files included)."""
        os.makedirs(self.directory, exist_ok=True)
        with self._lock:
            for name in sorted(os.listdir(self.directory)):
                parsed = parse_file_name(name)
                if parsed is None:
                    continue
                target, seq = parsed
                path = os.path.join(self.directory, name)
                size = os.path.getsize(path)
                entry = self._target(target)
                entry.sealed[seq] = size
                entry.next_seq = max(entry.next_seq, seq + 1)
                entry.records += count_records(path)
            for entry in self._targets.values():
                entry.sealed = dict(sorted(entry.sealed.items()))

    def _target(self, target: str) -> _Target:
        entry = self._targets.get(target)
        if entry is None:
            entry = self._targets[target] = _Target({})
        return entry

    # -- writing ----------------------------------------------------------------

    def append(self, hints: dict[str, list[tuple[int, bytes]]]) -> tuple[int, int]:
        """Append each target's ``(written_at_ms, request)`` hints, one
        write() per target; (written, dropped past ``max_bytes``)."""
        written = dropped = 0
        with self._lock:
            for target, records in hints.items():
                entry = self._target(target)
                # A new file's header counts too.
                room = self.max_bytes - entry.bytes - (len(HINT_HEADER) if entry.file is None else 0)
                out: list[bytes] = []
                for written_at_ms, request in records:
                    record = encode_hint(written_at_ms, request)
                    if len(record) > room:
                        dropped += 1
                        continue
                    room -= len(record)
                    out.append(record)
                if not out:
                    continue
                data = b"".join(out)
                self._open_for_append(entry, target)
                current = entry.file
                assert current is not None
                current.write(data)
                current.flush()
                entry.open_bytes += len(data)
                entry.records += len(out)
                written += len(out)
                if entry.open_bytes >= SEGMENT_BYTES:
                    self._seal(entry)
        return written, dropped

    def append_all(self, target: str, records: list[tuple[int, bytes]], *, sync: bool) -> bool:
        """Append ``records`` for ``target`` in one write(), all or none
        (False: they would pass ``max_bytes``); ``sync``: fsynced before
        this returns, else the file is left dirty (``sync_dirty``)."""
        data = b"".join(encode_hint(written_at_ms, request) for written_at_ms, request in records)
        with self._lock:
            entry = self._target(target)
            room = self.max_bytes - entry.bytes - (len(HINT_HEADER) if entry.file is None else 0)
            if len(data) > room:
                return False
            created = entry.file is None
            self._open_for_append(entry, target)
            current = entry.file
            assert current is not None
            current.write(data)
            current.flush()
            entry.open_bytes += len(data)
            entry.records += len(records)
            if sync:
                os.fsync(current.fileno())
                if created:
                    _fsync_directory(self.directory)
            else:
                entry.unsynced = True
            if entry.open_bytes >= SEGMENT_BYTES:
                self._seal(entry)
        return True

    def _open_for_append(self, entry: _Target, target: str) -> None:
        if entry.file is None:
            seq = entry.next_seq
            entry.next_seq += 1
            opened = open(os.path.join(self.directory, file_name(target, seq)), "ab")
            opened.write(HINT_HEADER)
            entry.file, entry.open_seq, entry.open_bytes = opened, seq, len(HINT_HEADER)

    def sync_dirty(self) -> int:
        """fsync every open file holding unsynced fallback hints; how many."""
        synced = 0
        with self._lock:
            made = False
            for entry in self._targets.values():
                if entry.unsynced and entry.file is not None:
                    os.fsync(entry.file.fileno())
                    entry.unsynced = False
                    synced += 1
                    made = True
            if made:
                _fsync_directory(self.directory)
        return synced

    def drop_target(self, target: str) -> int:
        """Delete every file of ``target``; how many records they held (approximately)."""
        with self._lock:
            entry = self._targets.pop(target, None)
            if entry is None:
                return 0
            if entry.file is not None:
                entry.file.close()
                entry.file = None
                entry.sealed[entry.open_seq] = entry.open_bytes
            for seq in entry.sealed:
                try:
                    os.unlink(os.path.join(self.directory, file_name(target, seq)))
                except FileNotFoundError:
                    pass
            return entry.records

    def _seal(self, entry: _Target) -> None:
        if entry.file is not None:
            if entry.unsynced:
                # Fallback hints were acked as held: they are on disk before the file is read.
                os.fsync(entry.file.fileno())
                entry.unsynced = False
            entry.file.close()
            entry.sealed[entry.open_seq] = entry.open_bytes
            entry.file, entry.open_seq, entry.open_bytes = None, 0, 0

    # -- replaying ----------------------------------------------------------------

    def seal(self, target: str) -> list[int]:
        """Close ``target``'s open file; the seqs of its sealed files, oldest first."""
        with self._lock:
            entry = self._targets.get(target)
            if entry is None:
                return []
            self._seal(entry)
            return list(entry.sealed)

    def read(self, target: str, seq: int) -> ReadHints:
        """A sealed file's hints inside the window (``read_hint_file``)."""
        oldest_ms = int(self._clock() * 1000) - self.window_ms
        return read_hint_file(os.path.join(self.directory, file_name(target, seq)), oldest_ms)

    def delete(self, target: str, seq: int, records: int) -> None:
        """Remove a sealed file whose ``records`` hints were acked or dropped."""
        with self._lock:
            entry = self._targets.get(target)
            if entry is None or seq not in entry.sealed:
                return
            os.unlink(os.path.join(self.directory, file_name(target, seq)))
            del entry.sealed[seq]
            entry.records = max(0, entry.records - records) if entry.sealed or entry.file else 0

    def expire(self) -> int:
        """Delete sealed files whose newest hint is past the window; how many files."""
        deleted = 0
        oldest_s = self._clock() - self.window_ms / 1000
        with self._lock:
            for target, entry in self._targets.items():
                for seq in list(entry.sealed):
                    path = os.path.join(self.directory, file_name(target, seq))
                    if os.path.getmtime(path) < oldest_s:
                        os.unlink(path)
                        del entry.sealed[seq]
                        deleted += 1
                if not entry.sealed and entry.file is None:
                    entry.records = 0
        return deleted

    # -- what statistics read (any thread) ------------------------------------------

    def pending(self) -> dict[str, tuple[int, int]]:
        """Per target with hints: (records, bytes) on disk."""
        with self._lock:
            return {
                target: (entry.records, entry.bytes) for target, entry in self._targets.items()
                if entry.sealed or entry.file is not None
            }

    def has_hints(self, target: str) -> bool:
        entry = self._targets.get(target)
        return entry is not None and (bool(entry.sealed) or entry.file is not None)

    def close(self) -> None:
        with self._lock:
            for entry in self._targets.values():
                self._seal(entry)


def _fsync_directory(directory: str) -> None:
    """A new file's name is durable only once its directory is fsynced."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
