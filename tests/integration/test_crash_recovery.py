"""Crashes of a real server process while clients write: ``kill -9`` at a
random moment under ``appendfsync always`` and ``everysec``, a simulated
power loss under ``always``, and a crash at each step of a compaction.

After every restart each writer's keys must be a prefix of what it sent,
at least as long as what was acknowledged (durable_server.Writer.check):
no acknowledged write is lost, nothing half-applied or invented appears.
Rounds accumulate on one data directory, so later rounds also replay what
the earlier ones left (including the torn tails they cut).
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from harness.server_process import server_environment

from .durable_server import CRASH_EXIT_STATUS, EXIT_SECONDS, Resp, WriterGroup, data_files, started, verify_restart

ROUNDS = 5
# Writers per round and commands each sends per round trip (1: one at a
# time; more: a pipeline, so several writes are in flight at the kill).
DEPTHS = [1, 1, 1, 4, 8]
KILL_AFTER_SECONDS = (0.15, 0.6)
MIN_ACKED_PER_ROUND = 50
SEED = int(os.environ.get("KV_TEST_SEED", "4"))


def crash_rounds(tmp_path: Path, flags: list[str], rng: random.Random, env=None, after_kill=None) -> dict:
    """ROUNDS of: start on the same data dir, verify what the last round
    left, write with every writer, kill -9 at a random moment."""
    data_dir = tmp_path / "data"
    model: dict[bytes, bytes] = {}
    previous: WriterGroup | None = None
    totals = {"acked": 0, "sent": 0, "keys": 0}
    for round_index in range(ROUNDS + 1):
        with started(data_dir, *flags, env=env) as server:
            with Resp(server.address) as client:
                if previous is not None:
                    model = verify_restart(client, model, previous)
            if round_index == ROUNDS:
                server.terminate(EXIT_SECONDS)
                break
            group = WriterGroup(server.address, f"r{round_index}", DEPTHS).start()
            group.wait_acked(MIN_ACKED_PER_ROUND)
            time.sleep(rng.uniform(*KILL_AFTER_SECONDS))
            server.kill()
            group.stop()
            failed = [writer.error_reply for writer in group.writers if writer.error_reply]
            assert not failed, f"error replies while writing: {failed}"
            totals["acked"] += group.acked
            totals["sent"] += group.sent
            if after_kill is not None:
                after_kill(data_dir)
            previous = group
    totals["keys"] = len(model)
    return totals


@pytest.mark.parametrize("policy", ["always", "everysec"])
def test_kill_9_loses_no_acknowledged_write(tmp_path: Path, policy: str) -> None:
    rng = random.Random(f"{SEED}-{policy}")
    totals = crash_rounds(tmp_path, ["--appendfsync", policy], rng)
    assert totals["acked"] >= ROUNDS * MIN_ACKED_PER_ROUND
    assert totals["keys"] > 0


def _truncate_to_synced(hook_file: Path, cut: list[int]):
    def after_kill(data_dir: Path) -> None:
        path, offset = hook_file.read_text().split()
        size = os.path.getsize(path)
        assert int(offset) <= size, (path, offset, size)
        assert os.path.dirname(path) == str(data_dir)
        # A power cut may drop anything that was never fsynced.
        os.truncate(path, int(offset))
        cut.append(size - int(offset))

    return after_kill


def test_power_loss_under_always_loses_no_acknowledged_write(tmp_path: Path) -> None:
    hook_file = tmp_path / "synced"
    cut: list[int] = []
    env = server_environment(KV_TEST_SYNCED_LOG=str(hook_file))
    rng = random.Random(f"{SEED}-power")
    totals = crash_rounds(tmp_path, ["--appendfsync", "always"], rng, env, _truncate_to_synced(hook_file, cut))
    assert len(cut) == ROUNDS and totals["acked"] >= ROUNDS * MIN_ACKED_PER_ROUND


@pytest.mark.parametrize("step", ["switched", "snapshot-written", "snapshot-installed"])
def test_crash_at_each_compaction_step_recovers_old_or_new_state(tmp_path: Path, step: str) -> None:
    data_dir = tmp_path / "data"
    # A first round leaves data from before the compaction, and a first snapshot.
    with started(data_dir, "--appendfsync", "always") as server:
        group = WriterGroup(server.address, "before", DEPTHS).start()
        group.wait_acked(300)
        group.stop()
        with Resp(server.address) as client:
            assert client.call("SAVE") == "OK"
            model = verify_restart(client, {}, group)
        assert server.terminate(EXIT_SECONDS) == 0, server.log()
    assert data_files(data_dir) == ["log.2", "snapshot.2"]

    with started(data_dir, "--appendfsync", "always", env=server_environment(KV_TEST_CRASH_AT=step)) as server:
        group = WriterGroup(server.address, "during", DEPTHS).start()
        group.wait_acked(200)
        with Resp(server.address) as client:
            assert client.call("BGREWRITEAOF") == "Background append only file rewriting started"
        status = server.wait(EXIT_SECONDS)
        group.stop()
    assert status == CRASH_EXIT_STATUS, server.log()
    assert f"test crash point {step} reached" in server.log()
    left = data_files(data_dir)
    expected_files = {
        "switched": ["log.2", "log.3", "snapshot.2"],
        "snapshot-written": ["log.2", "log.3", "snapshot.2", "snapshot.3.tmp"],
        "snapshot-installed": ["log.3", "snapshot.3"],
    }[step]
    assert left == expected_files

    with started(data_dir) as server:
        with Resp(server.address) as client:
            verify_restart(client, model, group)
            # The restart finished what the crash left: one snapshot, one log.
            assert data_files(data_dir) == (["log.3", "snapshot.3"] if step == "snapshot-installed" else
                                            ["log.2", "log.3", "snapshot.2"])
            assert client.call("SAVE") == "OK"
        assert data_files(data_dir) == ["log.4", "snapshot.4"]
