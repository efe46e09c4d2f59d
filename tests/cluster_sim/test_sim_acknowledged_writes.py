"""The issue's headline property on the simulated cluster: under a seeded
faulty network (delays, stalls, resets, a partition) with node crashes,
every acknowledged write (``OK`` from a coordinator) is present or
superseded after the run, sibling counts stay within the writers, and
the same seed gives the same history.

Clients are processes of ``harness.history`` (one connection, one request
at a time, a unique value per write), each SETting a few shared keys on a
node it picks, reconnecting to another after an error. Outcomes follow
``harness.history.outcomes``: ``OK`` is ok; ``-NOREPLICAS``, a reset after
the request left, and a timeout are unknown; other errors fail. The final
state of every key is read on every node (its siblings, straight from the
store) after the network healed and every node restarted.

Runs:
* crashes keep the fsynced log (``appendfsync always``): an ``OK`` was
  fsynced somewhere, so this holds with or without replication;
* after the writes, one node also loses its whole disk: only replication
  (W=2 of N=3, the coordinator's data path) keeps the writes it
  acknowledged (the test skips itself where that data path is missing:
  without it 36 of 142 acknowledged writes are lost with seed 21);
* the same with ``--cluster-write-context read``, where sibling counts
  are also checked against the writing processes (see that test).
"""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path
from typing import Any

import pytest
import trio

from trio_kv.protocol.replies import Error, SimpleString
from trio_kv.server.cluster.link import LinkError

from . import determinism
from .cluster import Faults, SimCluster, SimClient, wait_until
from .node import SimNode

FAULTY = Faults(
    latency_min_seconds=0.0005, latency_max_seconds=0.02, stall_probability=0.005, stall_max_seconds=0.3,
    reset_probability=0.005,
)
KEYS = [f"w:{index}" for index in range(30)]
PROCESSES = 6
WRITES_PER_PROCESS = 25
REQUEST_TIMEOUT_SECONDS = 3.0


def _history_modules() -> Any:
    try:
        from harness.history import model, siblings, survival
    except ImportError:
        pytest.skip(
            "harness/history (the survival and sibling checkers, helper 'checker') is not on main yet"
        )
    return model, survival, siblings


def _has_coordinator() -> bool:
    return importlib.util.find_spec("trio_kv.server.cluster.coordinator") is not None


def _final_values(node: SimNode, key: str) -> list[str]:
    running = node.running
    assert running is not None
    versions = running.store.versions
    assert versions is not None
    if running.store.keyspace.get(key.encode()) is None and versions.clock_of(key.encode()) is None:
        return []
    _, siblings = versions.siblings(key.encode())
    return sorted(state.data.decode() for _, state in siblings if state is not None)


