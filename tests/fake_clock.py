"""The test suite's one fake wall clock, for ``Keyspace(clock_ms=...)``.

It only moves when a test says so, so TTLs and expiry are exact.
"""

from __future__ import annotations

START_MS = 1_700_000_000_000


class FakeClock:
    """Wall-clock milliseconds that only move when a test says so."""

    def __init__(self, now_ms: int = START_MS) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> None:
        self.now_ms += ms
