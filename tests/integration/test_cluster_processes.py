"""The cluster bus between real ``trio-kv`` processes on their own loopback
addresses: a three-node mesh seen through ``trio-kv cluster status``,
``INFO cluster``, /metrics and ``redis-cli`` on the bus port; a peer killed
with SIGKILL is marked down within the node timeout (plus the watcher's
slack) and up again after its restart, with the same node id (its
``node-id`` file); SIGTERM closes a node's links quickly; ``trio-kv
cluster dev`` starts three processes, stops them cleanly on Ctrl-C, and
keeps serving with the survivors when one is killed; a node missing from
its seeds refuses to start. Every process is stopped by PID."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
import trio

from harness.server_process import ServerProcess, server_environment, server_python
from ..conftest import require_tool
from trio_kv.server.cluster.status import fetch_fields

from .cluster_nodes import free_cluster_port, node_hosts
from .process_cluster import NODE_TIMEOUT_SECONDS, ProcessCluster

REPO = Path(__file__).resolve().parents[2]
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


@pytest.fixture
def three() -> Iterator[ProcessCluster]:
    """Three meshed nodes (each with an HTTP listener on a free port)."""
    with ProcessCluster(3, "--http-port", "0") as cluster:
        cluster.start_all()
        yield cluster


async def test_three_processes_mesh_and_show_it_in_status_info_metrics_and_redis_cli(three: ProcessCluster) -> None:
    cluster = three
    with trio.fail_after(60):
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
        http_host, http_port = await trio.to_thread.run_sync(cluster.http_address, 0)
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"http://{http_host}:{http_port}/metrics")).text
        assert re.search(rf'trio_kv_cluster_link_up\{{peer="{re.escape(cluster.hosts[1])}:{port}"\}} 1', metrics)
        assert "trio_kv_cluster_link_sent_messages_total" in metrics
        assert "trio_kv_cluster_link_oldest_request_age_seconds" in metrics
        assert "\ntrio_kv_cluster_keys_with_siblings 1\n" in metrics
        assert "\ntrio_kv_cluster_tombstone_keys 1\n" in metrics


async def test_a_killed_peer_is_down_within_the_timeout_and_up_after_restart(three: ProcessCluster) -> None:
    cluster = three
    victim = cluster.node(2)
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
        await _wait_for(cluster.meshed)
        print(f"restarted peer up again everywhere {time.monotonic() - started_at:.2f} s after it listened")
        fields = fetch_fields(cluster.hosts[0], cluster.port, None)
        assert f"address={victim_address},node_id={node_id},up=1" in fields.values()
        assert restarted.alive()


async def test_sigterm_closes_a_nodes_links_quickly(three: ProcessCluster) -> None:
    cluster = three
    with trio.fail_after(60):
        node = cluster.node(0)
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


class _Dev:
    """``trio-kv cluster dev --nodes 3`` on its own loopback address, in its
    own session (its own process group, as a shell's foreground job), with
    its stdout and stderr (the banner, reports, the nodes' logs) read
    together. ``stop()`` (the ``with`` exit) ends it and SIGKILLs any node
    left behind, by the PIDs from its banner."""

    NODES = 3

    def __init__(self) -> None:
        self.host = node_hosts(1)[0]
        self.port = free_cluster_port([self.host], count=self.NODES)
        self.ports = [self.port + index for index in range(self.NODES)]
        self.root = tempfile.mkdtemp(prefix="trio-kv-dev-")
        argv = [server_python(REPO), "-m", "trio_kv", "cluster", "dev", "--nodes", str(self.NODES),
                "--base-port", str(self.port), "--host", self.host, "--data-dir-root", self.root,
                "--", "--cluster-node-timeout", str(NODE_TIMEOUT_SECONDS)]
        # Its own session: Ctrl-C can be sent to its group as a terminal would.
        self.process = ServerProcess(["setsid", *argv], cwd=REPO, merge_stdout=True)
        self.pids: list[int] = []

    def wait_ready(self) -> None:
        """Wait for the banner (every node listening), read the PIDs, wait for the mesh."""
        if self.process.wait_for_log(re.compile(r"Ctrl-C or SIGTERM stops every node"), timeout=60) is None:
            raise AssertionError(f"cluster dev exited early:\n{self.process.log()}")
        self.pids = [int(match.group(1)) for line in self.process.log_lines
                     if (match := re.match(r"  node \S+ pid (\d+)$", line))]
        assert len(self.pids) == self.NODES, self.process.log()
        assert os.getsid(self.process.pid) == self.process.pid  # setsid exec'd cluster dev itself
        deadline = time.monotonic() + 60
        while not all(all(_members_up(self.host, port).values()) and len(_members_up(self.host, port)) == self.NODES
                      for port in self.ports):
            assert time.monotonic() < deadline, "the dev cluster did not mesh"
            time.sleep(0.05)

    def children(self) -> set[int]:
        """The dev process' children now, from /proc."""
        pids: set[int] = set()
        for task in os.listdir(f"/proc/{self.process.pid}/task"):
            with open(f"/proc/{self.process.pid}/task/{task}/children") as children:
                pids.update(int(pid) for pid in children.read().split())
        return pids

    def stop(self) -> None:
        self.process.stop()
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> _Dev:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _gone(pid: int) -> bool:
    """True if no process (not even a zombie) has this PID."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_cluster_dev_starts_three_processes_and_ctrl_c_stops_them_cleanly() -> None:
    with _Dev() as dev:
        dev.wait_ready()
        assert dev.children() == set(dev.pids)
        assert f"redis-cli -c -h {dev.host} -p {dev.port}" in dev.process.log()
        assert sorted(os.listdir(dev.root)) == [f"node-{port}" for port in dev.ports]
        os.killpg(dev.process.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the foreground group
        assert dev.process.wait(30) == 0, dev.process.log()
        log = dev.process.log()
        assert "every node stopped" in log
        for port in dev.ports:  # one clean shutdown each (not "second SIGINT: exiting now", no SIGKILL)
            assert re.search(rf"^\[{port}\] .*trio_kv stopped$", log, re.MULTILINE), log
        assert "exiting now" not in log and "killing it" not in log
        # No leftovers (cluster dev waited for each, so no zombie either).
        assert all(_gone(pid) for pid in dev.pids)


def test_cluster_dev_keeps_serving_when_a_node_is_killed_and_stops_the_rest() -> None:
    with _Dev() as dev:
        dev.wait_ready()
        victim = dev.pids[2]
        os.kill(victim, signal.SIGKILL)  # as a user trying a failure would
        dev.process.wait_for_log(re.compile(
            rf"node {dev.ports[2]} \(pid {victim}\) was killed by SIGKILL; 2 of 3 nodes still running"), timeout=30)
        for port in dev.ports[:2]:
            with redis.Redis(dev.host, port, socket_timeout=10) as client:
                assert client.ping() is True
        # N=3, W=2, R=2 (the defaults): the two survivors acknowledge writes and answer reads.
        with redis.Redis(dev.host, dev.ports[0], socket_timeout=10) as writer:
            for i in range(20):
                assert writer.set(f"after-kill:{i}", str(i)) is True
        # A read asks R-1 = 1 other member, chosen among those it sees up: read
        # once both survivors have seen the death (spare reads are not tried yet).
        deadline = time.monotonic() + NODE_TIMEOUT_SECONDS + SLACK_SECONDS
        while any(_members_up(dev.host, port)[f"{dev.host}:{dev.ports[2]}"] for port in dev.ports[:2]):
            assert time.monotonic() < deadline, "the survivors did not see the death"
            time.sleep(0.05)
        with redis.Redis(dev.host, dev.ports[1], socket_timeout=10) as reader:
            assert [reader.get(f"after-kill:{i}") for i in range(20)] == [str(i).encode() for i in range(20)]
        assert dev.process.alive()
        assert dev.children() == set(dev.pids[:2])
        assert dev.process.terminate(30) == 1, dev.process.log()  # 1: a node exited by itself
        log = dev.process.log()
        assert "every node stopped" in log
        for port in dev.ports[:2]:
            assert re.search(rf"^\[{port}\] .*trio_kv stopped$", log, re.MULTILINE), log
        assert all(_gone(pid) for pid in dev.pids)


def test_a_node_missing_from_its_seeds_refuses_to_start() -> None:
    hosts = node_hosts(3)
    port = free_cluster_port(hosts)
    seeds = ",".join(f"{host}:{port}" for host in hosts[:2])
    with ServerProcess.launch(REPO, "--host", hosts[2], "--port", str(port), "--cluster-enabled", "yes",
                              "--cluster-seeds", seeds) as node:
        assert node.wait_listening() is None
        assert node.process.returncode == 1
        assert re.search(rf"cannot start: this node \({re.escape(hosts[2])}:{port}.*not in --cluster-seeds", node.log())


async def test_a_hung_peer_is_down_within_the_timeout_and_up_when_it_resumes(three: ProcessCluster) -> None:
    cluster = three
    victim = cluster.node(2)
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
        await _wait_for(cluster.meshed)
    node = cluster.node(0)
    assert any("no answer to TKV.PING" in line for line in node.log_lines), node.log()
