"""The cluster's data path between real ``trio-kv`` processes on their own
loopback addresses: redis-py ``RedisCluster`` (SET+GET of random keys,
``mset_nonatomic``/``mget_nonatomic``, ``scan_iter`` seeing each key once,
RESP2 and RESP3), ``redis-cli -c`` and plain ``redis-cli`` against every
node (any node coordinates, forwarding keys it does not replicate), HTTP,
a ``kill -9`` of one node (W=2 still acknowledged, ALL answers
-NOREPLICAS within the write timeout), read repair of a node that missed
writes, WAIT, a quorum read asking a spare member while its target is
SIGSTOPped, and under ``kill -9`` every acknowledged write present
afterwards and every client session seeing its own writes. Every process
is stopped by PID."""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import redis
from redis.cluster import RedisCluster

from ..conftest import require_tool

from .process_cluster import ProcessCluster

WRITE_TIMEOUT_SECONDS = 1.0
pytestmark = pytest.mark.slow


class Cluster(ProcessCluster):
    """Nodes that answer NOREPLICAS after 1 s without W acks and flush every
    write (appendfsync always), with anti-entropy off: these tests check
    what the data path alone does (a node that missed writes keeps missing
    them until a read repairs it; test_cluster_anti_entropy.py checks the
    background repair)."""

    def __init__(self, count: int, *flags: str) -> None:
        super().__init__(count, "--cluster-write-timeout", str(WRITE_TIMEOUT_SECONDS), "--appendfsync", "always",
                         "--cluster-aae-interval", "0", *flags)


@pytest.fixture
def three():
    cluster = Cluster(3, "--http-port", "0")
    try:
        cluster.start_all()
        yield cluster
    finally:
        cluster.stop()


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_cluster_client_sets_gets_mset_mget_and_scans_each_key_once(three: Cluster, protocol: int) -> None:
    client = RedisCluster(host=three.hosts[0], port=three.port, protocol=protocol, socket_timeout=10)
    try:
        rng = random.Random(protocol)
        count = 10_000 if protocol == 2 else 2_000
        written = {}
        for _ in range(count):
            key = f"k{rng.getrandbits(40)}"
            value = f"v{rng.getrandbits(30)}"
            assert client.set(key, value) is True
            written[key] = value.encode()
            assert client.get(key) == value.encode()
        bulk = {f"bulk:{i}": f"b{i}" for i in range(1_000)}
        assert all(client.mset_nonatomic(bulk))
        assert client.mget_nonatomic(list(bulk)) == [value.encode() for value in bulk.values()]
        expected = set(written) | set(bulk)
        scanned = [key.decode() for key in client.scan_iter(count=500)]
        assert len(scanned) == len(set(scanned)), "scan_iter returned a key twice"
        assert set(scanned) == expected
        # redis-py sends DBSIZE to one node unless told: each primary counts its share.
        assert client.dbsize(target_nodes=RedisCluster.PRIMARIES) == len(expected)
    finally:
        client.close()
    for index in range(3):  # every node replicated every key (N=3 on 3 nodes)
        assert three.counters(index)["writes_noreplicas"] == 0


def test_any_node_coordinates_and_forwards_keys_it_does_not_replicate() -> None:
    cluster = Cluster(3, "--cluster-replicas", "2", "--http-port", "0")
    try:
        cluster.start_all()
        redis_cli = require_tool("redis-cli")
        keys = [f"fwd:{i}" for i in range(60)]
        for i, key in enumerate(keys):
            writer = cluster.client(i % 3)
            assert writer.set(key, f"value-{i}") is True
        for index in range(3):
            reader = cluster.client(index)
            assert reader.mget(keys[:1]) == [b"value-0"]
            assert [reader.get(key) for key in keys] == [f"value-{i}".encode() for i in range(len(keys))]
            out = subprocess.run([redis_cli, "-h", cluster.hosts[index], "-p", str(cluster.port), "GET", keys[5]],
                                 capture_output=True, text=True, timeout=30)
            assert out.stdout.strip() == "value-5"
            follow = subprocess.run(
                [redis_cli, "-c", "-h", cluster.hosts[index], "-p", str(cluster.port), "SET", f"cli:{index}", "x"],
                capture_output=True, text=True, timeout=30,
            )
            assert follow.stdout.strip() == "OK"
        # One pipeline mixing keys coordinated here and forwarded: replies in order.
        pipe = cluster.client(0).pipeline(transaction=False)
        for i, key in enumerate(keys):
            pipe.set(key, f"piped-{i}")
            pipe.get(key)
            pipe.ping()
        replies = pipe.execute()
        assert replies == [item for i in range(len(keys)) for item in (True, f"piped-{i}".encode(), True)]
        forwarded = sum(cluster.counters(index)["forwarded"] for index in range(3))
        assert forwarded > 0  # with N=2 of 3, a third of the keys are not on their writer
        node = cluster.nodes[1]
        assert node is not None
        http = node.wait_for_log(re.compile(r"HTTP API on (\S+):(\d+)"))
        curl = require_tool("curl")
        for i, key in enumerate(keys[:6]):
            got = subprocess.run([curl, "-s", f"http://{http.group(1)}:{http.group(2)}/key/{key}"],
                                 capture_output=True, text=True, timeout=30)
            assert json.loads(got.stdout) == {"key": key, "value": f"piped-{i}"}
        # /keys lists the whole cluster, each key once, page by page.
        listed: list[str] = []
        cursor = "0"
        for _ in range(100):
            page = json.loads(subprocess.run(
                [curl, "-s", f"http://{http.group(1)}:{http.group(2)}/keys?prefix=fwd:&limit=7&cursor={cursor}"],
                capture_output=True, text=True, timeout=30).stdout)
            listed += page["keys"]
            cursor = page["cursor"]
            if cursor is None:
                break
        assert sorted(listed) == sorted(keys)
        assert page["totalKeys"] == len(keys) + 3  # and the cli:N keys
    finally:
        cluster.stop()


