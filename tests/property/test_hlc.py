"""The hybrid logical clock's promises (cluster/hlc.py), driven by a fake
physical clock that may stall, step back, or lag remote timestamps."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from trio_kv.cluster.hlc import LOGICAL_MASK, HybridClock, logical_of, offset_clock, pack, physical_ms_of

_events = st.lists(
    st.tuples(st.sampled_from(["now", "observe"]), st.integers(-5, 5), st.integers(0, 2**50)), max_size=60
)


@given(st.integers(0, 2**40), _events)
def test_every_timestamp_is_above_everything_before(start_ms: int, events: list[tuple[str, int, int]]) -> None:
    physical = [start_ms]
    clock = HybridClock(lambda: physical[0])
    before = 0
    for kind, step_ms, remote in events:
        physical[0] = max(0, physical[0] + step_ms)  # the physical clock may step back
        if kind == "now":
            stamp = clock.now()
        else:
            stamp = clock.observe(remote)
            assert stamp > remote
        assert stamp > before
        # Never behind physical time; ahead only as far as what it saw forces.
        assert physical_ms_of(stamp) >= physical[0]
        assert stamp <= max(pack(physical[0], 0), before + 1, (remote + 1) if kind == "observe" else 0)
        before = stamp


def test_physical_time_wins_when_it_is_ahead() -> None:
    physical = [1000]
    clock = HybridClock(lambda: physical[0])
    assert clock.now() == pack(1000, 0)
    assert clock.now() == pack(1000, 1)
    physical[0] = 1001
    assert clock.now() == pack(1001, 0)
    assert clock.observe(pack(5000, 7)) == pack(5000, 8)
    assert clock.now() == pack(5000, 9)  # the remote clock is ahead: follow it


def test_logical_overflow_borrows_the_next_millisecond() -> None:
    clock = HybridClock(lambda: 7)
    clock.observe(pack(7, LOGICAL_MASK - 1))
    assert clock.now() == pack(8, 0)
    assert logical_of(clock.now()) == 1


def test_offset_clock_shifts_physical_time() -> None:
    assert offset_clock(lambda: 100, -30)() == 70
    base = lambda: 5  # noqa: E731
    assert offset_clock(base, 0) is base
