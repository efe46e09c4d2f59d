"""The hint files (server/cluster/hint_log.py): the append-only log's
framing and CRC, damage dropping one record or a torn tail, sealing and
deletion, the window and the size bound, files found at start."""

from __future__ import annotations

import os

import pytest

from trio_kv.server.cluster.hint_log import (
    HINT_HEADER,
    SEGMENT_BYTES,
    HintFiles,
    encode_hint,
    file_name,
    parse_file_name,
    read_hint_file,
)
from trio_kv.server.cluster.replicator import repl_put
from trio_kv.store.durability.records import FRAME, checksum

TARGET = "127.0.0.2:7001"
NOW_S = 1_800_000_000.0
NOW_MS = int(NOW_S * 1000)


class Clock:
    def __init__(self) -> None:
        self.now = NOW_S

    def __call__(self) -> float:
        return self.now


def _files(tmp_path, *, max_bytes: int = 1 << 20, window_seconds: float = 60.0, clock: Clock | None = None) -> HintFiles:
    files = HintFiles(str(tmp_path / "hints"), max_bytes=max_bytes, window_seconds=window_seconds,
                      wall_clock=clock or Clock())
    files.open()
    return files


def _requests(count: int, prefix: str = "k") -> list[bytes]:
    return [repl_put(f"{prefix}{index}".encode(), b"\x01clock" + bytes([index % 256])) for index in range(count)]


def test_a_record_is_the_append_only_logs_frame_with_a_crc32_of_the_payload() -> None:
    request = repl_put(b"key", b"state")
    record = encode_hint(NOW_MS, request)
    length, crc = FRAME.unpack_from(record)
    payload = record[FRAME.size:]
    assert length == len(payload) == 8 + len(request)
    assert crc == checksum(payload)
    assert payload[8:] == request
    assert int.from_bytes(payload[:8], "little", signed=True) == NOW_MS


def test_file_names_carry_the_target_address_and_a_sequence_number() -> None:
    assert parse_file_name(file_name(TARGET, 7)) == (TARGET, 7)
    assert parse_file_name(file_name("[::1]:7001", 12)) == ("[::1]:7001", 12)
    assert parse_file_name("log.3") is None
    assert parse_file_name("x.y.hints") is None


def test_appended_hints_read_back_in_order_after_sealing(tmp_path) -> None:
    files = _files(tmp_path)
    requests = _requests(10)
    assert files.append({TARGET: [(NOW_MS, request) for request in requests[:4]]}) == (4, 0)
    assert files.append({TARGET: [(NOW_MS, request) for request in requests[4:]]}) == (6, 0)
    assert files.pending()[TARGET][0] == 10
    [seq] = files.seal(TARGET)
    hints = files.read(TARGET, seq)
    assert hints.requests == requests
    assert (hints.expired, hints.damaged) == (0, 0)
    # New hints after the seal go to a new file: the sealed one is not appended to.
    files.append({TARGET: [(NOW_MS, b"later")]})
    assert files.seal(TARGET) == [seq, seq + 1]
    files.delete(TARGET, seq, 10)
    assert files.seal(TARGET) == [seq + 1]
    assert not os.path.exists(os.path.join(files.directory, file_name(TARGET, seq)))
    files.delete(TARGET, seq + 1, 1)
    assert files.pending() == {}
    assert not files.has_hints(TARGET)


def _one_file(tmp_path, count: int) -> tuple[HintFiles, str, list[bytes]]:
    files = _files(tmp_path)
    requests = _requests(count)
    files.append({TARGET: [(NOW_MS, request) for request in requests]})
    [seq] = files.seal(TARGET)
    return files, os.path.join(files.directory, file_name(TARGET, seq)), requests


def test_a_record_with_a_damaged_payload_is_dropped_and_the_rest_kept(tmp_path) -> None:
    _files_, path, requests = _one_file(tmp_path, 5)
    with open(path, "r+b") as file:
        data = bytearray(file.read())
        # The third record's payload: header, then two records, then its frame.
        offset = len(HINT_HEADER) + 2 * len(encode_hint(NOW_MS, requests[0])) + FRAME.size + 10
        data[offset] ^= 0xFF
        file.seek(0)
        file.write(data)
    hints = read_hint_file(path, 0)
    assert hints.requests == requests[:2] + requests[3:]
    assert hints.damaged == 1


