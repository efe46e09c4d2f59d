"""Anti-entropy's repair rate (cluster/repair_rate.py), with hypothesis:
whatever the batches and whenever they are asked for, the keys a caller
that waits as told repairs in any span of T seconds are at most
``rate * T + burst``; an idle caller's first burst goes at once; 0 is
unlimited."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_kv.cluster.repair_rate import RepairRate


@given(
    rate=st.integers(1, 5000),
    burst=st.integers(1, 200),
    asks=st.lists(st.tuples(st.floats(0, 2, allow_nan=False), st.integers(1, 300)), min_size=1, max_size=60),
)
def test_keys_granted_in_any_span_stay_under_rate_times_span_plus_burst(rate: int, burst: int, asks: list[tuple[float, int]]) -> None:
    limiter = RepairRate(rate, burst)
    now = 0.0
    granted: list[tuple[float, int]] = []  # (when the caller repairs, keys)
    for pause, keys in asks:
        now += pause
        wait = limiter.reserve(now, keys)
        assert wait >= 0
        now += wait  # a caller that waits as told
        granted.append((now, min(keys, burst)))
    for i, (start, _) in enumerate(granted):
        for j in range(i, len(granted)):
            end = granted[j][0]
            keys = sum(count for _, count in granted[i : j + 1])
            assert keys <= rate * (end - start) + burst + 1e-6 * rate


def test_an_idle_callers_first_burst_goes_at_once_and_the_next_waits_its_share() -> None:
    limiter = RepairRate(1000, 100)
    assert limiter.reserve(50.0, 100) == 0.0
    assert limiter.reserve(50.0, 100) == pytest.approx(0.1)
    assert limiter.reserve(60.0, 100) == 0.0  # idle again: the burst is back


def test_zero_is_unlimited() -> None:
    limiter = RepairRate(0, 100)
    assert all(limiter.reserve(0.0, 100) == 0.0 for _ in range(1000))


def test_a_negative_rate_or_an_empty_burst_is_refused() -> None:
    with pytest.raises(ValueError):
        RepairRate(-1, 10)
    with pytest.raises(ValueError):
        RepairRate(10, 0)
