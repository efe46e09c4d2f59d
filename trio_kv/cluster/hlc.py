"""A hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", 2014).

A timestamp is one 64-bit unsigned int: the physical part (milliseconds
since the epoch) in the high 48 bits, a logical counter in the low 16:
``(physical_ms << 16) | logical``. Comparing two timestamps as ints compares
them as HLC timestamps, so they sort, pack (``u64``) and travel as plain
integers. 48 bits of milliseconds last until the year 10889.

What the clock promises (the versions rely on it: a sibling written on this
node after it saw a timestamp ``t`` carries a timestamp above ``t``, so
GET's winner, the greatest (timestamp, node id), is the newest write this
node knows of):

* ``now()`` is strictly greater than every timestamp this clock returned or
  observed before, whatever the physical clock does (it may stall or step
  back: the logical counter then counts).
* ``observe(remote)`` is strictly greater than ``remote`` and than
  everything before it (the receive rule of the paper).
* When the physical clock is ahead of everything seen, a timestamp is the
  physical time with logical 0: timestamps stay close to wall-clock time
  (within the largest clock skew between nodes), which is what makes
  "greatest timestamp wins" mean "latest write" to a person.

Rules kept here:

* Time comes in as a callable returning milliseconds (``physical_ms``), so
  tests drive it with a fake clock. The ``--debug-clock-offset-ms`` test
  input (config.py; issue 11's clock skew) is ``offset_clock(wall_clock_ms,
  offset_ms)`` passed in as that callable by the store: nothing else changes.
* The logical counter never overflows into the physical bits: after 65,535
  ticks within one millisecond the clock borrows the next millisecond (the
  timestamp runs at most that far ahead of physical time, and physical time
  catches up).
* Not thread-safe: callers serialize (the store calls it under its write
  lock). No limit on how far ahead a remote timestamp may be (the paper's
  epsilon check) yet: that is failure handling, issue 11; ``observe`` is
  the one place it goes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

LOGICAL_BITS = 16
LOGICAL_MASK = (1 << LOGICAL_BITS) - 1
PHYSICAL_BITS = 64 - LOGICAL_BITS
MAX_TIMESTAMP = (1 << 64) - 1


def pack(physical_ms: int, logical: int) -> int:
    """The timestamp of (physical milliseconds, logical counter)."""
    if not 0 <= logical <= LOGICAL_MASK or not 0 <= physical_ms < 1 << PHYSICAL_BITS:
        raise ValueError(f"HLC parts out of range: physical {physical_ms}, logical {logical}")
    return (physical_ms << LOGICAL_BITS) | logical


def physical_ms_of(timestamp: int) -> int:
    return timestamp >> LOGICAL_BITS


def logical_of(timestamp: int) -> int:
    return timestamp & LOGICAL_MASK


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def offset_clock(physical_ms: Callable[[], int], offset_ms: int) -> Callable[[], int]:
    """``physical_ms`` shifted by ``offset_ms`` (a node whose clock is wrong
    on purpose, for tests of clock skew: issue 11's debug option)."""
    if not offset_ms:
        return physical_ms
    return lambda: physical_ms() + offset_ms


class HybridClock:
    """See the module docstring."""

    __slots__ = ("_physical_ms", "last")

    def __init__(self, physical_ms: Callable[[], int] = wall_clock_ms, last: int = 0) -> None:
        self._physical_ms = physical_ms
        # The greatest timestamp returned or observed so far.
        self.last = last

    def _after(self, floor: int) -> int:
        """The smallest timestamp above ``floor`` and at or above the
        physical time now; becomes ``last``."""
        physical = max(self._physical_ms(), 0) << LOGICAL_BITS
        timestamp = physical if physical > floor else floor + 1
        if timestamp > MAX_TIMESTAMP:
            raise OverflowError("hybrid logical clock past its 48-bit millisecond range")
        self.last = timestamp
        return timestamp

    def now(self) -> int:
        """A timestamp for a local event (a write)."""
        return self._after(self.last)

    def observe(self, remote: int) -> int:
        """Take in a timestamp seen from elsewhere (a remote version); returns
        a timestamp above it and above everything before."""
        return self._after(max(self.last, remote))
