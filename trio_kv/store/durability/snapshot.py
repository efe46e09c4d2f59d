"""Snapshots: the whole keyspace as SET effects, written once, read whole.

A snapshot file is the header (kind snapshot, generation G), records of SET
effects (at most ``KEYS_PER_RECORD`` keys or about ``RECORD_TARGET_BYTES``
per record), and a last record holding only ``("END", effect_count)``. A
value that is not a string (a hash...) is one UPDATE effect that creates it
(``TypedValue.as_update``), counted as one key. In cluster mode the keys
with versions (store/versions.py) are written in a second walk, over the
clock table: each key's value (if present) and its ``("VERSION", key,
clock)`` read under one read-lock hold, so a value is never paired with a
clock of another moment, and a deleted key's tombstone is kept.

Rules kept here:

* A snapshot is written to a temporary file, fsynced, and only then renamed
  into place (data_dir.DataDir.install_snapshot), so a snapshot under its
  final name is complete: any damage, a torn tail included, or a missing END
  is ``CorruptLog``, never a truncation.
* The keys come from a *fuzzy* iteration (``keyspace_chunks``): chunks of a
  SCAN, each under the read lock, while writers run between chunks. A key
  may be seen with a value newer than the log switch, or twice; replaying
  the log that starts at the switch over it gives the exact state, because
  every logged effect is absolute, or a PATCH that restores the length and
  bytes it covers (Keyspace.apply_patch). So the scan must start after the
  switch.
* String values are read as views (``Keyspace.get_view``) and written as
  pieces (``records.record_parts``): a snapshot never copies a string. A
  typed value is encoded under the read lock (it changes in place).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from .reader import CorruptLog, RecordReader
from .records import (
    END,
    KIND_SNAPSHOT,
    SET,
    UPDATE,
    VERSION,
    Effect,
    RecordFormatError,
    decode_record,
    encode_header,
    encode_record,
    record_parts,
)
from ...commands.values import TypedValue
from ..keyspace import NO_EXPIRY, Keyspace
from ..rwlock import ReadWriteLock

KEYS_PER_RECORD = 1000
RECORD_TARGET_BYTES = 1024 * 1024
WRITE_BUFFER_BYTES = 1024 * 1024

if TYPE_CHECKING:
    from ..versions import Versions


class VersionItem(NamedTuple):
    """A key's versions in a snapshot (its stored clock)."""

    key: bytes
    clock: bytes


# key, value, expire_at_ms or None; a typed value as (type code, its update
# bytes); or a key's versions.
SnapshotItem = tuple[bytes, bytes | memoryview | tuple[int, bytes], int | None] | VersionItem


@dataclass(frozen=True, slots=True)
class SnapshotStats:
    generation: int
    keys: int
    records: int
    bytes: int


def _add_values(keyspace: Keyspace, keys: Iterable[bytes], items: list[SnapshotItem]) -> None:
    for key, value in keyspace.live_values(keys):
        at_ms = keyspace.expire_at_ms(key)
        if isinstance(value, TypedValue):
            items.append((key, (value.TYPE_CODE, value.as_update().encode()), None if at_ms == NO_EXPIRY else at_ms))
        else:
            items.append((key, value, None if at_ms == NO_EXPIRY else at_ms))


def snapshot_chunk(
    keyspace: Keyspace, cursor: int, count: int, versions: Versions | None = None
) -> tuple[int, list[SnapshotItem]]:
    """One SCAN step's live keys with their values and expiry (with
    ``versions``: only the keys that have none; ``versions_chunk`` writes
    the others). The caller holds the read lock."""
    cursor, keys = keyspace.scan(cursor, count)
    if versions is not None:
        keys = [key for key in keys if versions.stored(key) is None]
    items: list[SnapshotItem] = []
    _add_values(keyspace, keys, items)
    return cursor, items


def versions_chunk(keyspace: Keyspace, versions: Versions, keys: Iterable[bytes]) -> list[SnapshotItem]:
    """Each of ``keys``' value (if live) then its versions (if it still has
    them). The caller holds the read lock."""
    items: list[SnapshotItem] = []
    for key in keys:
        clock = versions.stored(key)
        if clock is not None:
            _add_values(keyspace, (key,), items)
            items.append(VersionItem(key, clock))
    return items


