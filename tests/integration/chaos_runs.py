"""Seeded fault runs against a real 3-node cluster: issue 11's "Tests" list.

One *run* (``chaos_run``) is: a recorded write workload (harness/history:
5 clients, N=3, W=2, R=2 at QUORUM, every outcome kept, a timeout or a
NOREPLICAS is "unknown") on its own key prefix, while a seeded schedule
injects faults on a seeded node; then every fault is healed, every node is
running and meshed, and the run waits (bounded) until the replicas agree:
each node's own copy of every key (``TKV.CONSISTENCY ONE``: with N=3 on 3
nodes a read there asks only the coordinator, so nothing is read-repaired)
shows the same values. The cluster runs ``--cluster-aae-interval 1`` and
hinted handoff as by default: that repair comes from hint replay and
anti-entropy (and from the QUORUM reads' read repair during the run). Then it reads every key
at ALL, and judges the history:

* survival (``union`` over every read, and ``every``: each replica's own
  copy holds each acknowledged write or a write that may supersede it);
* agreement of the replicas (harness/history/agreement.py);
* sessions (read-your-writes, monotonic reads) and sibling bounds.

Kinds of fault (``KINDS``), each at ``Timing.first_s`` and then every
``every_s`` while ``down_s`` more fit in the run:

* ``kill``: ``kill -9`` of a seeded node, restarted ``down_s`` later on its
  data directory;
* ``partition``: ``nft`` rules isolate a seeded node from the other two
  (harness/netns.py) for ``down_s``; the isolated node's writes meanwhile
  are measured: each must be answered NOREPLICAS within the write timeout;
* ``power``: a simulated power loss under ``--appendfsync always``. A
  kill -9 keeps what the process wrote into the page cache, a power cut
  does not: so the node runs with ``KV_TEST_SYNCED_LOG`` (after every fsync
  the log's path and fsynced length go to a file, written before the
  flush's replies are released, so every acknowledged record lies below
  it), is killed, its log is cut back to that length and a torn partial
  record is left behind it (a prefix of the first unsynced record, as a
  partial page write leaves; nothing when every byte was synced), and it
  restarts ``down_s`` later. The loss is at least a power cut's: records
  fsynced after the hook's last line are dropped too. Other files in the
  data directory (node id, incarnation) are left as they are.
* ``outage``: every node loses power at once (all frozen with SIGSTOP,
  so the cut is one instant, then each treated as ``power``) and all
  restart ``down_s`` later.

``SHORT`` timings (one fault per run, seconds) and one or two seeds per
test are what CI runs: the simulation's 200 seeded runs
(tests/cluster_sim/test_sim_chaos.py) cover the schedules (crashes with
unsynced bytes cut, partitions, restarts), these runs check that the real stack
(processes, ``nft``, fsync, restarts on a data directory) keeps the same
promises. With ``KV_CHAOS_FULL=1`` the tests take the issue's timings (a
fault every 10 s, down 5 s; 10-second partitions) and 20 seeds: ``FULL``.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness import netns
from harness.history.agreement import check_agreement, disagreeing_keys
from harness.history.faults import Fault
from harness.history.final_state import read_final_state
from harness.history.jsonl import dump_history
from harness.history.model import OK, UNKNOWN, WRITE, FinalRead, History
from harness.history.sessions import check_sessions
from harness.history.siblings import check_siblings
from harness.history.survival import EVERY, check_survival
from harness.history.verdict import Verdict
from harness.history.workload import WorkloadConfig, run_workload

from .process_cluster import ProcessCluster

FULL = os.environ.get("KV_CHAOS_FULL") == "1"
KINDS = ("kill", "partition", "power", "outage")
WRITE_TIMEOUT_SECONDS = 1.0
AAE_INTERVAL_SECONDS = 1.0
CLUSTER_FLAGS = ("--cluster-write-timeout", str(WRITE_TIMEOUT_SECONDS),
                 "--cluster-aae-interval", str(AAE_INTERVAL_SECONDS))
# After the heal: the replicas must agree within this (a loaded 2-core machine).
CONVERGE_BOUND_SECONDS = 45.0
# A minority write's NOREPLICAS may come this much after the write timeout (scheduling on a loaded machine).
NOREPLICAS_SLACK_SECONDS = 1.0
SYNCED_LOG_NAME = "synced-log"
# Writes to keys written once: the run goes on writing the 20 shared keys after each fault, which
# could supersede (and so hide) a write the fault lost; one to a fresh key is never superseded.
FRESH_KEY_FRACTION = 0.2
# A run that acknowledged fewer writes than this judged too little.
MIN_ACKNOWLEDGED = 30


@dataclass(frozen=True)
class Timing:
    duration_s: float
    first_s: float
    every_s: float
    down_s: float

    def fault_starts(self) -> list[float]:
        starts, at_s = [], self.first_s
        while at_s + self.down_s < self.duration_s:
            starts.append(at_s)
            at_s += self.every_s
        return starts


SHORT = {"kill": Timing(6.5, 1.5, 10.0, 2.5), "partition": Timing(7.5, 1.5, 10.0, 4.0),
         "power": Timing(6.5, 1.5, 10.0, 2.5), "outage": Timing(6.0, 2.0, 10.0, 1.5)}
FULL_TIMING = {"kill": Timing(32.0, 2.0, 10.0, 5.0), "partition": Timing(35.0, 2.0, 15.0, 10.0),
               "power": Timing(32.0, 2.0, 10.0, 5.0), "outage": Timing(32.0, 2.0, 10.0, 5.0)}


def timing(kind: str) -> Timing:
    return (FULL_TIMING if FULL else SHORT)[kind]


def seeds(short_count: int) -> list[int]:
    """The seeds a test runs: ``short_count`` of them, 20 with ``KV_CHAOS_FULL=1``."""
    return list(range(20 if FULL else short_count))


def namespace_or_skip() -> Iterator[netns.NetworkNamespace]:
    """A module fixture's body: a private network namespace, or skip (fail where the tools are required)."""
    missing = netns.missing_tool()
    if missing is not None and os.environ.get("KV_TESTS_REQUIRE_TOOLS") == "1":
        pytest.fail(missing)
    reason = netns.unavailable()
    if reason is not None:
        pytest.skip(reason)
    with netns.NetworkNamespace() as space:
        yield space


