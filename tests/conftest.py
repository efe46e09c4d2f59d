"""Shared test helpers: finding system tools, and starting the server.

``require_tool(name)`` skips a test when a system tool (nc, socat,
redis-cli, ...) is missing, except under CI (``KV_TESTS_REQUIRE_TOOLS=1``,
set by ``.ci/run``), where a missing tool is a failure, so CI never passes by
skipping.
"""

from __future__ import annotations

import os
import shutil

import pytest


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (scripts/ensure-tools installs it)"
        if os.environ.get("KV_TESTS_REQUIRE_TOOLS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path
