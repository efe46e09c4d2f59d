"""The black-box harness (``harness/run``: real server processes, driven by
real ``nc`` and ``socat``) passes all five categories."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ..conftest import require_tool

REPO = Path(__file__).resolve().parents[2]
# The harness takes well under 30 s; this bound only stops a hung run.
HARNESS_SECONDS = 90


def test_harness_passes_all_categories():
    require_tool("nc")
    require_tool("socat")
    result = subprocess.run(
        [sys.executable, str(REPO / "harness" / "run")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=HARNESS_SECONDS,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert result.stdout.splitlines()[-1] == "5/5 tests passed", output
