"""``--debug-clock-offset-ms N``: a test input that shifts a cluster node's
hybrid logical clock by N milliseconds (either sign), so fault tests can run
nodes with skewed clocks; 0 (the default) leaves the wall clock alone."""

from __future__ import annotations

import pytest

from trio_kv.cluster.hlc import physical_ms_of, wall_clock_ms
from trio_kv.config import Config, parse_config
from trio_kv.store.store import Store

HOUR_MS = 3_600_000


def test_the_option_parses_either_sign_and_defaults_to_zero() -> None:
    assert parse_config([]).debug_clock_offset_ms == 0
    assert parse_config(["--debug-clock-offset-ms", "-1500"]).debug_clock_offset_ms == -1500
    assert parse_config([], {"TRIO_KV_DEBUG_CLOCK_OFFSET_MS": "250"}).debug_clock_offset_ms == 250


@pytest.mark.parametrize("offset_ms", [HOUR_MS, -HOUR_MS, 0])
def test_a_stores_hybrid_clock_runs_offset_from_the_wall_clock(offset_ms: int) -> None:
    store = Store(Config(debug_clock_offset_ms=offset_ms), actor_id=b"node-a")
    assert store.versions is not None
    before_ms = wall_clock_ms()
    stamped_ms = physical_ms_of(store.versions.hlc.now())
    after_ms = wall_clock_ms()
    assert before_ms + offset_ms <= stamped_ms <= after_ms + offset_ms
