"""A fixed-memory latency histogram with log-linear buckets (HdrHistogram's idea).

Values are whole microseconds. Values below 16 us get a bucket each; above
that, every power of two is split into 8 buckets, so a reported percentile is
at most 12.5% above the true value and memory never grows with the number of
samples (at most ``MAX_BUCKETS`` counters). Not thread-safe: each one is
written by one thread only (``Stats`` keeps one per thread and merges copies).
"""

from __future__ import annotations

import math

SUB_BUCKETS = 8
_LINEAR_LIMIT = 2 * SUB_BUCKETS  # values below this get one bucket each
MAX_VALUE_US = (1 << 40) - 1  # about 12 days; larger samples are clamped
MAX_BUCKETS = _LINEAR_LIMIT + (MAX_VALUE_US.bit_length() - 4) * SUB_BUCKETS


def bucket_index(value_us: int) -> int:
    if value_us < _LINEAR_LIMIT:
        return value_us if value_us > 0 else 0
    if value_us > MAX_VALUE_US:
        value_us = MAX_VALUE_US
    shift = value_us.bit_length() - 4
    return _LINEAR_LIMIT + (shift - 1) * SUB_BUCKETS + ((value_us >> shift) - SUB_BUCKETS)


def bucket_upper_bound(index: int) -> int:
    """The largest value (us) that falls into bucket ``index``."""
    if index < _LINEAR_LIMIT:
        return index
    shift = (index - _LINEAR_LIMIT) // SUB_BUCKETS + 1
    top = (index - _LINEAR_LIMIT) % SUB_BUCKETS + SUB_BUCKETS
    return ((top + 1) << shift) - 1


class Histogram:
    __slots__ = ("counts", "total", "sum_us")

    def __init__(self) -> None:
        self.counts: list[int] = []
        self.total = 0
        self.sum_us = 0

    def record(self, value_us: int) -> None:
        self.record_n(value_us, 1)

    def record_n(self, value_us: int, samples: int) -> None:
        """``samples`` samples of the same value."""
        index = bucket_index(value_us)
        counts = self.counts
        if index >= len(counts):
            counts.extend([0] * (index + 1 - len(counts)))
        counts[index] += samples
        self.total += samples
        self.sum_us += value_us * samples

    def percentile(self, fraction: float) -> int:
        """The upper bound of the bucket holding the ``fraction`` quantile (0 if empty)."""
        if not self.total:
            return 0
        # round() first: 0.95 * 100 is 95.00000000000001 in floating point.
        rank = max(1, math.ceil(round(fraction * self.total, 9)))
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                return bucket_upper_bound(index)
        return bucket_upper_bound(len(self.counts) - 1)

    def cumulative(self, bounds_us: list[int]) -> list[int]:
        """How many samples are <= each bound (bounds ascending); for power-of-two
        or Prometheus-style bucket reports."""
        result = []
        seen = 0
        index = 0
        counts = self.counts
        for bound in bounds_us:
            while index < len(counts) and bucket_upper_bound(index) <= bound:
                seen += counts[index]
                index += 1
            result.append(seen)
        return result

    def merge(self, other: Histogram) -> None:
        """Add ``other``'s samples (``other`` may be another thread's: copy first)."""
        counts = list(other.counts)
        if len(counts) > len(self.counts):
            self.counts.extend([0] * (len(counts) - len(self.counts)))
        for index, count in enumerate(counts):
            self.counts[index] += count
        # Count from the copy, not other.total: the owner may have recorded
        # a sample since, and percentiles need total == sum(counts).
        self.total += sum(counts)
        self.sum_us += other.sum_us

    def minus(self, baseline: Histogram) -> Histogram:
        """The samples recorded since ``baseline`` was a copy of this histogram."""
        result = Histogram()
        result.counts = list(self.counts)
        for index, count in enumerate(baseline.counts):
            result.counts[index] -= count
        result.total = self.total - baseline.total
        result.sum_us = self.sum_us - baseline.sum_us
        return result