def test_a_torn_tail_ends_the_file_and_counts_one_damaged_record(tmp_path) -> None:
    _files_, path, requests = _one_file(tmp_path, 5)
    size = os.path.getsize(path)
    os.truncate(path, size - 3)
    hints = read_hint_file(path, 0)
    assert hints.requests == requests[:4]
    assert hints.damaged == 1
    os.truncate(path, len(HINT_HEADER) + 5)  # a torn frame
    hints = read_hint_file(path, 0)
    assert (hints.requests, hints.damaged) == ([], 1)


def test_a_file_without_its_header_yields_nothing(tmp_path) -> None:
    _files_, path, _requests_ = _one_file(tmp_path, 3)
    with open(path, "r+b") as file:
        file.write(b"XXXX")
    hints = read_hint_file(path, 0)
    assert hints.requests == [] and hints.damaged == 1


def test_hints_older_than_the_window_are_left_out_and_counted(tmp_path) -> None:
    clock = Clock()
    files = _files(tmp_path, window_seconds=60.0, clock=clock)
    old, new = _requests(3, "old"), _requests(2, "new")
    files.append({TARGET: [(NOW_MS - 61_000, request) for request in old]})
    files.append({TARGET: [(NOW_MS - 59_000, request) for request in new]})
    [seq] = files.seal(TARGET)
    hints = files.read(TARGET, seq)
    assert hints.requests == new
    assert hints.expired == 3
    clock.now += 2.0  # now the newer ones are past it too
    assert files.read(TARGET, seq).requests == []


def test_expire_deletes_sealed_files_whose_newest_hint_is_past_the_window(tmp_path) -> None:
    clock = Clock()
    files = _files(tmp_path, window_seconds=60.0, clock=clock)
    files.append({TARGET: [(NOW_MS, b"x")]})
    [seq] = files.seal(TARGET)
    path = os.path.join(files.directory, file_name(TARGET, seq))
    os.utime(path, (NOW_S - 30, NOW_S - 30))
    assert files.expire() == 0
    os.utime(path, (NOW_S - 61, NOW_S - 61))
    assert files.expire() == 1
    assert not os.path.exists(path)
    assert files.pending() == {}


def test_hints_past_the_size_bound_are_dropped_and_counted(tmp_path) -> None:
    record_bytes = len(encode_hint(NOW_MS, _requests(1)[0]))
    files = _files(tmp_path, max_bytes=10 * record_bytes)
    written, dropped = files.append({TARGET: [(NOW_MS, request) for request in _requests(20)]})
    # The file's header counts too: 9 records fit beside it.
    assert (written, dropped) == (9, 11)
    assert files.pending()[TARGET][1] <= 10 * record_bytes
    assert files.append({TARGET: [(NOW_MS, _requests(1)[0])]}) == (0, 1)
    # Another target has its own bound.
    assert files.append({"127.0.0.3:7001": [(NOW_MS, _requests(1)[0])]}) == (1, 0)


def test_a_file_is_sealed_once_it_holds_a_segment(tmp_path) -> None:
    files = _files(tmp_path, max_bytes=8 * SEGMENT_BYTES)
    big = b"x" * (SEGMENT_BYTES // 4)
    for _ in range(5):
        files.append({TARGET: [(NOW_MS, big)]})
    seqs = files.seal(TARGET)
    assert len(seqs) == 2
    assert sum(len(files.read(TARGET, seq).requests) for seq in seqs) == 5


def test_files_found_at_start_are_sealed_counted_and_never_appended_to(tmp_path) -> None:
    files = _files(tmp_path)
    requests = _requests(7)
    files.append({TARGET: [(NOW_MS, request) for request in requests]})
    # A crash: the open file is not closed, and its tail is torn.
    path = os.path.join(files.directory, file_name(TARGET, 1))
    with open(path, "ab") as file:
        file.write(encode_hint(NOW_MS, b"torn")[:-2])
    again = _files(tmp_path)
    assert again.pending()[TARGET][0] == 7
    again.append({TARGET: [(NOW_MS, b"after")]})
    assert again.seal(TARGET) == [1, 2]
    assert again.read(TARGET, 1).requests == requests
    assert again.read(TARGET, 2).requests == [b"after"]


@pytest.mark.parametrize("count", [0, 1, 300])
def test_count_matches_what_is_read(tmp_path, count) -> None:
    files = _files(tmp_path)
    if count:
        files.append({TARGET: [(NOW_MS, request) for request in _requests(count)]})
    again = _files(tmp_path)
    assert again.pending().get(TARGET, (0, 0))[0] == count
