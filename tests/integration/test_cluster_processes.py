"""The cluster bus between real ``trio-kv`` processes on their own loopback
addresses: a three-node mesh seen through ``trio-kv cluster status``,
``INFO cluster``, /metrics and ``redis-cli`` on the bus port; a peer killed
with SIGKILL is marked down within the node timeout (plus the watcher's
slack) and up again after its restart, with the same node id (its
``node-id`` file); SIGTERM closes a node's links quickly; ``trio-kv
cluster dev`` starts and stops three processes; a node missing from its
seeds refuses to start. Every process is stopped by PID."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest
import redis
import trio

from harness.server_process import ServerProcess, server_environment, server_python
from ..conftest import require_tool
from trio_kv.server.cluster.status import fetch_fields

from .cluster_nodes import bindable, free_cluster_port, node_hosts

REPO = Path(__file__).resolve().parents[2]
NODE_TIMEOUT_SECONDS = 1.0
# The watcher re-reads the opinion every 0.1 s; the rest is a loaded machine's scheduling.
SLACK_SECONDS = 4.0
pytestmark = pytest.mark.slow


def _members_up(host: str, port: int) -> dict[str, bool]:
    fields = fetch_fields(host, port, None)
    members = {}
    index = 0
    while f"cluster_bus_member{index}" in fields:
        pairs = dict(part.split("=", 1) for part in fields[f"cluster_bus_member{index}"].split(","))
        members[pairs["address"]] = pairs["up"] == "1"
        index += 1
    return members


def _make_siblings_and_a_tombstone(host: str, port: int) -> None:
    """Key ``s`` with two siblings (a TKV.PUTCTX with a context that missed
    a later SET) and key ``d`` deleted, on the node at ``host:port`` (with
    3 nodes and 3 replicas every node holds every key)."""
    with redis.Redis(host, port, socket_timeout=30) as client:
        client.set("s", "first")
        context = client.execute_command("TKV.SIBLINGS", "s")[0]
        client.set("s", "second")
        assert client.execute_command("TKV.PUTCTX", "s", context, "third") in (b"OK", True)
        assert len(client.execute_command("TKV.SIBLINGS", "s")[1]) == 2
        client.set("d", "1")
        assert client.delete("d") == 1


async def _wait_for(predicate, poll_seconds: float = 0.05) -> None:
    while not await trio.to_thread.run_sync(predicate):
        await trio.sleep(poll_seconds)


class _Cluster:
    def __init__(self, count: int = 3, *extra: str) -> None:
        self.hosts = node_hosts(count)
        self.port = free_cluster_port(self.hosts)
        self.seeds = ",".join(f"{host}:{self.port}" for host in self.hosts)
        self.root = tempfile.mkdtemp(prefix="trio-kv-cluster-")
        self.extra = extra
        self.nodes: list[ServerProcess | None] = [None] * count

    def start(self, index: int) -> ServerProcess:
        node = ServerProcess.start(
            REPO, "--host", self.hosts[index], "--port", str(self.port), "--cluster-enabled", "yes",
            "--cluster-seeds", self.seeds, "--cluster-node-timeout", str(NODE_TIMEOUT_SECONDS), *self.extra,
            data_dir=os.path.join(self.root, f"node{index}"),
        )
        self.nodes[index] = node
        return node

    def all_up(self) -> bool:
        return all(all(_members_up(host, self.port).values()) for host in self.hosts)

    def stop(self) -> None:
        for node in self.nodes:
            if node is not None:
                node.stop()
        shutil.rmtree(self.root, ignore_errors=True)


async def test_three_processes_mesh_and_show_it_in_status_info_metrics_and_redis_cli() -> None:
    cluster = _Cluster(3, "--http-port", "0")
    try:
        with trio.fail_after(60):
            for index in range(3):
                await trio.to_thread.run_sync(cluster.start, index)
            await _wait_for(cluster.all_up)
            host, port = cluster.hosts[0], cluster.port
            await trio.to_thread.run_sync(_make_siblings_and_a_tombstone, host, port)

            def pings_answered() -> bool:
                fields = fetch_fields(host, port, None)
                links = [value for name, value in fields.items() if name.startswith("cluster_bus_link")]
                return len(links) == 2 and all("ping_rtt_us=-1" not in link for link in links)

            await _wait_for(pings_answered)
            status = subprocess.run(
                [server_python(REPO), "-m", "trio_kv", "cluster", "status", "-h", host, "-p", str(port)],
                cwd=REPO, env=server_environment(), capture_output=True, text=True, timeout=30,
            )
            print(status.stdout)
            assert status.returncode == 0, status.stderr
            assert "members 3 (3 up)" in status.stdout
            assert status.stdout.count("connected") == 2 and "(myself)" in status.stdout
            assert re.search(r"PEER LINK +STATE +PING RTT +SENT \(MSGS / BYTES\) +RECEIVED +QUEUED +IN FLIGHT +LAG",
                             status.stdout)
            for peer in cluster.hosts[1:]:  # each link: connected, a ping answered, traffic counted
                assert re.search(rf"{re.escape(peer)}:{port} +connected +\d+\.\d\d ms +[1-9]\d* / ", status.stdout)
            assert "keys with siblings    1\n" in status.stdout
            assert "largest sibling count 2 (peak 2)\n" in status.stdout
            assert "tombstones kept       1\n" in status.stdout
            redis_cli = require_tool("redis-cli")
            ping = subprocess.run([redis_cli, "-h", host, "-p", str(port + 10000), "TKV.PING"],
                                  capture_output=True, text=True, timeout=30)
            assert ping.stdout.splitlines()[0] == "PONG"
            refused = subprocess.run([redis_cli, "-h", host, "-p", str(port + 10000), "GET", "k"],
                                     capture_output=True, text=True, timeout=30)
            assert "only TKV.*" in refused.stdout
            node = cluster.nodes[0]
            assert node is not None
            http_line = await trio.to_thread.run_sync(node.wait_for_log, re.compile(r"HTTP API on (\S+):(\d+)"))
            async with httpx.AsyncClient() as client:
                metrics = (await client.get(f"http://{http_line.group(1)}:{http_line.group(2)}/metrics")).text
            assert re.search(rf'trio_kv_cluster_link_up\{{peer="{re.escape(cluster.hosts[1])}:{port}"\}} 1', metrics)
            assert "trio_kv_cluster_link_sent_messages_total" in metrics
            assert "trio_kv_cluster_link_oldest_request_age_seconds" in metrics
            assert "\ntrio_kv_cluster_keys_with_siblings 1\n" in metrics
            assert "\ntrio_kv_cluster_tombstone_keys 1\n" in metrics
    finally:
        cluster.stop()


async def test_a_killed_peer_is_down_within_the_timeout_and_up_after_restart() -> None:
    cluster = _Cluster(3)
    try:
        with trio.fail_after(60):
            for index in range(3):
                await trio.to_thread.run_sync(cluster.start, index)
            await _wait_for(cluster.all_up)
            victim = cluster.nodes[2]
            assert victim is not None
            node_id = open(os.path.join(cluster.root, "node2", "node-id")).read().strip()
            victim_address = f"{cluster.hosts[2]}:{cluster.port}"
            observers = cluster.hosts[:2]
            victim.kill()  # SIGKILL
            killed_at = time.monotonic()
        with trio.fail_after(NODE_TIMEOUT_SECONDS + SLACK_SECONDS):
            await _wait_for(lambda: not any(_members_up(host, cluster.port)[victim_address] for host in observers))
        down_seconds = time.monotonic() - killed_at
        print(f"killed peer marked down by both observers after {down_seconds:.2f} s "
              f"(node timeout {NODE_TIMEOUT_SECONDS} s)")
        with trio.fail_after(60):
            restarted = await trio.to_thread.run_sync(cluster.start, 2)
            started_at = time.monotonic()
            await _wait_for(cluster.all_up)
            print(f"restarted peer up again everywhere {time.monotonic() - started_at:.2f} s after it listened")
            fields = fetch_fields(cluster.hosts[0], cluster.port, None)
            assert f"address={victim_address},node_id={node_id},up=1" in fields.values()
            assert restarted.alive()
    finally:
        cluster.stop()


async def test_sigterm_closes_a_nodes_links_quickly() -> None:
    cluster = _Cluster(3)
    try:
        with trio.fail_after(60):
            for index in range(3):
                await trio.to_thread.run_sync(cluster.start, index)
            await _wait_for(cluster.all_up)
            node = cluster.nodes[0]
            assert node is not None
            started = time.monotonic()
            status = await trio.to_thread.run_sync(node.terminate, 10.0)
            exit_seconds = time.monotonic() - started
            assert status == 0
            stopped = next(line for line in node.log_lines if "cluster bus stopped in" in line)
            print(f"SIGTERM to exit: {exit_seconds * 1000:.0f} ms; {stopped.split(': ', 1)[1]}")
            peer_address = f"{cluster.hosts[0]}:{cluster.port}"

            def peers_saw_the_close() -> bool:
                for host in cluster.hosts[1:]:
                    fields = fetch_fields(host, cluster.port, None)
                    links = [value for name, value in fields.items() if name.startswith("cluster_bus_link")]
                    if any(f"peer={peer_address}," in link and "state=connected" in link for link in links):
                        return False
                return True

            await _wait_for(peers_saw_the_close)
            closed_seconds = time.monotonic() - started
            print(f"both peers saw the link closed {closed_seconds * 1000:.0f} ms after SIGTERM")
    finally:
        cluster.stop()


async def test_cluster_dev_starts_and_stops_three_processes() -> None:
    hosts = ["127.0.0.1"]
    port = free_cluster_port(hosts)
    while not all(bindable("127.0.0.1", p) for p in (port + 1, port + 2, port + 10001, port + 10002)):
        port = free_cluster_port(hosts)
    root = tempfile.mkdtemp(prefix="trio-kv-dev-")
    process = subprocess.Popen(
        [server_python(REPO), "-m", "trio_kv", "cluster", "dev", "--nodes", "3", "--base-port", str(port),
         "--data-dir-root", root, "--", "--cluster-node-timeout", "1"],
        cwd=REPO, env=server_environment(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    pids: list[int] = []
    try:
        with trio.fail_after(60):
            assert process.stdout is not None
            lines = []
            while not any("redis-cli -c -p" in line for line in lines):
                line = await trio.to_thread.run_sync(process.stdout.readline)
                assert line, "cluster dev exited early"
                lines.append(line)
            pids = [int(match.group(1)) for line in lines if (match := re.search(r"pid (\d+)", line))]
            assert len(pids) == 3 and f"redis-cli -c -p {port}" in "".join(lines)
            assert sorted(os.listdir(root)) == [f"node-{port + i}" for i in range(3)]
            await _wait_for(lambda: all(_members_up("127.0.0.1", port + i) and all(_members_up("127.0.0.1", port + i).values()) for i in range(3)))
            process.send_signal(signal.SIGTERM)
            assert await trio.to_thread.run_sync(process.wait, 30) == 0
            rest = process.stdout.read()
            assert "every node stopped" in rest
        for pid in pids:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)  # no leftovers (each was waited for by cluster dev, so no zombie either)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(root, ignore_errors=True)


def test_a_node_missing_from_its_seeds_refuses_to_start() -> None:
    hosts = node_hosts(3)
    port = free_cluster_port(hosts)
    seeds = ",".join(f"{host}:{port}" for host in hosts[:2])
    with ServerProcess.launch(REPO, "--host", hosts[2], "--port", str(port), "--cluster-enabled", "yes",
                              "--cluster-seeds", seeds) as node:
        assert node.wait_listening() is None
        assert node.process.returncode == 1
        assert re.search(rf"cannot start: this node \({re.escape(hosts[2])}:{port}.*not in --cluster-seeds", node.log())


async def test_a_hung_peer_is_down_within_the_timeout_and_up_when_it_resumes() -> None:
    cluster = _Cluster(3)
    try:
        with trio.fail_after(60):
            for index in range(3):
                await trio.to_thread.run_sync(cluster.start, index)
            await _wait_for(cluster.all_up)
        victim = cluster.nodes[2]
        assert victim is not None
        victim_address = f"{cluster.hosts[2]}:{cluster.port}"
        victim.send_signal(signal.SIGSTOP)  # its sockets stay open: only silence tells
        try:
            stopped_at = time.monotonic()
            with trio.fail_after(NODE_TIMEOUT_SECONDS + SLACK_SECONDS):
                await _wait_for(lambda: not any(_members_up(host, cluster.port)[victim_address]
                                                for host in cluster.hosts[:2]))
            print(f"hung peer marked down after {time.monotonic() - stopped_at:.2f} s")

            def links_closed() -> bool:
                for host in cluster.hosts[:2]:
                    fields = fetch_fields(host, cluster.port, None)
                    if any(f"peer={victim_address}," in value and "state=connected" in value
                           for name, value in fields.items() if name.startswith("cluster_bus_link")):
                        return False
                return True

            with trio.fail_after(NODE_TIMEOUT_SECONDS + SLACK_SECONDS):
                await _wait_for(links_closed)  # an unanswered ping closed the link
        finally:
            victim.send_signal(signal.SIGCONT)
        with trio.fail_after(30):
            await _wait_for(cluster.all_up)
        node = cluster.nodes[0]
        assert node is not None
        assert any("no answer to TKV.PING" in line for line in node.log_lines), node.log()
    finally:
        cluster.stop()
