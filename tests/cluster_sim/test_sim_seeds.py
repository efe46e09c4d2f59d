"""The simulated cluster's properties over many seeds (slow: 4-15 s of
wall time per seed on this shared machine, about 2 min in all). Each seed is another schedule of
latencies, stalls, resets, partition sides, crash victims and cut points;
the fast tests replay one seed each twice, these check the properties
only. A failing seed replays exactly: rerun its ``_run`` with that seed."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import test_sim_acknowledged_writes as acknowledged
from . import test_sim_crash as crash
from . import test_sim_links as links

SEEDS = range(100, 115)


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_properties_hold_for_many_seeds(seed: int, tmp_path: Path) -> None:
    _, counts = links._links_run(seed, tmp_path / "links")
    assert counts["answered"] > 0, counts
    _, counts = links._states_run(seed, tmp_path / "states")
    assert counts["crashes"] == 1, counts
    _, result = crash._crash_run(seed, tmp_path / "crash")
    assert result["present"] >= result["before_sync"], result
    _, survival, siblings = acknowledged._history_modules()
    runs: list[dict[str, object]] = [{"lose_a_disk": False}]
    if acknowledged._has_coordinator():
        runs += [{"lose_a_disk": True}, {"lose_a_disk": True, "cluster_write_context": "read"}]
    for number, run in enumerate(runs):
        _, history = acknowledged._run(seed, tmp_path / f"writes-{number}", **run)  # type: ignore[arg-type]
        verdict = survival.check_survival(history)
        assert verdict.valid, verdict.report()
        if "cluster_write_context" in run:  # the bound per process needs it (see test_sim_acknowledged_writes)
            bounded = siblings.check_siblings(history)
            assert bounded.valid, bounded.report()
