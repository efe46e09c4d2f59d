"""``trio-kv check-log`` as a real subprocess (``python -m trio_kv``): a
clean log, a torn one (exit 1), ``--fix`` with and without confirmation,
mid-file corruption, and usage errors (exit 2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from trio_kv.store.durability.records import KIND_LOG, encode_header, encode_record

RECORDS = [encode_record([("SET", b"key%d" % i, b"value" * i, None)]) for i in range(1, 6)]


def run_check(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trio_kv", "check-log", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    path = tmp_path / "log.3"
    path.write_bytes(encode_header(KIND_LOG, 3) + b"".join(RECORDS))
    return path


def test_clean_log(log_path: Path) -> None:
    result = run_check(str(log_path))
    assert result.returncode == 0, result.stderr
    assert "kind: log" in result.stdout
    assert "generation: 3" in result.stdout
    assert "records: 5 (5 effects)" in result.stdout
    assert f"last good offset: {os.path.getsize(log_path)}" in result.stdout
    assert "status: ok" in result.stdout


def test_torn_log_is_reported_and_fixed_only_after_confirmation(log_path: Path) -> None:
    good = os.path.getsize(log_path)
    with open(log_path, "ab") as file:
        file.write(RECORDS[0][:-3])
    torn_size = os.path.getsize(log_path)
    result = run_check(str(log_path))
    assert result.returncode == 1
    assert f"last good offset: {good}" in result.stdout
    assert f"TORN TAIL at offset {good}" in result.stdout
    result = run_check(str(log_path), "--fix", stdin="n\n")
    assert result.returncode == 1
    assert "[y/N]" in result.stdout and "not fixed" in result.stdout
    assert os.path.getsize(log_path) == torn_size
    result = run_check(str(log_path), "--fix", stdin="y\n")
    assert result.returncode == 1
    assert os.path.getsize(log_path) == good
    assert run_check(str(log_path)).returncode == 0


def test_fix_yes_truncates_without_asking(log_path: Path) -> None:
    good = os.path.getsize(log_path)
    with open(log_path, "ab") as file:
        file.write(bytes(4096))
    result = run_check(str(log_path), "--fix", "--yes")
    assert result.returncode == 1
    assert "[y/N]" not in result.stdout
    assert f"truncated {log_path} to {good} bytes" in result.stdout
    assert os.path.getsize(log_path) == good


def test_corruption_before_the_tail_is_reported_not_fixed(log_path: Path) -> None:
    data = bytearray(log_path.read_bytes())
    second = len(encode_header(KIND_LOG, 3)) + len(RECORDS[0])
    data[second + 12] ^= 0x10
    log_path.write_bytes(bytes(data))
    result = run_check(str(log_path), "--fix", "--yes")
    assert result.returncode == 1
    assert f"CORRUPT at offset {second}" in result.stdout
    assert "records: 1" in result.stdout
    assert "not fixed" in result.stdout
    assert log_path.read_bytes() == bytes(data)


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run_check().returncode == 2
    result = run_check(str(tmp_path / "missing"))
    assert result.returncode == 2
    assert "cannot read" in result.stderr
    assert run_check("--bogus", str(tmp_path)).returncode == 2


def test_file_name_must_match_the_header(log_path: Path) -> None:
    renamed = log_path.with_name("log.4")
    log_path.rename(renamed)
    result = run_check(str(renamed))
    assert result.returncode == 1
    assert "CORRUPT at offset 4: header says generation 3, the file name says 4" in result.stdout
