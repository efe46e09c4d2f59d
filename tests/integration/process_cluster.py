"""A cluster of real ``trio-kv`` processes for the integration tests.

``ProcessCluster(count, *flags)`` picks ``count`` loopback addresses and one
client port free on all of them (harness/loopback.py: the bus port is the
client port + 10000, so port 0 cannot be used), and a temporary root for the
nodes' data directories (``node<i>``). ``start(i)`` runs node i with
``harness.server_process.ServerProcess`` (``--cluster-seeds`` every member,
``--cluster-node-timeout 1`` so a death is seen quickly, then ``flags``) and
returns once it listens; ``start(i)`` again restarts it on the same data
directory. ``start_all()`` starts every node and waits until each sees every
member up. ``stop()`` (also the ``with`` block's exit) stops every node by
PID (SIGTERM, then SIGKILL) and deletes the root.

Faults on one node: ``kill(i)`` is SIGKILL (a crash; ``start(i)`` restarts
it on the same data directory), ``pause(i)``/``resume(i)`` SIGSTOP and
SIGCONT. ``hosts=`` and ``port=`` fix the addresses (inside a private
network namespace, harness/netns.py, the nodes use 127.0.0.11, .12, ...
and nothing else can take the port); ``node_timeout_seconds=`` sets
``--cluster-node-timeout``; ``launcher=`` (a host -> argv prefix, such as
``NetworkNamespace.launcher``) wraps each node's command; ``node_flags=`` (index -> flags)
adds flags to one node only (``--debug-clock-offset-ms`` on one node) and ``node_env=`` (index ->
environment variables) test hooks to each node's environment (``KV_TEST_SYNCED_LOG``, a file per
node: ``data_dir(i)`` is node i's data directory). ``members_up(i)`` is how many members node i
sees up, polled by the fault tests.

``start_all()`` spawns every node before waiting for any to listen, so
their start-ups overlap. A node that does not come up is stopped (it is in
``nodes`` from its spawn on), so a failed start leaks no process.

Every wait is bounded: a node's start by ``NODE_START_SECONDS``, the mesh and
``wait_for`` by ``SETTLE_SECONDS`` (a loaded 2-core machine).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis

from harness.loopback import free_cluster_port, node_hosts
from harness.server_process import LISTENING, ServerProcess, ServerStartError, server_environment, server_python

REPO = Path(__file__).resolve().parents[2]
NODE_TIMEOUT_SECONDS = 1.0
SETTLE_SECONDS = 30.0
# A node's start (imports, log replay, trees rebuilt) until it listens: ServerProcess' 15 s was seen
# exceeded by restarts at load average 20 on the 2-core machine, failing every later test of a module.
NODE_START_SECONDS = 60.0
# start_all() picks new addresses when a node finds its port taken.
START_ATTEMPTS = 3
_HTTP_LISTENING = re.compile(r"HTTP API on (\S+):(\d+)")


class ProcessCluster:
    def __init__(self, count: int, *flags: str, hosts: list[str] | None = None, port: int | None = None,
                 node_timeout_seconds: float = NODE_TIMEOUT_SECONDS,
                 launcher: Callable[[str], list[str]] | None = None,
                 node_flags: Callable[[int], tuple[str, ...]] | None = None,
                 node_env: Callable[[int], dict[str, str]] | None = None) -> None:
        self.fixed_addresses = hosts is not None
        self.hosts = node_hosts(count) if hosts is None else hosts[:count]
        self.port = free_cluster_port(self.hosts) if port is None else port
        self.node_timeout_seconds = node_timeout_seconds
        self.launcher = launcher
        self.seeds = ",".join(f"{host}:{self.port}" for host in self.hosts)
        self.root = tempfile.mkdtemp(prefix="trio-kv-cluster-")
        self.flags = flags
        self.node_flags = node_flags
        self.node_env = node_env
        # Node i's process (the latest start), None before its first start.
        self.nodes: list[ServerProcess | None] = [None] * count

    def start(self, index: int) -> ServerProcess:
        self._spawn(index)
        return self._wait_listening(index)

    def _spawn(self, index: int) -> ServerProcess:
        """Start node ``index``'s process (kept in ``nodes``) without waiting for it to listen."""
        flags = ("--host", self.hosts[index], "--port", str(self.port), "--cluster-enabled", "yes",
                 "--cluster-seeds", self.seeds, "--cluster-node-timeout", str(self.node_timeout_seconds), *self.flags,
                 *(self.node_flags(index) if self.node_flags is not None else ()))
        data_dir = self.data_dir(index)
        os.makedirs(data_dir, exist_ok=True)
        env = None if self.node_env is None else server_environment(**self.node_env(index))
        launcher = [] if self.launcher is None else self.launcher(self.hosts[index])
        argv = [*launcher, server_python(REPO), "-m", "trio_kv", "--data-dir", data_dir, *flags]
        node = ServerProcess(argv, cwd=REPO, env=env, data_dir=data_dir)
        self.nodes[index] = node
        return node

    def _wait_listening(self, index: int) -> ServerProcess:
        """Node ``index`` once it listens; stopped, and ServerStartError, if it exits (or stays silent) instead."""
        node = self.node(index)
        try:
            node.wait_for_log(LISTENING, timeout=NODE_START_SECONDS)
            listening = node.wait_listening()
        except BaseException:
            node.stop()
            raise
        if listening is None:
            node.stop()
            raise ServerStartError(f"node {index} exited with status {node.process.returncode}:\n{node.log()}")
        return node

    def data_dir(self, index: int) -> str:
        return os.path.join(self.root, f"node{index}")

    def start_all(self) -> None:
        for attempt in range(START_ATTEMPTS):
            try:
                # Every process first, then the waits: the nodes' start-ups (mostly imports) overlap.
                for index in range(len(self.hosts)):
                    self._spawn(index)
                for index in range(len(self.hosts)):
                    self._wait_listening(index)
                break
            except ServerStartError as error:
                # The port was free when picked and taken before the node
                # bound it (another test run on this machine): new addresses.
                if ("Address already in use" not in str(error) or attempt + 1 == START_ATTEMPTS
                        or self.fixed_addresses):
                    raise
                self._stop_nodes()
                shutil.rmtree(self.root, ignore_errors=True)
                self.root = tempfile.mkdtemp(prefix="trio-kv-cluster-")
                self.nodes = [None] * len(self.hosts)
                self.hosts = node_hosts(len(self.hosts))
                self.port = free_cluster_port(self.hosts)
                self.seeds = ",".join(f"{host}:{self.port}" for host in self.hosts)
        self.wait_for(self.meshed)

    def node(self, index: int) -> ServerProcess:
        node = self.nodes[index]
        assert node is not None, f"node {index} was never started"
        return node

    def kill(self, index: int) -> None:
        """SIGKILL node ``index`` (a crash) and wait for its exit; ``start(index)`` restarts it."""
        self.node(index).kill()

    def pause(self, index: int) -> None:
        self.node(index).send_signal(signal.SIGSTOP)

    def resume(self, index: int) -> None:
        self.node(index).send_signal(signal.SIGCONT)

    def members_up(self, index: int) -> int:
        return self.up_count(self.hosts[index])

    def client(self, index: int, **options) -> redis.Redis:
        return redis.Redis(host=self.hosts[index], port=self.port, socket_timeout=10, **options)

    def up_count(self, host: str) -> int:
        """How many members the node at ``host`` sees up (itself included); -1 if it does not answer."""
        try:
            with redis.Redis(host=host, port=self.port, socket_timeout=5) as client:
                info = client.info("cluster")
        except redis.RedisError:
            return -1
        return int(info.get("cluster_bus_members_up", 0))

    def meshed(self) -> bool:
        return all(self.up_count(host) == len(self.hosts) for host in self.hosts)

    def wait_for(self, predicate: Callable[[], bool], seconds: float = SETTLE_SECONDS) -> None:
        deadline = time.monotonic() + seconds
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError("the cluster did not settle")
            time.sleep(0.05)

    def counters(self, index: int) -> dict[str, int]:
        """``INFO cluster``'s integer ``cluster_*`` fields of node ``index``, without the prefix."""
        with self.client(index) as client:
            info = client.info("cluster")
        return {name[len("cluster_"):]: value for name, value in info.items()
                if name.startswith("cluster_") and isinstance(value, int)}

    def http_address(self, index: int) -> tuple[str, int]:
        """Node ``index``'s HTTP listener (started with ``--http-port 0``)."""
        match = self.node(index).wait_for_log(_HTTP_LISTENING)
        assert match is not None, "the node exited without an HTTP listener"
        return match.group(1), int(match.group(2))

    def stop(self) -> None:
        self._stop_nodes()
        shutil.rmtree(self.root, ignore_errors=True)

    def _stop_nodes(self) -> None:
        for node in self.nodes:
            if node is not None:
                node.stop()

    def __enter__(self) -> ProcessCluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
