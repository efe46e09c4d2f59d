"""Damaged logs through the real server process: a torn tail is cut at the
last good record with a WARNING naming the offset and the data before it is
served; ``--aof-load-truncated no`` refuses that instead; a flipped byte in
an early record refuses to start (exit 1) with an error naming the file and
the offset; the server never starts empty by guessing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.server_process import ServerProcess
from trio_kv.store.durability.records import FRAME_BYTES, HEADER_BYTES

from .durable_server import EXIT_SECONDS, Resp, launched, started

KEYS = 200


@pytest.fixture
def written(tmp_path: Path) -> tuple[Path, Path, int]:
    """A data dir whose log.1 holds KEYS records, cleanly shut down; the log's size."""
    data_dir = tmp_path / "data"
    with started(data_dir, "--appendfsync", "always") as server:
        with Resp(server.address) as client:
            for index in range(KEYS):
                assert client.call("SET", b"k%d" % index, b"value-%d" % index) == "OK"
        assert server.terminate(EXIT_SECONDS) == 0, server.log()
    log = data_dir / "log.1"
    return data_dir, log, os.path.getsize(log)


def assert_all_keys(address: tuple[str, int]) -> None:
    with Resp(address) as client:
        assert client.call("DBSIZE") == KEYS
        values = client.call("MGET", *[b"k%d" % index for index in range(KEYS)])
        assert values == [b"value-%d" % index for index in range(KEYS)]


def refused_start(data_dir: Path, *flags: str) -> ServerProcess:
    with launched(data_dir, *flags) as server:
        assert server.wait_listening() is None, "the server started on damaged data"
        assert server.wait(EXIT_SECONDS) == 1, server.log()
    return server


@pytest.mark.parametrize(
    "garbage",
    [b"\x13\x00\x00", b"\x40\x00\x00\x00\x12\x34\x56\x78partial", b"\x00" * 4096],
    ids=["short-frame", "incomplete-record", "zero-filled"],
)
def test_torn_tail_is_cut_with_a_warning_and_the_data_before_it_served(written, garbage: bytes) -> None:
    data_dir, log, size = written
    with open(log, "ab") as file:
        file.write(garbage)
    with started(data_dir) as server:
        warnings = [line for line in server.log_lines if "WARNING" in line and "torn tail" in line]
        assert len(warnings) == 1 and f"{log}: torn tail at offset {size}" in warnings[0], server.log()
        assert_all_keys(server.address)
        assert os.path.getsize(log) == size
        with Resp(server.address) as client:
            assert client.call("SET", "after", "cut") == "OK"
        assert server.terminate(EXIT_SECONDS) == 0, server.log()
    assert os.path.getsize(log) > size  # appends continue at the cut


def test_torn_tail_refused_with_aof_load_truncated_no(written) -> None:
    data_dir, log, size = written
    with open(log, "ab") as file:
        file.write(b"\x40\x00\x00\x00torn")
    server = refused_start(data_dir, "--aof-load-truncated", "no")
    assert f"{log}: torn tail at offset {size}" in server.log()
    assert "refused" in server.log()
    assert os.path.getsize(log) == size + 8  # nothing was cut


def test_flipped_byte_in_an_early_record_refuses_to_start(written) -> None:
    data_dir, log, size = written
    data = bytearray(log.read_bytes())
    first_payload = HEADER_BYTES + FRAME_BYTES
    data[first_payload + 3] ^= 0x20
    log.write_bytes(bytes(data))
    server = refused_start(data_dir)
    assert f"cannot start: {log}: corrupt at offset {HEADER_BYTES}: checksum mismatch" in server.log()
    assert log.read_bytes() == bytes(data)  # nothing was cut or rewritten
