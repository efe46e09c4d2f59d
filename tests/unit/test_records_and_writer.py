"""Durability building blocks: effect encoding and framing, file headers,
the keyspace's effects, and the log writer (offsets, IO errors)."""

from __future__ import annotations

import errno
import os
import struct
import threading
import zlib

import pytest

from trio_kv.store.durability import records as records_module
from trio_kv.store.durability import writer as writer_module
from trio_kv.store.durability.records import (
    COPY_ONCE_BYTES,
    FRAME_BYTES,
    HEADER_BYTES,
    KIND_LOG,
    KIND_SNAPSHOT,
    MAGIC,
    FileHeader,
    RecordFormatError,
    decode_header_payload,
    decode_record,
    encode_header,
    encode_record,
    record_parts,
)
from trio_kv.store.durability.writer import LogWriter, SyncFailed
from trio_kv.store.keyspace import Keyspace

from ..effect_recorder import EffectRecorder

NOW_MS = 1_700_000_000_000

ALL_EFFECTS = [
    ("SET", b"k", b"v", None),
    ("SET", b"", b"", None),
    ("SET", b"key\x00\xff", b"x" * 70_000, NOW_MS + 5),
    ("SET", b"neg", b"1", -5),
    ("DEL", b"k"),
    ("EXPIRE", b"k", NOW_MS + 1000),
    ("PERSIST", b"k"),
    ("CLEAR",),
    ("END", 123),
]


def payload_of(record: bytes) -> bytes:
    length, crc = struct.unpack_from("<II", record)
    payload = record[FRAME_BYTES:]
    assert length == len(payload)
    assert crc == zlib.crc32(payload)
    return payload


@pytest.mark.parametrize("effect", ALL_EFFECTS, ids=repr)
def test_each_effect_round_trips(effect: tuple[object, ...]) -> None:
    assert decode_record(payload_of(encode_record([effect]))) == [effect]


def test_a_record_keeps_many_effects_in_order() -> None:
    assert decode_record(payload_of(encode_record(ALL_EFFECTS))) == ALL_EFFECTS


@pytest.mark.parametrize("value_bytes", [0, 16, COPY_ONCE_BYTES - 40, COPY_ONCE_BYTES, COPY_ONCE_BYTES + 1, 200_000])
@pytest.mark.parametrize("ttl", [None, NOW_MS])
@pytest.mark.parametrize("count", [1, 2, 100])
def test_small_and_big_records_frame_alike(value_bytes: int, ttl: int | None, count: int) -> None:
    # encode_record joins small records before framing and frames big ones
    # (and one-effect records other than a small SET) over their parts:
    # the bytes must not depend on which way was taken.
    effects = [("SET", b"k%d" % index, bytes([index % 256]) * value_bytes, ttl) for index in range(count)]
    effects.append(("DEL", b"gone"))
    for unit in (effects[:count], effects, effects[-1:]):
        record = encode_record(unit)
        assert record == b"".join(record_parts(unit))
        assert decode_record(payload_of(record)) == unit


def test_the_record_limit_holds_for_small_records(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records_module, "MAX_RECORD_BYTES", 100)
    for unit in ([("SET", b"k", b"x" * 200, None)], [("SET", b"k", b"x" * 100, None), ("DEL", b"k")]):
        with pytest.raises(ValueError, match="over the 100-byte limit"):
            encode_record(unit)
    encode_record([("SET", b"k", b"x" * 50, None), ("DEL", b"k")])


def test_set_without_ttl_is_compact() -> None:
    # frame 8 + type 1 + two u32 lengths + key + value
    assert len(encode_record([("SET", b"key", b"value", None)])) == 8 + 1 + 4 + 3 + 4 + 5


def test_empty_and_unknown_records_are_refused() -> None:
    with pytest.raises(ValueError):
        encode_record([])  # would frame as eight zero bytes: a zero-filled tail
    with pytest.raises(ValueError):
        encode_record([("INCR", b"k")])


@pytest.mark.parametrize("effect", [e for e in ALL_EFFECTS if e[0] != "CLEAR"], ids=repr)
def test_every_cut_short_payload_is_a_format_error(effect: tuple[object, ...]) -> None:
    payload = payload_of(encode_record([effect]))
    for length in range(1, len(payload)):
        with pytest.raises(RecordFormatError):
            decode_record(payload[:length])