@contextmanager
def started_cluster(*flags: str, **options: object) -> Iterator[ProcessCluster]:
    """A started 3-node cluster with ``CLUSTER_FLAGS`` and ``flags`` (``options`` go to ``ProcessCluster``)."""
    with ProcessCluster(3, *CLUSTER_FLAGS, *flags, **options) as cluster:  # type: ignore[arg-type]
        cluster.start_all()
        yield cluster


def namespaced_cluster_fixtures(hosts: list[str], port: int,
                                node_flags: Callable[[int], tuple[str, ...]] | None = None) -> tuple[object, object]:
    """Module fixtures ``namespace`` (a private network namespace, or skip) and ``cluster`` (started in it on
    ``hosts`` and ``port``): ``namespace, cluster = namespaced_cluster_fixtures(HOSTS, PORT)`` in a test module."""

    @pytest.fixture(scope="module", name="namespace")
    def namespace_fixture() -> Iterator[netns.NetworkNamespace]:
        yield from namespace_or_skip()

    @pytest.fixture(scope="module", name="cluster")
    def cluster_fixture(namespace: netns.NetworkNamespace) -> Iterator[ProcessCluster]:
        with started_cluster(hosts=hosts, port=port, launcher=namespace.launcher, node_flags=node_flags) as cluster:
            yield cluster

    return namespace_fixture, cluster_fixture


def synced_log_env(index: int, hooks_dir: Path) -> dict[str, str]:
    return {"KV_TEST_SYNCED_LOG": str(hooks_dir / f"{SYNCED_LOG_NAME}{index}")}


def lose_power(cluster: ProcessCluster, index: int, hooks_dir: Path, rng: random.Random) -> dict[str, int]:
    """kill -9 node ``index``, then drop its log's unsynced bytes and leave a torn record (module docstring)."""
    cluster.kill(index)
    path, offset_text = (hooks_dir / f"{SYNCED_LOG_NAME}{index}").read_text().split()
    offset = int(offset_text)
    if os.path.dirname(path) != cluster.data_dir(index):
        raise RuntimeError(f"the synced-log hook names {path}, not a file of node {index}")
    with open(path, "rb") as file:
        file.seek(offset)
        unsynced = file.read()
    torn = b""
    if len(unsynced) >= 8:
        record_bytes = 8 + int.from_bytes(unsynced[:4], "little")
        torn = unsynced[:rng.randint(1, min(record_bytes, len(unsynced)) - 1)]
    with open(path, "r+b") as file:
        file.truncate(offset)
        file.seek(offset)
        file.write(torn)
        os.fsync(file.fileno())
    return {"dropped_bytes": len(unsynced) - len(torn), "torn_bytes": len(torn)}