def test_a_killed_node_leaves_quorum_writes_working_and_all_writes_refused(three: Cluster) -> None:
    victim = three.nodes[2]
    assert victim is not None
    victim.kill()  # SIGKILL
    three.wait_for(lambda: three.up_count(three.hosts[0]) == 2)
    client = three.client(0)
    acknowledged = {}
    for i in range(200):
        assert client.set(f"w2:{i}", str(i)) is True
        acknowledged[f"w2:{i}"] = str(i).encode()
    pipe = client.pipeline(transaction=False)
    pipe.execute_command("TKV.CONSISTENCY", "ALL")
    pipe.set("w3", "x")
    pipe.get("w2:1")
    started = time.monotonic()
    replies = pipe.execute(raise_on_error=False)
    elapsed = time.monotonic() - started
    assert isinstance(replies[1], redis.ResponseError)
    assert str(replies[1]) == "NOREPLICAS Not enough good replicas to write."  # redis-py keeps unknown codes
    assert isinstance(replies[2], redis.ResponseError)
    assert elapsed < WRITE_TIMEOUT_SECONDS + 5
    # The refused write ran nowhere: WAIT counts the last write that ran (w2:199, on the survivor).
    assert client.execute_command("WAIT", 2, 300) == 1
    # HTTP: ?w=2 is acknowledged, ?w=all answers 503 (NOREPLICAS), ?r=all too.
    node = three.nodes[0]
    assert node is not None
    http = node.wait_for_log(re.compile(r"HTTP API on (\S+):(\d+)"))
    base = f"http://{http.group(1)}:{http.group(2)}/key/"
    with httpx.Client(timeout=10) as web:
        assert web.put(base + "web?w=2", json="ok").status_code == 200
        refused = web.put(base + "web2?w=all", json="no")
        assert refused.status_code == 503 and "NOREPLICAS" in refused.json()["error"]
        assert web.get(base + "web?r=all").status_code == 503
        assert web.get(base + "web?r=one").json()["value"] == "ok"
        assert web.get(base + "web?w=three").status_code == 400
    # Every acknowledged write is there, read from the other survivor at QUORUM.
    other = three.client(1)
    assert [other.get(key) for key in acknowledged] == list(acknowledged.values())


@pytest.fixture
def three_without_hints():
    # Hint replay would hand the restarted node the writes it missed before
    # any read could: this test is about the read repairing them.
    cluster = Cluster(3, "--http-port", "0", "--cluster-hinted-handoff", "no")
    try:
        cluster.start_all()
        yield cluster
    finally:
        cluster.stop()


def test_a_node_that_missed_writes_is_repaired_by_a_quorum_read(three_without_hints: Cluster) -> None:
    three = three_without_hints
    victim = three.nodes[2]
    assert victim is not None
    victim.kill()
    three.wait_for(lambda: three.up_count(three.hosts[0]) == 2)
    writer = three.client(0)
    for i in range(20):
        assert writer.set(f"missed:{i}", f"m{i}") is True
    assert writer.execute_command("WAIT", 1, 5000) == 1
    three.start(2)
    three.wait_for(lambda: all(three.up_count(host) == 3 for host in three.hosts))
    late = three.client(2)
    late.execute_command("TKV.CONSISTENCY", "ONE")
    assert late.get("missed:0") is None  # its own copy: it missed the write
    quorum = three.client(2)
    assert [quorum.get(f"missed:{i}") for i in range(20)] == [f"m{i}".encode() for i in range(20)]
    assert three.counters(2)["reads_repaired"] >= 20
    assert [late.get(f"missed:{i}") for i in range(20)] == [f"m{i}".encode() for i in range(20)]


def test_a_quorum_read_whose_target_is_stopped_asks_a_spare_member(three: Cluster) -> None:
    """SIGSTOP one node: quorum reads (R=2) coordinated by another node whose
    other target is the stopped one, sent before anyone notices the stop,
    still succeed: the third member is asked as a spare."""
    client = three.client(0)
    keys = [f"spare:{i}" for i in range(30)]
    for key in keys:
        assert client.set(key, key) is True
    victim = three.nodes[2]
    assert victim is not None
    victim.send_signal(signal.SIGSTOP)
    try:
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.get(key)
        replies = pipe.execute(raise_on_error=False)
    finally:
        victim.send_signal(signal.SIGCONT)
    assert replies == [key.encode() for key in keys]


