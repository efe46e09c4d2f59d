"""One simulated trio_kv node: the real store, append-only log (files in
its own temporary data directory), dispatcher, ``RunningServer`` control,
``ClusterNode`` with its peer links, bus listener and connections, and a
client listener serving RESP with the real ``server.connection``. What is
simulated: the network (``network.SimNetwork``, through the bus's
``Transport`` seam and in-memory listeners), the worker threads (inline,
``determinism``), the log's commit thread (``SimFlusher``: the same
flush-then-wake protocol on the event loop, after a seeded disk latency),
wall-clock time (the mock clock plus a per-node skew).

What ``serve`` does and this does not: signals, the TLS/HTTP listeners,
CONFIG SET port, the active expiry sweep, automatic compaction (turned
off), the drain on shutdown (a node here stops only by ``crash``).

``crash()`` is kill -9 plus power loss: every task of the node is cancelled
at once (between two awaits: an inline hop is never cut), its connections
reset, and its log file cut at a seeded offset between what was fsynced
(``LogWriter.synced_offset``) and what was written (unflushed buffers are
lost). ``start()`` again recovers from those bytes only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
import shutil
from pathlib import Path

import trio

from tests.fake_clock import START_MS
from trio_kv.cluster.actor import actor_id
from trio_kv.cluster.hlc import HybridClock, offset_clock
from trio_kv.cluster.ring import BUS_PORT_OFFSET, Member
from trio_kv.cluster.seeds import static_membership
from trio_kv.commands.wire import RESP
from trio_kv.config import Config
from trio_kv.server.cluster.node import ClusterNode
from trio_kv.server.cluster.serve import ClusterHandle, run_cluster
from trio_kv.server.control import RunningServer
from trio_kv.server.dispatch import Dispatcher
from trio_kv.server.listener import ConnectionRegistry, serve_listener
from trio_kv.server.log_commit import load_and_open_log
from trio_kv.server.main_port import MainPort
from trio_kv.store.durability.append_log import Persistence
from trio_kv.store.durability.incarnation import begin_incarnation
from trio_kv.store.durability.node_id import NODE_ID_FILE
from trio_kv.store.keyspace import Keyspace
from trio_kv.store.store import Store

from .network import NodeTransport, SimNetwork


class SimFlusher:
    """``server.dispatch.CommitWaiter`` on the event loop: a kick asks for
    one flush (write and fsync, ``appendfsync always``) of everything
    appended, done after a seeded disk latency, then reported to the
    dispatcher, which wakes the replies now durable (``LogFlusher``'s
    group commit, without its thread)."""

    def __init__(self, persistence: Persistence, rng: random.Random, max_latency_seconds: float) -> None:
        self._persistence = persistence
        self._rng = rng
        self._max_latency_seconds = max_latency_seconds
        self._kicked = trio.Event()
        self.dispatcher: Dispatcher | None = None
        # When the last everysec fsync finished (None: none yet).
        self.synced_at: float | None = None

    @property
    def durable_lsn(self) -> int:
        return self._persistence.durable_lsn

    def refusal(self) -> str | None:
        return self._persistence.refusal()

    def kick(self) -> None:
        self._kicked.set()

    def expect_report(self) -> None:
        pass  # every flush is reported

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                if self._persistence.fsync_policy == "everysec":
                    nursery.start_soon(self._sync_every_second)
                task_status.started()
                await self._flushes()
        finally:
            # The node crashed (its tasks are cancelled): replies still
            # waiting for a flush never get one, as in a killed process.
            # They are refused instead, so their connection tasks can end
            # (their streams are reset: nobody reads those replies).
            if self.dispatcher is not None:
                self.dispatcher.log_flushed(OSError("the node crashed before this flush"))

    async def _sync_every_second(self) -> None:
        """``appendfsync everysec``: fsync what was written, once a second."""
        while True:
            await trio.sleep(1.0)
            self._persistence.sync()
            self.synced_at = trio.current_time()

    async def _flushes(self) -> None:
        while True:
            await self._kicked.wait()
            self._kicked = trio.Event()
            await trio.sleep(self._rng.uniform(0, self._max_latency_seconds))
            error: OSError | None = None
            try:
                self._persistence.flush()
            except OSError as raised:
                error = raised
            assert self.dispatcher is not None
            self.dispatcher.log_flushed(error)


@dataclasses.dataclass
class Running:
    """What one life of a node (start to crash) holds."""

    scope: trio.CancelScope
    store: Store
    persistence: Persistence
    cluster: ClusterNode
    handle: ClusterHandle
    flusher: SimFlusher


class SimNode:
    def __init__(
        self, network: SimNetwork, member: Member, seeds: tuple[str, ...], data_dir: Path, seed: int,
        *, skew_ms: int = 0, disk_latency_seconds: float = 0.002, **config: object,
    ) -> None:
        self.network = network
        self.member = member
        self.data_dir = data_dir
        self.skew_ms = skew_ms
        self.disk_latency_seconds = disk_latency_seconds
        self.rng = random.Random(f"{seed}/{member.address}")
        options: dict[str, object] = {
            "host": member.host, "port": member.port, "data_dir": str(data_dir), "appendonly": True,
            "appendfsync": "always", "aof_rewrite_percentage": 0, "workers": 1, "protected_mode": False,
            "cluster_enabled": True, "cluster_seeds": seeds,
        }
        self.config = Config(**{**options, **config})  # type: ignore[arg-type]
        self._seed = seed
        self.disks = 0
        self.node_id = ""
        self._new_disk()
        self.running: Running | None = None
        self.lives = 0

    def _new_disk(self) -> None:
        """An empty data directory holding only a node id derived from the
        seed (written as the first start would write a random one)."""
        self.disks += 1
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)
        self.data_dir.mkdir(parents=True)
        self.node_id = hashlib.sha1(f"{self._seed}/{self.member.address}/{self.disks}".encode()).hexdigest()
        (self.data_dir / NODE_ID_FILE).write_text(self.node_id + "\n")

    def replace_disk(self) -> None:
        """A crashed node's machine comes back with a new, empty disk: no
        data, a new node id (a new actor), the same address."""
        assert self.running is None, "crash it first"
        self._new_disk()
        self.network.record(f"new disk for {self.member.address}: node id {self.node_id}")

    def clock_ms(self) -> int:
        return START_MS + self.skew_ms + int(trio.current_time() * 1000)

    @property
    def up(self) -> bool:
        return self.running is not None

    async def start(self, nursery: trio.Nursery) -> Running:
        running: Running = await nursery.start(self._life)
        self.running = running
        self.lives += 1
        self.network.record(f"start {self.member.address} life {self.lives}")
        return running

    async def _life(self, *, task_status: trio.TaskStatus[Running]) -> None:
        config = self.config
        with trio.CancelScope() as scope:
            # As serve(): the versions' actor is the node id in this
            # incarnation, bumped after every crash (no clean-shutdown marker).
            incarnation = begin_incarnation(config.data_dir)
            store = Store(
                config, Keyspace(clock_ms=self.clock_ms), actor_id=actor_id(self.node_id, incarnation),
                # --debug-clock-offset-ms shifts the versions' clock only, as in serve().
                hlc=HybridClock(offset_clock(self.clock_ms, config.debug_clock_offset_ms)),
            )
            persistence = await load_and_open_log(store, trio.CapacityLimiter(1))
            try:
                flusher = SimFlusher(persistence, self.rng, self.disk_latency_seconds)
                dispatcher = Dispatcher(store, config.workers, commit=flusher)
                flusher.dispatcher = dispatcher
                cluster = ClusterNode(
                    config, static_membership(config), self.node_id,
                    transport=NodeTransport(self.network, self.member.host),
                )
                token = trio.lowlevel.current_trio_token()
                registry = ConnectionRegistry(1000)
                control = RunningServer(
                    token=token, shutdown=trio.Event(), registry=registry, dispatcher=dispatcher,
                    main_port=MainPort(config.host, token), log=persistence, flusher=None, started_at_s=0.0,
                    cluster=cluster.view(), cluster_node=cluster,
                )
                cluster.on_view_change(control.set_cluster_view)
                bus = self.network.listen((self.member.host, self.member.port + BUS_PORT_OFFSET))
                clients = self.network.listen((self.member.host, self.member.port))
                async with trio.open_nursery() as root:
                    await root.start(dispatcher.run)
                    await root.start(flusher.run)
                    store.persistence = persistence
                    handle = await root.start(run_cluster, cluster, [bus], store, control, dispatcher)
                    root.start_soon(serve_listener, clients, store, control, dispatcher, registry, root, RESP)
                    task_status.started(Running(scope, store, persistence, cluster, handle, flusher))
            finally:
                persistence.data_dir.unlock()

    def crash(self, *, torn_write: bool = False) -> None:
        """kill -9 and power loss (see the module docstring). With
        ``torn_write`` the power failed during a write() of the records
        still buffered (none of them acknowledged: a reply waits for its
        record's write): a seeded prefix of those bytes reached the file,
        possibly ending inside a record, before the cut."""
        running = self.running
        assert running is not None
        self.running = None
        running.scope.cancel()
        self.network.reset_host(self.member.host, f"{self.member.address} crashed")
        writer = running.persistence.writer
        fd, writer._fd = writer._fd, None
        if fd is not None:
            if torn_write and writer._pending:
                buffered = b"".join(writer._pending)
                torn = random.Random(f"{self._seed}/{self.member.address}/{self.lives}/torn")
                os.write(fd, buffered[: torn.randint(0, len(buffered))])
            os.close(fd)  # the buffer not written yet is lost with the process
        size = os.path.getsize(writer.path)
        keep = self.rng.randint(writer.synced_offset, size)
        os.truncate(writer.path, keep)
        self.network.record(
            f"crash {self.member.address}: log kept {keep} of {size} bytes (fsynced {writer.synced_offset})"
        )
