"""Format version 2: the PATCH effect (APPEND / SETRANGE logged as the
request), and compatibility with version-1 files written by the previous
build (records.py "Versions", docs/persistence-format.md)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from trio_kv.store.durability import check
from trio_kv.store.durability.apply import load_keyspace
from trio_kv.store.durability.reader import CorruptLog, RecordReader
from trio_kv.store.durability.records import (
    FORMAT_VERSION,
    FRAME_BYTES,
    HEADER_BYTES,
    KIND_LOG,
    RecordFormatError,
    checksum,
    decode_record,
    encode_header,
    encode_record,
    record_parts,
)
from trio_kv.store.durability.data_dir import DataDir
from trio_kv.store.keyspace import Keyspace

# Written by the version-1 build (commit fcd430d's records.py): a log.1 with
# SET k hello; SET t x (expiring 2030-01-01); SET k "hello world"; DEL t.
V1_LOG = bytes.fromhex(
    "544b56310a000000859bddbc4c0101000000000000000f0000002ad2856001010000006b0500000068656c6c6f130000000bbfa42b"
    "0200b4c5dab80100000100000074010000007815000000fedd1a6001010000006b0b00000068656c6c6f20776f726c6406000000"
    "984f5e5d030100000074"
)
# And a snapshot.1 holding SET s snap and END 1.
V1_SNAPSHOT = bytes.fromhex(
    "544b56310a000000e041786a530101000000000000000e0000005c7266cb01010000007304000000736e617009000000f979c24e"
    "070100000000000000"
)

PATCHES = [
    ("PATCH", b"key", 10, 12, b"data", None),
    ("PATCH", b"k2", 0, 536870911, b"x", 1_900_000_000_000),
    ("PATCH", b"", 5, 0, b"\x00\xff", -1),
]


def test_patch_effects_round_trip_and_stay_small() -> None:
    record = encode_record(PATCHES)
    assert decode_record(record[FRAME_BYTES:]) == PATCHES
    assert b"".join(record_parts(PATCHES)) == record
    payload = record[FRAME_BYTES:]
    assert int.from_bytes(record[4:8], "little") == checksum(payload)
    # A SETRANGE at 512 MiB-1 is a 40-byte effect, not a 512 MiB value.
    assert len(encode_record([PATCHES[1]])) < 64


def test_a_patch_cut_short_is_a_format_error() -> None:
    payload = encode_record([PATCHES[0]])[FRAME_BYTES:]
    for cut in range(1, len(payload)):
        with pytest.raises(RecordFormatError):
            decode_record(payload[:cut])


def test_a_version_1_file_may_not_hold_a_patch() -> None:
    payload = encode_record([PATCHES[0]])[FRAME_BYTES:]
    with pytest.raises(RecordFormatError, match="version 1"):
        decode_record(payload, 1)


def test_version_1_files_load_and_appends_go_to_a_new_version_2_log(tmp_path: Path) -> None:
    (tmp_path / "log.1").write_bytes(V1_LOG)
    keyspace = Keyspace(clock_ms=lambda: 1_700_000_000_000)
    report = load_keyspace(DataDir(tmp_path), keyspace)
    assert keyspace.get(b"k") == b"hello world" and keyspace.get(b"t") is None
    assert report.upgraded_from_version == 1 and report.current_generation == 2
    assert (tmp_path / "log.1").read_bytes() == V1_LOG  # never appended to
    with RecordReader(tmp_path / "log.2", expect_kind=KIND_LOG, expect_generation=2) as reader:
        assert reader.header.version == FORMAT_VERSION and list(reader) == []

    data_dir = DataDir(tmp_path)
    data_dir.replay(lambda effects: None)
    assert data_dir.current_generation == 2
    writer = data_dir.open_log_for_append()
    writer.append(encode_record([("PATCH", b"k", 11, 11, b"!", None)]))
    writer.close()
    again = Keyspace()
    report = load_keyspace(DataDir(tmp_path), again)
    assert report.log_generations == [1, 2] and report.upgraded_from_version is None
    assert again.get(b"k") == b"hello world!"


def test_a_version_1_snapshot_loads(tmp_path: Path) -> None:
    (tmp_path / "snapshot.1").write_bytes(V1_SNAPSHOT)
    (tmp_path / "log.1").write_bytes(V1_LOG)
    keyspace = Keyspace(clock_ms=lambda: 1_700_000_000_000)
    load_keyspace(DataDir(tmp_path), keyspace)
    assert (keyspace.get(b"s"), keyspace.get(b"k")) == (b"snap", b"hello world")


def test_a_patch_in_a_version_1_log_is_corruption(tmp_path: Path) -> None:
    (tmp_path / "log.1").write_bytes(V1_LOG + encode_record([PATCHES[0]]) + encode_record([("DEL", b"k")]))
    with pytest.raises(CorruptLog, match="version 1"):
        load_keyspace(DataDir(tmp_path), Keyspace())


def test_a_torn_version_1_header_is_an_empty_log(tmp_path: Path) -> None:
    header = encode_header(KIND_LOG, 1, version=1)
    (tmp_path / "log.1").write_bytes(header[: HEADER_BYTES - 3])
    report = load_keyspace(DataDir(tmp_path), Keyspace())
    assert report.keys == 0 and len(report.truncated) == 1
    assert report.upgraded_from_version is None  # made anew, in this version
    assert (tmp_path / "log.1").read_bytes() == encode_header(KIND_LOG, 1)


def test_check_log_reads_both_versions(tmp_path: Path) -> None:
    (tmp_path / "log.1").write_bytes(V1_LOG)
    (tmp_path / "log.2").write_bytes(encode_header(KIND_LOG, 2, version=2) + encode_record(PATCHES))
    for name, version, effects in (("log.1", 1, 4), ("log.2", 2, 3)):
        out = io.StringIO()
        assert check.main([str(tmp_path / name)], stdout=out) == check.EXIT_CLEAN
        text = out.getvalue()
        assert f"format version: {version}\n" in text and f"({effects} effects)" in text