def test_unknown_type_byte_is_a_format_error() -> None:
    with pytest.raises(RecordFormatError, match="unknown effect type 99"):
        decode_record(b"\x63")


def test_header_round_trip_and_layout() -> None:
    header = encode_header(KIND_SNAPSHOT, 42)
    assert len(header) == HEADER_BYTES
    assert header.startswith(MAGIC)
    assert decode_header_payload(payload_of(header[len(MAGIC) :])) == FileHeader(KIND_SNAPSHOT, 42)
    assert decode_header_payload(payload_of(encode_header(KIND_LOG, 1)[4:])).kind == KIND_LOG
    with pytest.raises(RecordFormatError, match="version"):
        decode_header_payload(b"L\x05" + bytes(8))  # 1 to 4 are readable
    with pytest.raises(RecordFormatError, match="kind"):
        decode_header_payload(b"X\x01" + bytes(8))


# --- the keyspace's effects -------------------------------------------------


def test_nothing_is_pending_while_nobody_subscribes() -> None:
    keyspace = Keyspace()
    keyspace.set(b"a", b"1")
    assert keyspace.effects.pending is None and not keyspace.effects.subscribed
    keyspace.effects.end_command()  # nothing to deliver
    recorder = EffectRecorder(keyspace)
    keyspace.set(b"b", b"2")
    keyspace.effects.unsubscribe(recorder.units.append)
    keyspace.set(b"c", b"3")
    assert keyspace.effects.pending is None and recorder.units == []


def test_effects_are_the_changes_actually_applied() -> None:
    now = [NOW_MS]
    keyspace = Keyspace(clock_ms=lambda: now[0])
    recorder = EffectRecorder(keyspace)
    keyspace.set(b"a", b"1", NOW_MS + 100)
    keyspace.set(b"a", b"2", keep_ttl=True)  # the TTL in force is logged
    keyspace.set(b"b", b"3", keep_ttl=True)  # no TTL to keep
    assert recorder.take() == [
        ("SET", b"a", b"1", NOW_MS + 100),
        ("SET", b"a", b"2", NOW_MS + 100),
        ("SET", b"b", b"3", None),
    ]
    assert keyspace.effects.pending == []
    assert not keyspace.delete(b"missing")
    assert keyspace.pop(b"missing") is None
    assert not keyspace.set_expire_at(b"missing", NOW_MS + 5)
    assert not keyspace.persist(b"b")  # had no TTL: nothing applied
    assert recorder.take() == [] and recorder.units == []
    keyspace.set_expire_at(b"b", NOW_MS + 50)
    keyspace.persist(b"b")
    keyspace.set_expire_at(b"b", NOW_MS - 1)  # a past time deletes: logged as DEL
    keyspace.pop(b"a")
    keyspace.set(b"c", b"4")
    keyspace.delete(b"c")
    keyspace.clear()
    assert recorder.take() == [
        ("EXPIRE", b"b", NOW_MS + 50),
        ("PERSIST", b"b"),
        ("DEL", b"b"),
        ("DEL", b"a"),
        ("SET", b"c", b"4", None),
        ("DEL", b"c"),
        ("CLEAR",),
    ]


def test_expiry_deletions_emit_nothing() -> None:
    now = [NOW_MS]
    keyspace = Keyspace(clock_ms=lambda: now[0])
    recorder = EffectRecorder(keyspace)
    keyspace.set(b"lazy", b"1", NOW_MS + 10)
    keyspace.set(b"active", b"1", NOW_MS + 10)
    recorder.take()
    now[0] += 10
    assert not keyspace.delete(b"lazy")  # expired first: nothing left to delete
    assert keyspace.active_expire_step(100) == 1
    keyspace.set(b"lazy", b"2", keep_ttl=True)  # the old TTL died with the old key
    assert recorder.take() == [("SET", b"lazy", b"2", None)]