def _kill_9_workload(cluster: Cluster, tmp_path: Path):
    """Four clients spread over the three nodes write, delete and read for
    6 s at QUORUM (W=2) while one node is killed with SIGKILL and restarted,
    then another; then every node's final state is read at QUORUM (read
    repair). Returns the history (harness/history)."""
    from harness.history.faults import Fault
    from harness.history.final_state import read_final_state
    from harness.history.jsonl import dump_history
    from harness.history.model import OK, WRITE
    from harness.history.workload import WorkloadConfig, run_workload

    def bounce(index: int) -> None:
        node = cluster.nodes[index]
        assert node is not None
        node.kill()
        time.sleep(1.5)
        cluster.start(index)

    nodes = [(host, cluster.port) for host in cluster.hosts]
    config = WorkloadConfig(nodes=nodes, clients=4, key_count=40, duration_s=6.0, seed=10, consistency="QUORUM",
                            read_siblings=True)
    history = run_workload(config, [Fault(1.0, "kill -9 node 2", lambda: bounce(2)),
                                    Fault(3.5, "kill -9 node 1", lambda: bounce(1))])
    cluster.wait_for(lambda: all(cluster.up_count(host) == 3 for host in cluster.hosts))
    history.finals = read_final_state(nodes, config.keys(), consistency="QUORUM")
    dump_history(history, tmp_path / "history.jsonl")
    acknowledged = sum(op.kind == WRITE and op.outcome == OK for op in history.ops)
    assert acknowledged > 50, acknowledged
    return history


def test_kill_9_under_a_write_workload_loses_no_acknowledged_write(three: Cluster, tmp_path: Path) -> None:
    from harness.history.checks import run_checks
    from harness.history.survival import check_survival

    history = _kill_9_workload(three, tmp_path)
    survival = check_survival(history)
    assert survival.valid, survival.report()
    _assert_verdicts(run_checks(history))


def test_kill_9_with_write_context_read_loses_no_acknowledged_write(tmp_path: Path) -> None:
    from harness.history.checks import run_checks

    cluster = Cluster(3, "--cluster-write-context", "read")
    try:
        cluster.start_all()
        history = _kill_9_workload(cluster, tmp_path)
    finally:
        cluster.stop()
    _assert_verdicts(run_checks(history))


def _assert_verdicts(verdicts) -> None:
    """Every checker's verdict holds, the session checker's included: a
    session's DEL of a key whose live value (its own acknowledged SET)
    sits behind a concurrent tombstone that wins deletes that value too
    (store/versions.py, ``Versions.delete_hidden``; the deterministic case
    is tests/cluster_sim/test_sim_delete_siblings.py), so no later read of
    the session shows it."""
    for verdict in verdicts:
        assert verdict.valid, verdict.report()


def test_redirect_moved_names_the_first_live_member_and_redis_cli_c_follows() -> None:
    cluster = Cluster(3, "--cluster-replicas", "2", "--cluster-redirect", "moved")
    try:
        cluster.start_all()
        redis_cli = require_tool("redis-cli")
        client = cluster.client(0)
        moved = []
        for i in range(30):
            key = f"mv:{i}"
            try:
                client.set(key, "v")
            except redis.exceptions.MovedError as error:  # redis-py keeps "slot host:port"
                moved.append((key, str(error)))
        assert moved, "with N=2 of 3 some keys are not on node 0"
        key, error = moved[0]
        assert re.fullmatch(r"\d+ 127\.0\.0\.\d+:\d+", error), error
        follow = subprocess.run([redis_cli, "-c", "-h", cluster.hosts[0], "-p", str(cluster.port), "SET", key, "x"],
                                capture_output=True, text=True, timeout=30)
        assert follow.stdout.strip() == "OK"
        cluster_client = RedisCluster(host=cluster.hosts[0], port=cluster.port, socket_timeout=10)
        try:
            assert cluster_client.get(key) == b"x"
        finally:
            cluster_client.close()
    finally:
        cluster.stop()


def test_redis_benchmark_cluster_runs_set_and_get_against_three_nodes(three: Cluster) -> None:
    benchmark = require_tool("redis-benchmark")
    out = subprocess.run(
        [benchmark, "--cluster", "-h", three.hosts[0], "-p", str(three.port), "-t", "set,get", "-n", "5000",
         "-c", "20", "--csv"],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    rows = {line.split(",")[0].strip('"'): line for line in out.stdout.splitlines() if line.startswith('"')}
    assert {"SET", "GET"} <= set(rows), out.stdout + out.stderr
    assert "error" not in (out.stdout + out.stderr).lower()
    assert sum(three.counters(index)["writes_ok"] for index in range(3)) >= 5000
