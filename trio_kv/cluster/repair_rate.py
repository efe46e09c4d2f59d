"""``RepairRate``: how long anti-entropy waits before it may repair the
next batch of keys, so repair stays at or under
``--cluster-aae-max-keys-per-second`` on a node (every peer's exchange
shares one ``RepairRate``) and clients keep the rest of the node.

It is the generic cell rate algorithm (GCRA, a token bucket kept as one
number): ``_free_at`` is when the keys reserved so far would have gone
out at exactly the rate. A reservation of ``keys`` moves it
``keys / rate`` seconds on (from now, if it is behind) and must wait
until it is at most ``burst_keys / rate`` seconds ahead of now. So over
any span of T seconds at most ``rate * T + burst_keys`` keys are
granted, and an idle node repairs its first ``burst_keys`` at once.

Rules kept here: pure (the caller passes the time, in seconds on any
monotonic clock); a rate of 0 means unlimited (every wait is 0).
"""

from __future__ import annotations


class RepairRate:
    """See the module docstring."""

    __slots__ = ("keys_per_second", "burst_keys", "_free_at")

    def __init__(self, keys_per_second: float, burst_keys: int) -> None:
        if keys_per_second < 0 or burst_keys < 1:
            raise ValueError("a rate is >= 0 keys a second and its burst >= 1 key")
        self.keys_per_second = keys_per_second
        self.burst_keys = burst_keys
        # When the keys reserved so far are all out at the rate.
        self._free_at = float("-inf")

    @property
    def unlimited(self) -> bool:
        return self.keys_per_second == 0

    def reserve(self, now_seconds: float, keys: int) -> float:
        """Reserve ``keys`` (at most ``burst_keys``); the seconds to wait
        from ``now_seconds`` before repairing them (0: go now)."""
        if self.unlimited or keys <= 0:
            return 0.0
        keys = min(keys, self.burst_keys)
        free_at = max(self._free_at, now_seconds) + keys / self.keys_per_second
        self._free_at = free_at
        return max(0.0, free_at - self.burst_keys / self.keys_per_second - now_seconds)
