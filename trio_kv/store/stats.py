"""Server-wide counters and latency histograms, exact under any concurrency.

In CPython ``x += 1`` from several threads can lose updates, and commands run
on several worker threads (readers in parallel), so every update and every
read of a consistent view takes ``Stats``' own lock. The lock is held for a
few attribute updates only, never across store work.

What is counted:

* ``gets``/``sets``/``dels``: commands whose table entry names that counter
  (the text protocol's ``STATS`` fields), successful or not.
* ``errors``: every error reply, from any protocol, including framing errors
  raised before a command exists.
* per command name: calls, failed calls, total execution microseconds (for
  Redis' ``INFO commandstats``) and a latency histogram of the time from the
  moment the request was read to the moment its reply was ready (queueing,
  the thread hop and execution, everything but the send).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from .histogram import Histogram


@dataclass(slots=True)
class CommandStats:
    calls: int = 0
    failed_calls: int = 0
    usec: int = 0
    latency: Histogram = field(default_factory=Histogram)


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._zero()

    def _zero(self) -> None:
        self.gets = 0
        self.sets = 0
        self.dels = 0
        self.errors = 0
        self.keyspace_hits = 0
        self.keyspace_misses = 0
        self.rejected_connections = 0
        self.total_connections = 0
        self.total_commands = 0
        self.commands: dict[str, CommandStats] = {}

    def record_command(
        self, name: str, counter: str | None, failed: bool, exec_us: int, latency_us: int
    ) -> None:
        with self._lock:
            self.total_commands += 1
            if counter is not None:
                setattr(self, counter, getattr(self, counter) + 1)
            if failed:
                self.errors += 1
            entry = self.commands.get(name)
            if entry is None:
                entry = self.commands[name] = CommandStats()
            entry.calls += 1
            entry.failed_calls += failed
            entry.usec += exec_us
            entry.latency.record(latency_us)

    def record_error(self) -> None:
        """An error reply that no command produced (framing, limits)."""
        with self._lock:
            self.errors += 1

    def add(self, counter: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self, counter, getattr(self, counter) + amount)

    def counters(self) -> dict[str, int]:
        with self._lock:
            return {
                "gets": self.gets,
                "sets": self.sets,
                "dels": self.dels,
                "errors": self.errors,
                "keyspace_hits": self.keyspace_hits,
                "keyspace_misses": self.keyspace_misses,
                "rejected_connections": self.rejected_connections,
                "total_connections": self.total_connections,
                "total_commands": self.total_commands,
            }

    def latency_summary(self) -> list[tuple[str, int, int, int, int]]:
        """``(name, count, p50_us, p95_us, p99_us)`` per command, by name."""
        with self._lock:
            return [
                (
                    name,
                    entry.latency.total,
                    entry.latency.percentile(0.50),
                    entry.latency.percentile(0.95),
                    entry.latency.percentile(0.99),
                )
                for name, entry in sorted(self.commands.items())
            ]

    def command_table(self) -> dict[str, tuple[int, int, int]]:
        """``name -> (calls, failed_calls, usec)``."""
        with self._lock:
            return {
                name: (entry.calls, entry.failed_calls, entry.usec)
                for name, entry in sorted(self.commands.items())
            }

    def latency_cumulative(self, name: str, bounds_us: list[int]) -> tuple[int, list[int]]:
        with self._lock:
            entry = self.commands.get(name)
            if entry is None:
                return 0, [0] * len(bounds_us)
            return entry.latency.total, entry.latency.cumulative(bounds_us)

    def reset(self) -> None:
        """CONFIG RESETSTAT: every counter and histogram back to zero."""
        with self._lock:
            self._zero()
