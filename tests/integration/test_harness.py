"""The black-box harness (``harness/run``: real server processes, driven by
real ``nc``, ``socat`` and ``curl``) passes all its categories, the
durability one (SIGKILL during writes, restart) among them."""

from __future__ import annotations

import re
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
    require_tool("curl")
    result = subprocess.run(
        [sys.executable, str(REPO / "harness" / "run")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=HARNESS_SECONDS,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # N is however many categories there are: each has one [PASS] line.
    passed = [line for line in result.stdout.splitlines() if line.startswith("[PASS] ")]
    assert re.fullmatch(r"(\d+)/\1 tests passed", result.stdout.splitlines()[-1]), output
    assert result.stdout.splitlines()[-1] == f"{len(passed)}/{len(passed)} tests passed", output
    assert len(passed) >= 7 and any(line.startswith("[PASS] durability: ") for line in passed), output
