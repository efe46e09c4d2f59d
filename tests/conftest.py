"""Shared test helpers: finding system tools, and where the repository is.

``require_tool(name)`` skips a test when a system tool (nc, socat,
redis-cli, ...) is missing, except under CI (``KV_TESTS_REQUIRE_TOOLS=1``,
set by ``.ci/run``), where a missing tool is a failure, so CI never passes by
skipping.

Server subprocesses are started with the harness's own helper,
``harness.server_process.ServerProcess`` (stdlib only): one implementation
of "start, drain stderr, wait for ``listening on``, stop" for the harness
and the tests. ``harness/`` has no ``__init__.py``; it is imported as a
namespace package from the repository root, which is put on ``sys.path``
here (pytest's rootdir insertion does it too; this does not depend on it).
Other shared pieces: ``tests/fake_clock.py`` (the one fake wall clock) and
``tests/unit/redis_session.py`` (Redis commands through the engine).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# No per-example deadline: Hypothesis' default (200 ms) is a timed
# assertion, and on a loaded 2-core machine a pure example can take longer
# (a DVVSet property failed that way once). Tests that need fewer or more
# examples still set max_examples themselves.
settings.register_profile("trio_kv", deadline=None)
settings.load_profile("trio_kv")

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (scripts/ensure-tools installs it)"
        if os.environ.get("KV_TESTS_REQUIRE_TOOLS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path