@dataclass
class RunResult:
    kind: str
    seed: int
    history: History
    converge_s: float
    verdicts: list[Verdict]
    figures: dict[str, object] = field(default_factory=dict)
    # Where the history was saved (JSON lines: ``python -m harness.history check`` replays the checks).
    history_path: Path | None = None

    def failed(self) -> list[Verdict]:
        return [verdict for verdict in self.verdicts if not verdict.valid]

    def line(self) -> str:
        counts = {verdict.checker: verdict.counts for verdict in self.verdicts}
        survival = counts["survival"]
        return (f"{self.kind} seed {self.seed}: {len(self.history.ops)} ops, {survival['acknowledged']} writes "
                f"acknowledged, {self.figures['unknown_writes']} unknown, lost {survival['lost']} (every replica: "
                f"{counts['survival every']['lost']}), replicas agreed {self.converge_s:.1f} s after the heal; "
                f"session violations {counts['sessions']['violations']} of {counts['sessions']['reads_checked']} "
                f"reads; max siblings {counts['siblings']['max_siblings']}"
                + "".join(f"; {name} {value}" for name, value in self.figures.items() if name != "unknown_writes"))


def assert_run(result: RunResult) -> None:
    """Print the run's figures; fail on any invalid verdict, no fault, or too little material."""
    print("\n" + result.line())
    failed = result.failed()
    assert not failed, "\n".join(verdict.report() for verdict in failed) + f"\n(history: {result.history_path})"
    assert result.figures["victims"], "no fault was injected"
    assert result.verdicts[0].counts["acknowledged"] >= MIN_ACKNOWLEDGED, result.line()


def _schedule(kind: str, cluster: ProcessCluster, rng: random.Random, run_timing: Timing,
              namespace: netns.NetworkNamespace | None, hooks_dir: Path | None,
              figures: dict[str, object]) -> list[Fault]:
    faults: list[Fault] = []
    losses: list[dict[str, int]] = []
    figures["victims"] = []
    for at_s in run_timing.fault_starts():
        victim = rng.randrange(len(cluster.hosts))
        figures["victims"].append(victim)  # type: ignore[union-attr]
        host = cluster.hosts[victim]
        back_s = at_s + run_timing.down_s
        if kind == "kill":
            faults.append(Fault(at_s, f"kill -9 {host}", lambda v=victim: cluster.kill(v)))
            faults.append(Fault(back_s, f"restart {host}", lambda v=victim: cluster.start(v)))
        elif kind == "power":
            assert hooks_dir is not None
            faults.append(Fault(at_s, f"power loss {host}",
                                lambda v=victim: losses.append(lose_power(cluster, v, hooks_dir, rng))))
            faults.append(Fault(back_s, f"restart {host}", lambda v=victim: cluster.start(v)))
        elif kind == "outage":
            assert hooks_dir is not None

            def outage() -> None:
                for index in range(len(cluster.hosts)):
                    cluster.pause(index)
                losses.extend(lose_power(cluster, index, hooks_dir, rng) for index in range(len(cluster.hosts)))

            def restart_all() -> None:
                for index in range(len(cluster.hosts)):
                    cluster.start(index)

            faults.append(Fault(at_s, "power loss of every node", outage))
            faults.append(Fault(back_s, "restart every node", restart_all))
        elif kind == "partition":
            assert namespace is not None
            others = [other for other in cluster.hosts if other != host]
            faults.append(Fault(at_s, f"nft: isolate {host}", lambda h=host, o=others: namespace.isolate(h, o)))
            faults.append(Fault(back_s, f"nft: heal {host}", namespace.heal_all))
        else:
            raise ValueError(f"unknown fault kind {kind!r}")
    if kind in ("power", "outage"):
        figures["power_losses"] = losses
    return faults


