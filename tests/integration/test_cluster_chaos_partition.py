"""Partitions inside a private network namespace (harness/netns.py): issue 11's
partition runs and its "8 concurrent writers on one key" check.

* Seeded partition runs (chaos_runs.py): the kill runs' workload while
  ``nft`` rules isolate a seeded node from the other two; every write sent
  to the isolated node meanwhile is answered ``-NOREPLICAS`` within the
  write timeout (1 s, plus ``NOREPLICAS_SLACK_SECONDS``; the slowest is
  printed), none is acknowledged; after the heal the replicas agree
  (anti-entropy, 1 s) and 0 acknowledged writes are lost.
  ``KV_CHAOS_FULL=1``: 20 seeds, 10-second partitions every 15 s.
* 8 writers on one key during a partition: 8 clients spread over the
  3 nodes (3, 3, 2) at level ONE, so both sides keep
  acknowledging, each loop reading ``TKV.SIBLINGS`` and writing
  ``TKV.PUTCTX`` with the context it read (the isolated side's writers
  cannot see the other side's writes). Every observation during and after
  the run shows at most as many siblings as writers (the sibling checker),
  the healed key has at least 2 and at most 8 siblings on every replica,
  and one ``TKV.PUTCTX`` at ALL carrying the merged context leaves exactly
  1 value on every replica.

The cluster is started once for the module, in one namespace.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from harness import netns
from harness.history.model import OK, READ, UNKNOWN, WRITE
from harness.history.outcomes import classify
from harness.history.recorder import Recorder
from harness.history.siblings import check_siblings
from harness.history.siblings_reply import sibling_values

from .chaos_runs import NOREPLICAS_SLACK_SECONDS, WRITE_TIMEOUT_SECONDS, assert_run, chaos_run, \
    namespaced_cluster_fixtures, seeds, wait_agreement
from .process_cluster import ProcessCluster

pytestmark = pytest.mark.slow

HOSTS = ["127.0.0.21", "127.0.0.22", "127.0.0.23"]
PORT = 7100
WRITERS = 8
WRITING_SECONDS = 3.0
JOIN_SECONDS = 15.0

namespace, cluster = namespaced_cluster_fixtures(HOSTS, PORT)


@pytest.mark.parametrize("seed", seeds(2))
def test_a_partition_isolating_a_seeded_node_answers_noreplicas_there_and_loses_no_acknowledged_write(
        cluster: ProcessCluster, namespace: netns.NetworkNamespace, seed: int, tmp_path: Path) -> None:
    result = chaos_run(cluster, "partition", seed, tmp_path, namespace=namespace)
    print(f"\n(write timeout {WRITE_TIMEOUT_SECONDS:g} s, node timeout {cluster.node_timeout_seconds:g} s)", end="")
    assert_run(result)
    figures = result.figures
    assert figures["minority_writes"] > 0, figures  # type: ignore[operator]
    assert figures["minority_acknowledged"] == 0, figures
    assert figures["minority_noreplicas"] == figures["minority_writes"], figures
    bound_s = WRITE_TIMEOUT_SECONDS + NOREPLICAS_SLACK_SECONDS
    assert figures["minority_max_s"] <= bound_s, figures  # type: ignore[operator]


def _client(host: str, port: int, level: str) -> redis.Redis:
    client = redis.Redis(host=host, port=port, socket_timeout=3.0, socket_connect_timeout=3.0,
                         retry=Retry(NoBackoff(), 0), single_connection_client=True)
    client.execute_command("TKV.CONSISTENCY", level)
    return client


def _siblings_writer(index: int, host: str, port: int, key: str, recorder: Recorder, stop: threading.Event) -> None:
    """Read the key's siblings and context, write a new value with that context; again until stopped."""
    process = f"c{index}"
    client = _client(host, port, "ONE")
    context: bytes = b""
    sequence = 0
    node = f"{host}:{port}"
    try:
        while not stop.is_set():
            pending = recorder.invoke(process, READ, key, None, node)
            try:
                reply = client.execute_command("TKV.SIBLINGS", key)
                context = reply[0]
                recorder.complete(pending, OK, sibling_values(reply[1]))
                sequence += 1
                value = f"{process}:{sequence}"
                pending = recorder.invoke(process, WRITE, key, value, node)
                client.execute_command("TKV.PUTCTX", key, context, value)
                recorder.complete(pending, OK)
            except (redis.RedisError, OSError) as error:
                outcome, text = classify(error)
                recorder.complete(pending, outcome, error=text)
                if outcome == UNKNOWN:
                    client.close()
                    client = _client(host, port, "ONE")
            stop.wait(0.01)
    finally:
        client.close()


def test_eight_writers_on_one_key_during_a_partition_leave_at_most_eight_siblings_and_one_merged_write_one(
        cluster: ProcessCluster, namespace: netns.NetworkNamespace) -> None:
    cluster.wait_for(cluster.meshed)
    key = "eight-writers"
    isolated, majority = cluster.hosts[2], cluster.hosts[:2]
    recorder = Recorder()
    stop = threading.Event()
    writers = [threading.Thread(target=_siblings_writer, daemon=True,
                                args=(index, cluster.hosts[index % 3], cluster.port, key, recorder, stop))
               for index in range(WRITERS)]
    namespace.isolate(isolated, majority)
    try:
        for writer in writers:
            writer.start()
        stop.wait(WRITING_SECONDS)
    finally:
        stop.set()
        for writer in writers:
            writer.join(JOIN_SECONDS)
        namespace.heal_all()
    assert not any(writer.is_alive() for writer in writers)
    history = recorder.history()
    cluster.wait_for(cluster.meshed)
    converge_s, finals = wait_agreement(cluster, [key])
    history.finals = finals
    verdict = check_siblings(history)
    healed = [len(final.values or []) for final in finals]
    acknowledged = sum(op.kind == WRITE and op.outcome == OK for op in history.ops)

    with cluster.client(0) as client:
        client.execute_command("TKV.CONSISTENCY", "ALL")
        context = client.execute_command("TKV.SIBLINGS", key)[0]
        assert client.execute_command("TKV.PUTCTX", key, context, "c99:1") == b"OK"
    after = []
    for index in range(3):
        with cluster.client(index) as client:
            client.execute_command("TKV.CONSISTENCY", "ONE")
            after.append(sibling_values(client.execute_command("TKV.SIBLINGS", key)[1]))
    print(f"\n{WRITERS} writers on one key for {WRITING_SECONDS:g} s with node 3 isolated: {acknowledged} writes "
          f"acknowledged; siblings seen during the run at most {verdict.counts['max_siblings']}, on each replica "
          f"{converge_s:.1f} s after the heal {healed}; after one merged TKV.PUTCTX: {[len(v) for v in after]}")
    assert verdict.valid, verdict.report()
    assert all(2 <= count <= WRITERS for count in healed), healed
    assert after == [["c99:1"]] * 3, after