def keyspace_chunks(
    keyspace: Keyspace, lock: ReadWriteLock, keys_per_chunk: int = KEYS_PER_RECORD, versions: Versions | None = None
) -> Iterator[list[SnapshotItem]]:
    """The fuzzy iteration: one SCAN step per read-lock hold, the lock free
    between chunks (and while the caller writes them out); with
    ``versions``, then the same over the clock table."""
    cursor = 0
    while True:
        with lock.read_locked():
            cursor, items = snapshot_chunk(keyspace, cursor, keys_per_chunk, versions)
        yield items
        if cursor == 0:
            break
    if versions is None:
        return
    with lock.read_locked():
        # Every key with versions at this moment (clocks are never removed
        # in this issue, so none is missed; a key versioned later is in the
        # log after the switch).
        keys = versions.keys()
    for start in range(0, len(keys), keys_per_chunk):
        with lock.read_locked():
            items = versions_chunk(keyspace, versions, keys[start : start + keys_per_chunk])
        yield items


def write_snapshot(
    path_tmp: str | os.PathLike[str],
    chunks: Iterable[Iterable[SnapshotItem]],
    generation: int,
    *,
    keys_per_record: int = KEYS_PER_RECORD,
) -> SnapshotStats:
    """Write and fsync a complete snapshot at ``path_tmp`` (which must not
    exist). On any error the temporary file is removed and the error raised."""
    written = 0  # effects, VERSIONs included (the END count)
    versions = 0
    records = 0
    try:
        with open(path_tmp, "xb", buffering=WRITE_BUFFER_BYTES) as file:
            write = file.write
            write(encode_header(KIND_SNAPSHOT, generation))
            batch: list[Effect] = []
            batch_bytes = 0
            for chunk in chunks:
                for item in chunk:
                    if isinstance(item, VersionItem):
                        batch.append((VERSION, item.key, item.clock))
                        batch_bytes += len(item.key) + len(item.clock)
                        versions += 1
                        continue
                    key, value, at_ms = item
                    if type(value) is tuple:
                        batch.append((UPDATE, key, value[0], True, value[1], at_ms))
                        batch_bytes += len(key) + len(value[1])
                    else:
                        batch.append((SET, key, value, at_ms))
                        batch_bytes += len(key) + len(value)
                    if len(batch) >= keys_per_record or batch_bytes >= RECORD_TARGET_BYTES:
                        file.writelines(record_parts(batch))  # values are written, not copied
                        written += len(batch)
                        records += 1
                        batch = []
                        batch_bytes = 0
            if batch:
                file.writelines(record_parts(batch))
                written += len(batch)
                records += 1
            write(encode_record([(END, written)]))
            file.flush()
            os.fsync(file.fileno())
            size = file.tell()
    except BaseException:
        try:
            os.unlink(path_tmp)
        except FileNotFoundError:
            pass
        raise
    return SnapshotStats(generation, written - versions, records + 1, size)


def load_snapshot(
    path: str | os.PathLike[str],
    keyspace_apply: Callable[[list[Effect]], None],
    *,
    generation: int | None = None,
) -> SnapshotStats:
    """Apply every record of a snapshot; raises ``CorruptLog`` unless the
    file is whole (header, good records, END with the right count)."""
    written = 0  # effects (the END count)
    versions = 0
    ended = False
    with RecordReader(path, expect_kind=KIND_SNAPSHOT, expect_generation=generation) as reader:
        # A reader without a header yields no records.
        version = 0 if reader.header is None else reader.header.version
        for offset, payload in reader:
            if ended:
                raise CorruptLog(reader.path, offset, "record after the END record")
            try:
                effects = decode_record(payload, version)
            except RecordFormatError as error:
                raise CorruptLog(reader.path, offset, str(error)) from None
            if effects[0][0] == END:
                if len(effects) != 1 or effects[0][1] != written:
                    raise CorruptLog(reader.path, offset, f"END record does not match the {written} effects read")
                ended = True
                continue
            for effect in effects:
                if effect[0] == VERSION:
                    versions += 1
                elif effect[0] != SET and (effect[0] != UPDATE or not effect[3]):
                    raise CorruptLog(
                        reader.path, offset, "snapshot record holds an effect other than SET, a created UPDATE or VERSION"
                    )
            keyspace_apply(effects)
            written += len(effects)
        if reader.torn is not None:
            raise CorruptLog(reader.path, reader.torn.offset, f"snapshot damaged: {reader.torn.reason}")
        if not ended:
            raise CorruptLog(reader.path, reader.good_offset, "snapshot ends without its END record")
        assert reader.header is not None
        return SnapshotStats(reader.header.generation, written - versions, reader.records, reader.good_offset)
