"""``python -m harness.history check FILE``: exit 0 for a valid saved history,
1 with the problems printed for an invalid one, 2 for an unreadable file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness.history.jsonl import dump_history

from ..conftest import REPO
from ..history_ops import history, r, w

CLI_SECONDS = 60.0


def check(path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.history", "check", str(path), *options],
        cwd=REPO, capture_output=True, text=True, timeout=CLI_SECONDS,
    )


def test_valid_history(tmp_path: Path) -> None:
    dump_history(history(w("c0", "x", "c0:1", 0, 1), r("c1", "x", "c0:1", 2, 3), finals={"x": ["c0:1"]}), tmp_path / "h.jsonl")
    result = check(tmp_path / "h.jsonl")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[0] == "2 operations, 1 final reads, 0 faults"


def test_invalid_history_names_the_lost_write(tmp_path: Path) -> None:
    dump_history(history(w("c0", "x", "c0:1", 0, 1), r("c1", "x", None, 2, 3), finals={"x": []}), tmp_path / "h.jsonl")
    result = check(tmp_path / "h.jsonl")
    assert result.returncode == 1
    assert "survival: INVALID" in result.stdout and "linearizable: INVALID" in result.stdout
    assert '"value": "c0:1"' in result.stdout
    only = check(tmp_path / "h.jsonl", "--checks", "siblings")
    assert only.returncode == 0 and "survival" not in only.stdout


def test_unreadable_file_and_unknown_checker(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text('{"type": "op", "index": 0}\n')
    assert check(tmp_path / "bad.jsonl").returncode == 2
    assert check(tmp_path / "missing.jsonl").returncode == 2
    dump_history(history(), tmp_path / "empty.jsonl")
    result = check(tmp_path / "empty.jsonl", "--checks", "jepsen")
    assert result.returncode == 2 and "unknown checkers" in result.stderr
