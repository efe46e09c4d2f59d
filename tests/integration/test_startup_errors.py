"""A server that cannot start says why in one line and exits 1 (no traceback)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
START_SECONDS = 20


def _env() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if not name.startswith("TRIO_KV_")}


def _run(*flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "trio_kv", *flags],
        cwd=REPO, env=_env(), capture_output=True, text=True, timeout=START_SECONDS,
    )


def test_address_in_use(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _run("--port", str(port), "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 1
    assert "cannot start: [Errno 98] Address already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_data_directory_unusable(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = _run("--port", "0", "--data-dir", str(blocker / "data"))
    assert result.returncode == 1
    assert "cannot start:" in result.stderr and str(blocker) in result.stderr
    assert "Traceback" not in result.stderr


def test_second_listener_in_use_releases_the_first(tmp_path):
    # The RESP-only port is taken: the main listener opened first must be
    # closed again and the data directory unlocked (a retry can start).
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = _run("--port", "0", "--redis-port", str(taken.getsockname()[1]), "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 1
    assert "Address already in use" in result.stderr
    retry = subprocess.Popen(
        [sys.executable, "-m", "trio_kv", "--port", "0", "--data-dir", str(tmp_path / "d")],
        cwd=REPO, env=_env(), stderr=subprocess.PIPE, text=True,
    )
    try:
        for line in retry.stderr:
            if "listening on" in line:
                break
            assert "cannot start" not in line, line
    finally:
        retry.terminate()
        assert retry.wait(START_SECONDS) == 0
