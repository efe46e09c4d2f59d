"""The cluster nursery: what runs when ``--cluster-enabled yes``.

    cluster nursery
     +-- bus listener: inbound peer connections (TKV.* only)   bus_listener
     +-- bus connections nursery: one task per inbound connection
     +-- one nursery per peer: PeerLink.run (connect, handshake,   peer_link
     |     link writer and reader, pinger); its failure ends only it;
     |     started and stopped by the node as the ring changes      node
     +-- ring fetches and pushes (a newer epoch seen or proposed)  node
     +-- watch: marks silent peers down                          node
     +-- anti-entropy: a Tictac exchange loop per peer            anti_entropy
     |   (every --cluster-aae-interval seconds; 0: not started)
     +-- partition moves: copies after a ring change              moves
     +-- hinted handoff: the hint writer and the hint replayer    hints
         (--cluster-hinted-handoff yes with --appendonly yes), and
         with appendfsync everysec the fallback hints' fsync task

``run_cluster`` starts it and reports a ``ClusterHandle``; the server calls
``handle.stop()`` after its client connections drained (the data path may
need the links until then) and before the dispatcher stops (inbound bus
commands run on the workers). Stopping: the bus listener closes, inbound
connections stop reading and finish what they read (for at most
``STOP_GRACE_SECONDS``), then everything left, the outbound links
included, is cancelled and its sockets closed.

Without ``--cluster-enabled yes`` none of this runs and no bus port opens.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import trio

from ...commands.control import ServerControl
from ...store.engine import Store
from ..dispatch import Dispatcher
from ..listener import ConnectionRegistry
from .anti_entropy import AntiEntropy
from .bus_listener import MAX_BUS_CONNECTIONS, serve_bus_listener
from .coordinator import Coordinator
from .hint_log import HintFiles
from .hints import HintedHandoff
from .moves import PartitionMoves
from .node import ClusterNode

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 0.5


class ClusterHandle:
    """What the server keeps of the running cluster: its node (the view,
    the links) and how to stop it."""

    def __init__(self, node: ClusterNode, inbound: ConnectionRegistry) -> None:
        self.node = node
        # The inbound bus connections (peers' links to this node, redis-cli).
        self.inbound = inbound
        # The data path (set by run_cluster).
        self.coordinator: Coordinator | None = None
        # Anti-entropy (set by run_cluster unless --cluster-aae-interval 0).
        self.anti_entropy: AntiEntropy | None = None
        # Partition moves (set by run_cluster).
        self.moves: PartitionMoves | None = None
        # Hinted handoff (set by run_cluster when it runs).
        self.hints: HintedHandoff | None = None
        self._stopping = trio.Event()
        self.stopped = trio.Event()

    async def stop(self) -> None:
        """Close the bus and every link (see the module docstring)."""
        self._stopping.set()
        await self.stopped.wait()


async def _open_hints(node: ClusterNode, store: Store) -> HintedHandoff | None:
    """This node's hints (the files found in DATA/hints sealed for replay),
    or None: hinted handoff off, memory-only node, or no peers."""
    config = store.config
    if not (config.cluster_hinted_handoff and config.appendonly and node.links):
        return None
    files = HintFiles(os.path.join(config.data_dir, "hints"), max_bytes=config.cluster_max_hint_bytes,
                      window_seconds=config.cluster_max_hint_window_seconds)
    await trio.to_thread.run_sync(files.open)
    handoff = HintedHandoff(node, files, fsync_policy=config.appendfsync)
    handoff.refresh_pending()
    return handoff


async def run_cluster(
    node: ClusterNode,
    bus_listeners: Sequence[trio.abc.Listener[trio.abc.Stream]],
    store: Store,
    control: ServerControl,
    dispatcher: Dispatcher,
    *,
    task_status: trio.TaskStatus[ClusterHandle] = trio.TASK_STATUS_IGNORED,
) -> None:
    registry = ConnectionRegistry(MAX_BUS_CONNECTIONS)
    async with trio.open_nursery() as cluster:
        handle = ClusterHandle(node, registry)
        # The data path (coordinator.py): routes every connection's jobs while it runs.
        handle.coordinator = Coordinator(node, store, control, dispatcher)
        handle.hints = await _open_hints(node, store)
        if handle.hints is not None:
            handle.coordinator.hints = handle.hints
            node.hints_statistics = handle.hints.statistics
            node.hints_pending = handle.hints.pending
            cluster.start_soon(handle.hints.run_writer)
            cluster.start_soon(handle.hints.run_replayer)
            # Sloppy quorum's fallback side: TKV.HINT from coordinators (whether or not this node's option is on).
            handle.coordinator.bus_side.take_hints = handle.hints.take
            if store.config.appendfsync == "everysec":
                cluster.start_soon(handle.hints.run_syncer)
        await cluster.start(handle.coordinator.run)
        async with trio.open_nursery() as connections:
            async with trio.open_nursery() as accepting:
                for listener in bus_listeners:
                    accepting.start_soon(
                        serve_bus_listener, listener, node, store, control, dispatcher, registry, connections,
                        node.node_timeout_seconds,
                    )
                # One link per peer, and later ones as the ring changes (node.py).
                node.run_links(cluster)
                cluster.start_soon(node.watch)
                interval = store.config.cluster_aae_interval_seconds
                if interval > 0 and node.links:
                    handle.anti_entropy = AntiEntropy(
                        node, store, control, dispatcher, interval_seconds=interval,
                        max_repair_keys_per_second=store.config.cluster_aae_max_keys_per_second,
                        tombstone_grace_seconds=store.config.cluster_tombstone_grace_seconds,
                    )
                    node.anti_entropy_statistics = handle.anti_entropy.statistics
                    node.anti_entropy_peers = handle.anti_entropy.peer_progress
                    cluster.start_soon(handle.anti_entropy.run)
                # Partition moves after a ring change (moves.py) use anti-entropy's
                # repair steps, whether or not its own loop runs, through an
                # instance of their own (no repair rate: moves.py paces itself).
                repair = AntiEntropy(node, store, control, dispatcher, interval_seconds=1.0)
                handle.moves = PartitionMoves(node, repair.sync_partition)
                node.move_statistics = handle.moves.statistics
                cluster.start_soon(handle.moves.run)
                task_status.started(handle)
                await handle._stopping.wait()
                accepting.cancel_scope.cancel()
            started = trio.current_time()
            registry.stop_reading_all()
            with trio.move_on_after(STOP_GRACE_SECONDS):
                await registry.wait_all_closed()
            connections.cancel_scope.cancel()
        cluster.cancel_scope.cancel()
    log.info("cluster bus stopped in %.1f ms", (trio.current_time() - started) * 1000)
    handle.stopped.set()