def _run(seed: int, data_root: Path, *, lose_a_disk: bool, **config: object) -> tuple[list[str], Any]:
    model, _, _ = _history_modules()
    cluster = SimCluster(seed, data_root, count=3, faults=FAULTY, **config)
    rng = random.Random(f"{seed}/workload")
    history = model.History(meta={"seed": seed, "lose_a_disk": lose_a_disk, **config})
    counter = iter(range(1_000_000))

    async def process(name: str, nursery: trio.Nursery) -> None:
        client: SimClient | None = None
        for sequence in range(WRITES_PER_PROCESS):
            # About 5 s of writes: the chaos schedule's span.
            await trio.sleep(rng.uniform(0, 0.4))
            if client is None:
                node = rng.choice([node for node in cluster.nodes if node.up] or cluster.nodes)
                try:
                    client = await cluster.client(nursery, node, host=f"10.0.1.{int(name[1:]) + 1}")
                except OSError:
                    await trio.sleep(0.1)
                    continue
                address = node.member.address
            key, value = rng.choice(KEYS), f"{name}:{sequence}"
            index, invoke_s = next(counter), trio.current_time()
            outcome, error = model.UNKNOWN, None
            try:
                with trio.fail_after(REQUEST_TIMEOUT_SECONDS):
                    reply = await client.call(b"SET", key.encode(), value.encode())
            except trio.TooSlowError:
                error = "timeout"
            except LinkError as raised:
                outcome, error = (model.UNKNOWN if raised.sent else model.FAIL), str(raised)
            else:
                if reply == SimpleString("OK"):
                    outcome = model.OK
                elif isinstance(reply, Error):
                    error = reply.message
                    outcome = model.UNKNOWN if reply.message.startswith("NOREPLICAS") else model.FAIL
                else:
                    error = f"unexpected reply {reply!r}"
                    outcome = model.FAIL
            history.ops.append(model.Op(
                index=index, process=name, kind=model.WRITE, key=key, value=value, invoke_s=invoke_s,
                complete_s=trio.current_time(), outcome=outcome, error=error, node=address,
            ))
            if outcome != model.OK:
                await client.close()
                client = None

    async def chaos(nursery: trio.Nursery) -> None:
        nodes = list(cluster.nodes)
        rng.shuffle(nodes)
        first, second, third = nodes
        await trio.sleep(0.5)
        cluster.network.partition([first.member.host], [second.member.host, third.member.host])
        await trio.sleep(1.5)
        cluster.network.heal()
        await trio.sleep(0.3)
        second.crash()
        await trio.sleep(1.0)
        await second.start(nursery)
        await trio.sleep(0.5)
        third.crash()
        await trio.sleep(1.0)
        await third.start(nursery)

    async def lose_disk(nursery: trio.Nursery) -> None:
        """After the writes: a replaced machine, same address, an empty disk (and so a new node id)."""
        victim = rng.choice(cluster.nodes)
        await wait_until(lambda: victim.up)
        victim.crash()
        victim.replace_disk()
        await trio.sleep(1.0)
        await victim.start(nursery)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await cluster.start_all(nursery)
            await wait_until(cluster.all_up)
            async with trio.open_nursery() as work:
                work.start_soon(chaos, nursery)
                for number in range(PROCESSES):
                    work.start_soon(process, f"p{number}", nursery)
            if lose_a_disk:
                await lose_disk(nursery)
            cluster.network.heal()
            cluster.network.faults = Faults()
            await wait_until(cluster.all_up)
            await trio.sleep(1)
            for node in cluster.nodes:
                for key in KEYS:
                    history.finals.append(model.FinalRead(node.member.address, key, _final_values(node, key)))
            nursery.cancel_scope.cancel()

    determinism.run(seed, main)
    history.ops.sort(key=lambda op: op.index)
    return cluster.log, history


def _check(seed: int, tmp_path: Path, *, lose_a_disk: bool, check_siblings: bool = False, **config: object) -> None:
    _, survival, siblings = _history_modules()
    log, history = _run(seed, tmp_path / "first", lose_a_disk=lose_a_disk, **config)
    outcomes = [op.outcome for op in history.ops]
    assert outcomes.count("ok") > 50 and any(" crash " in line for line in log), outcomes
    verdict = survival.check_survival(history)
    assert verdict.valid, verdict.report()
    if check_siblings:
        bounded = siblings.check_siblings(history)
        assert bounded.valid, bounded.report()
    again_log, again = _run(seed, tmp_path / "second", lose_a_disk=lose_a_disk, **config)
    assert "\n".join(log) == "\n".join(again_log)
    assert [repr(op) for op in history.ops] == [repr(op) for op in again.ops]
    assert history.finals == again.finals


def _require_coordinator() -> None:
    if not _has_coordinator():
        pytest.skip(
            "the coordinator's data path (trio_kv/server/cluster/coordinator.py, helper 'coordinator') is not "
            "on main: without it a SET is applied on the node that received it only, so losing that node's "
            "disk loses the writes it acknowledged (checked: 36 of 142 lost with seed 21)"
        )


def test_acknowledged_writes_survive_crashes_under_a_faulty_network(tmp_path: Path) -> None:
    _check(21, tmp_path, lose_a_disk=False)


def test_acknowledged_writes_survive_losing_one_disk_under_a_faulty_network(tmp_path: Path) -> None:
    _require_coordinator()
    _check(21, tmp_path, lose_a_disk=True)


def test_siblings_stay_within_the_writers_with_the_read_write_context(tmp_path: Path) -> None:
    """Sibling bounds per client process need each write's coordinator to
    have seen that client's earlier acknowledged write: with the default
    ``--cluster-write-context local`` a coordinator that missed it (down
    or cut off when it was replicated) makes the two siblings, as the
    design says (seed 25 shows it); ``read`` gathers the context from R
    members first, so W + R > N makes it see the write."""
    _require_coordinator()
    _check(25, tmp_path, lose_a_disk=True, check_siblings=True, cluster_write_context="read")
