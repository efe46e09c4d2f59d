"""INFO used_memory's accounting (store/memory_accounting.py) against the
resident size it stands for: in a fresh process (so no arena freed by an
earlier test is reused), loading keys moves ``Keyspace.memory_bytes()`` by
what it moves the RSS, within 10%, for small and large values."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ..conftest import REPO

PROCESS_SECONDS = 120
LOAD = """
import sys
from trio_kv.config import Config
from trio_kv.store.store import Store, resident_bytes
value_bytes = int(sys.argv[1])
store = Store(Config())
keyspace = store.keyspace
rss_before, used_before = resident_bytes(), store.used_memory_bytes()
for i in range(100_000):
    keyspace.set(b"key:%012d" % i, b"x" * value_bytes)
print((store.used_memory_bytes() - used_before) / (resident_bytes() - rss_before))
"""


@pytest.mark.slow  # a fresh interpreter loading 100,000 keys: 5-25 s under load
@pytest.mark.parametrize("value_bytes", [3, 100, 1000])
def test_accounted_growth_matches_the_resident_growth(value_bytes: int) -> None:
    done = subprocess.run(
        [sys.executable, "-c", LOAD, str(value_bytes)], cwd=REPO, capture_output=True, text=True,
        timeout=PROCESS_SECONDS, check=True,
    )
    ratio = float(done.stdout)
    assert 0.9 <= ratio <= 1.1, ratio
