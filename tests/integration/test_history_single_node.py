"""The history checkers (harness/history) against today's single trio_kv node:
real processes, real redis-py clients, real kill -9.

* 4 clients of random SET/GET/DEL on 10 keys under ``--appendfsync always``:
  the history is linearizable, and passes every other checker;
* kill -9 twice under that load, restarted on the same port and data
  directory: no acknowledged write is lost (and the history is still
  linearizable: a crash only adds unknown outcomes);
* the negative control: the same against ``--appendonly no``, where a
  restart loses everything, must make the survival checker report lost
  writes: proof that it can fail.

The histories are saved next to the test's tmp_path (``history.jsonl``) and,
for the first test, checked again through ``python -m harness.history check``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.history.checks import run_checks
from harness.history.faults import RestartableNode
from harness.history.final_state import read_final_state
from harness.history.jsonl import dump_history
from harness.history.linearizable import check_linearizable
from harness.history.model import OK, READ, UNKNOWN, WRITE, History
from harness.history.survival import check_survival
from harness.history.workload import WorkloadConfig, run_workload

from ..conftest import REPO

CLI_SECONDS = 60.0


def run(node: RestartableNode, config: WorkloadConfig, kill_at_s: list[float], save_to: Path) -> History:
    history = run_workload(config, [node.kill_restart_fault(at_s) for at_s in kill_at_s])
    history.finals = read_final_state([node.address], config.keys())
    dump_history(history, save_to)
    return history


def count(history: History, kind: str, outcome: str) -> int:
    return sum(op.kind == kind and op.outcome == outcome for op in history.ops)


def test_four_clients_on_one_node_are_linearizable(tmp_path: Path) -> None:
    with RestartableNode(REPO, tmp_path / "data", "--appendfsync", "always") as node:
        config = WorkloadConfig(nodes=[node.address], clients=4, key_count=10, duration_s=2.5, seed=1)
        history = run(node, config, [], tmp_path / "history.jsonl")
    assert count(history, WRITE, OK) > 200 and count(history, READ, OK) > 200, len(history.ops)
    assert {op.process for op in history.ops} == {"c0", "c1", "c2", "c3"}
    verdicts = run_checks(history)
    assert [verdict.checker for verdict in verdicts] == ["survival", "linearizable", "siblings", "sessions"]
    for verdict in verdicts:
        assert verdict.valid, verdict.report()
    # The same file, replayed through the command line.
    checked = subprocess.run(
        [sys.executable, "-m", "harness.history", "check", str(tmp_path / "history.jsonl")],
        cwd=REPO, capture_output=True, text=True, timeout=CLI_SECONDS,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "linearizable: valid" in checked.stdout and "survival: valid" in checked.stdout


def kill_twice(tmp_path: Path, *flags: str) -> History:
    """Kill -9 after 1 s and again at the end of 2.5 s of load (restarting each
    time): the second crash leaves most keys' last writes to the restart."""
    with RestartableNode(REPO, tmp_path / "data", *flags) as node:
        config = WorkloadConfig(nodes=[node.address], clients=4, key_count=50, duration_s=2.5, seed=2)
        history = run(node, config, [1.0, 2.5], tmp_path / "history.jsonl")
        assert node.restarts == 2
    assert len(history.faults) == 2 and all(fault.error is None for fault in history.faults)
    return history


@pytest.mark.slow
def test_kill_9_twice_loses_no_acknowledged_write(tmp_path: Path) -> None:
    history = kill_twice(tmp_path, "--appendfsync", "always")
    survival = check_survival(history)
    assert survival.valid, survival.report()
    assert survival.counts["lost"] == 0
    # Material: acknowledged writes that had to come back from the log.
    assert survival.counts["present"] >= 10, survival.report()
    linearizable = check_linearizable(history)
    assert linearizable.valid, linearizable.report()


@pytest.mark.slow
def test_negative_control_a_memory_only_node_loses_acknowledged_writes(tmp_path: Path) -> None:
    history = kill_twice(tmp_path, "--appendonly", "no")
    survival = check_survival(history)
    assert not survival.valid
    assert survival.counts["lost"] >= 5, survival.report()
    assert all("lost write" in problem for problem in survival.problems)
    assert not check_linearizable(history).valid
    # Nothing here is the clients' doing: the writes were acknowledged, not unknown.
    assert count(history, WRITE, UNKNOWN) <= 8


def test_a_cluster_mode_node_read_through_tkv_siblings(tmp_path: Path) -> None:
    """The same driver against a one-node cluster (emulated mode): reads and
    the final read go through TKV.SIBLINGS (a list of values per read)."""
    with RestartableNode(REPO, tmp_path / "data", "--cluster-enabled", "yes", "--appendfsync", "always") as node:
        config = WorkloadConfig(nodes=[node.address], clients=4, key_count=10, duration_s=1.5, seed=3, read_siblings=True)
        history = run(node, config, [], tmp_path / "history.jsonl")
    reads = [op for op in history.ops if op.kind == READ and op.outcome == OK]
    assert reads and all(isinstance(op.result, list) for op in reads)
    assert any(op.result for op in reads)
    assert any(final.values for final in history.finals)
    for verdict in run_checks(history):
        assert verdict.valid, verdict.report()
