"""Seeded chaos runs of the simulated cluster (issue 11, "200 seeded runs of
the deterministic simulation in CI, any failure replayable from its seed").

Each seed draws a fault schedule (``schedule``: partitions, crashes under
``appendfsync always`` or ``everysec`` with a seeded cut of the unsynced
log, network latency, stalls and resets, retried requests, clock offsets,
the write context mode) and runs several clients' SET/DEL/INCR/APPEND/GET
and TKV.SIBLINGS at ONE, QUORUM and ALL under it (``chaos_run``); then the
run's checks (``chaos_checks``: acknowledged writes survive, replicas agree
after anti-entropy, sessions at QUORUM where promised, sibling and counter
bounds) must find nothing.

``make test`` runs ``QUICK_SEEDS``; CI (``-m slow``) runs ``CI_SEEDS`` more,
200 in all. A failure prints its seed, its schedule, the checks' report
and the line that replays it: ``SIM_SEED=<seed>`` runs that seed alone
(through ``test_chaos_seed``), and a seed's run is the same every time
(``test_a_seed_replays_the_same_history``: two runs, one digest).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .chaos_checks import problems
from .chaos_run import ChaosRun, chaos_run

REPLAY_SEED = os.environ.get("SIM_SEED")
QUICK_SEEDS = [int(REPLAY_SEED)] if REPLAY_SEED else list(range(10))
CI_SEEDS = [] if REPLAY_SEED else list(range(10, 200))
REPO = Path(__file__).resolve().parents[2]
DIGEST_SCRIPT = """
import sys, logging
from pathlib import Path
from tests.cluster_sim.chaos_run import chaos_run
logging.disable(logging.CRITICAL)
print(chaos_run(int(sys.argv[1]), Path(sys.argv[2])).digest())
"""
REPLAY = "SIM_SEED={seed} .venv/bin/python -m pytest tests/cluster_sim/test_sim_chaos.py -k test_chaos_seed"


def _report(run: ChaosRun, found: list[str]) -> str:
    seed = run.schedule.seed
    return "\n".join([
        f"chaos seed {seed} failed; replay it with:", "    " + REPLAY.format(seed=seed),
        "schedule:", *("    " + line for line in run.schedule.lines()),
        "problems:", *found,
        "history:", *(record.line() for record in run.records),
    ])


def _check_seed(seed: int, data_root: Path) -> ChaosRun:
    try:
        run = chaos_run(seed, data_root)
    except Exception as raised:  # a hang (a bounded wait's TooSlowError) or a crash of the run itself
        raise AssertionError(
            f"chaos seed {seed} raised; replay it with:\n    {REPLAY.format(seed=seed)}"
        ) from raised
    found = problems(run)
    assert not found, _report(run, found)
    return run


@pytest.mark.parametrize("seed", QUICK_SEEDS)
def test_chaos_seed(seed: int, tmp_path: Path) -> None:
    _check_seed(seed, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("seed", CI_SEEDS)
def test_chaos_many_seeds(seed: int, tmp_path: Path) -> None:
    _check_seed(seed, tmp_path)


def test_a_seed_replays_the_same_history(tmp_path: Path) -> None:
    first = chaos_run(3, tmp_path / "first")
    again = chaos_run(3, tmp_path / "again")
    # The runs did something: crashes, partitions, unknown outcomes.
    assert any(" crash " in line for line in first.log) and any(" partition " in line for line in first.log)
    assert first.digest() == again.digest()
    assert [record.line() for record in first.records] == [record.line() for record in again.records]
    # And in a new process with another hash seed: what a replay from SIM_SEED is.
    elsewhere = subprocess.run(
        [sys.executable, "-c", DIGEST_SCRIPT, "3", str(tmp_path / "elsewhere")], cwd=REPO, capture_output=True,
        text=True, timeout=300, env={**os.environ, "PYTHONHASHSEED": "12345"}, check=True,
    )
    assert elsewhere.stdout.split() == [first.digest()]