def test_expiry_paused_then_purge() -> None:
    now = [NOW_MS]
    keyspace = Keyspace(clock_ms=lambda: now[0])
    with keyspace.expiry_paused():
        keyspace.set(b"old", b"1", NOW_MS - 10)
        assert keyspace.get(b"old") == b"1"
        assert keyspace.set_expire_at(b"old", NOW_MS - 5)  # applied, not a deletion
        assert keyspace.persist(b"old")
        keyspace.set(b"gone", b"2", NOW_MS)
    assert keyspace.get(b"old") == b"1"
    assert len(keyspace) == 2
    assert keyspace.purge_expired() == 1
    assert len(keyspace) == 1
    assert keyspace.expired_keys == 0
    assert keyspace.now_ms() == NOW_MS


# --- the writer -------------------------------------------------------------


def new_log(tmp_path: os.PathLike[str]) -> str:
    path = os.path.join(tmp_path, "log.1")
    with open(path, "wb") as file:
        file.write(encode_header(KIND_LOG, 1))
    return path


def test_writer_offsets(tmp_path: os.PathLike[str]) -> None:
    path = new_log(tmp_path)
    writer = LogWriter(path)
    assert writer.appended_offset == writer.flushed_offset == writer.synced_offset == HEADER_BYTES
    first = encode_record([("SET", b"a", b"1", None)])
    second = encode_record([("DEL", b"a")])
    assert writer.append(first) == HEADER_BYTES + len(first)
    end = writer.append(second)
    assert os.path.getsize(path) == HEADER_BYTES  # append does no IO
    assert writer.pending_bytes == len(first) + len(second)
    assert writer.flush() == end
    assert writer.synced_offset == HEADER_BYTES
    assert writer.sync() == end
    assert writer.flush() == end  # nothing pending
    writer.append(first)
    writer.close()
    with open(path, "rb") as file:
        assert file.read() == encode_header(KIND_LOG, 1) + first + second + first


def test_writer_keeps_data_on_enospc_and_succeeds_later(tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch) -> None:
    path = new_log(tmp_path)
    writer = LogWriter(path)
    records = [encode_record([("SET", b"k%d" % i, b"v" * 100, None)]) for i in range(3)]
    for record in records:
        writer.append(record)
    real_write = os.write
    calls = []

    def failing_write(fd: int, data: bytes) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data)[:150])  # a short write...
        raise OSError(errno.ENOSPC, "No space left on device")  # ...then a full disk

    monkeypatch.setattr(writer_module.os, "write", failing_write)
    with pytest.raises(OSError) as caught:
        writer.flush()
    assert caught.value.errno == errno.ENOSPC
    assert writer.flushed_offset == HEADER_BYTES + 150
    assert writer.pending_bytes == sum(map(len, records)) - 150
    late = encode_record([("DEL", b"k0")])
    writer.append(late)  # appends still work meanwhile
    with pytest.raises(OSError):
        writer.flush()
    monkeypatch.setattr(writer_module.os, "write", real_write)
    assert writer.flush() == writer.appended_offset
    writer.close()
    with open(path, "rb") as file:
        assert file.read() == encode_header(KIND_LOG, 1) + b"".join(records) + late


def test_failed_fsync_is_sticky(tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch) -> None:
    writer = LogWriter(new_log(tmp_path))
    writer.append(encode_record([("CLEAR",)]))
    writer.flush()

    def failing_sync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(writer_module, "_datasync", failing_sync)
    with pytest.raises(OSError):
        writer.sync()
    monkeypatch.undo()
    with pytest.raises(SyncFailed):
        writer.sync()  # a later fsync could succeed without the data being on disk
    assert writer.synced_offset == HEADER_BYTES
    writer.close()


def test_appends_racing_flushes_keep_every_record_in_order(tmp_path: os.PathLike[str]) -> None:
    path = new_log(tmp_path)
    writer = LogWriter(path)
    records = [encode_record([("SET", b"%d" % i, b"v", None)]) for i in range(5000)]
    done = threading.Event()

    def flusher() -> None:
        while not done.is_set():
            writer.flush()
            writer.sync()

    thread = threading.Thread(target=flusher)
    thread.start()
    try:
        for record in records:
            writer.append(record)
    finally:
        done.set()
        thread.join()
    writer.close()
    with open(path, "rb") as file:
        assert file.read() == encode_header(KIND_LOG, 1) + b"".join(records)