def _minority_writes(history: History) -> dict[str, object]:
    """The writes sent to an isolated node while it was cut off: how they were answered, and how fast."""
    starts = [(event.end_s, event.name.split()[-1]) for event in history.faults
              if event.name.startswith("nft: isolate")]
    ends = [event.start_s for event in history.faults if event.name.startswith("nft: heal")]
    writes = []
    for (cut_s, host), heal_s in zip(starts, ends, strict=True):
        writes.extend(op for op in history.ops if op.kind == WRITE and op.node is not None
                      and op.node.startswith(host + ":") and cut_s < op.invoke_s and op.complete_s is not None
                      and op.complete_s < heal_s)
    noreplicas = [op for op in writes if op.error is not None and "NOREPLICAS" in op.error]
    return {
        "minority_writes": len(writes),
        "minority_acknowledged": sum(op.outcome == OK for op in writes),
        "minority_noreplicas": len(noreplicas),
        "minority_max_s": round(max((op.complete_s - op.invoke_s for op in writes  # type: ignore[operator]
                                     ), default=0.0), 3),
    }


def _running(cluster: ProcessCluster, index: int) -> bool:
    node = cluster.nodes[index]
    return node is not None and node.process.poll() is None


def wait_agreement(cluster: ProcessCluster, keys: list[str]) -> tuple[float, list[FinalRead]]:
    """Seconds until every node's own copy of every key shows the same values, and those reads."""
    nodes = [(host, cluster.port) for host in cluster.hosts]
    started = time.monotonic()
    while True:
        finals = read_final_state(nodes, keys, consistency="ONE")
        elapsed = time.monotonic() - started
        if not disagreeing_keys(finals) or elapsed > CONVERGE_BOUND_SECONDS:
            return elapsed, finals
        time.sleep(0.2)


def chaos_run(cluster: ProcessCluster, kind: str, seed: int, out_dir: Path, *,
              namespace: netns.NetworkNamespace | None = None, hooks_dir: Path | None = None,
              move_every_ops: int = 5, write_fraction: float = 0.45, key_count: int = 20,
              run_timing: Timing | None = None, consistency: str = "QUORUM",
              extra_checks: Callable[[History], list[Verdict]] | None = None) -> RunResult:
    """One seeded run of ``kind`` on a started cluster (module docstring); the history goes to ``out_dir``."""
    run_timing = run_timing or timing(kind)
    cluster.wait_for(cluster.meshed)
    rng = random.Random(f"chaos-{kind}-{seed}")
    nodes = [(host, cluster.port) for host in cluster.hosts]
    config = WorkloadConfig(nodes=nodes, clients=5, key_count=key_count, duration_s=run_timing.duration_s,
                            write_fraction=write_fraction, delete_fraction=0.05, seed=seed,
                            key_prefix=f"{kind}{seed}-{rng.randrange(1 << 30)}:", socket_timeout_s=3.0,
                            read_siblings=True, consistency=consistency, move_every_ops=move_every_ops,
                            fresh_key_fraction=FRESH_KEY_FRACTION,
                            extra_meta={"kind": kind, "timing": vars(run_timing)})
    figures: dict[str, object] = {}
    faults = _schedule(kind, cluster, rng, run_timing, namespace, hooks_dir, figures)
    try:
        history = run_workload(config, faults)
    finally:
        if namespace is not None:
            namespace.heal_all()
        for index in range(len(cluster.hosts)):
            if not _running(cluster, index):
                cluster.start(index)
    cluster.wait_for(cluster.meshed)
    keys = sorted(set(config.keys()) | {op.key for op in history.ops})
    converge_s, own_copies = wait_agreement(cluster, keys)
    history.finals = own_copies + read_final_state(nodes[:1], keys, consistency="ALL")
    verdicts = [check_survival(history)]
    every = check_survival(History(ops=history.ops, finals=own_copies), mode=EVERY)
    every.checker = "survival every"
    verdicts += [every, check_agreement(own_copies), check_sessions(history), check_siblings(history)]
    if extra_checks is not None:
        verdicts += extra_checks(history)
    figures["unknown_writes"] = sum(op.kind == WRITE and op.outcome == UNKNOWN for op in history.ops)
    if kind == "partition":
        figures.update(_minority_writes(history))
    history.meta["figures"] = dict(figures)
    history_path = out_dir / f"{kind}-{seed}.jsonl"
    dump_history(history, history_path)
    return RunResult(kind, seed, history, converge_s, verdicts, figures, history_path)
