"""``RunningServer``: the one implementation of ``commands.control.ServerControl``.

Built by ``server.lifecycle`` when the server starts, from the parts it
controls, each passed in and kept as-is (nothing is attached later):

* the event loop's ``TrioToken``: handlers call from worker threads, so
  every request that changes the event loop's state (shutdown, kill,
  compaction) is handed over with ``run_sync_soon`` and returns at once;
* the ``shutdown`` event ``serve`` waits on;
* the ``ConnectionRegistry``: the connected clients and the max-clients cap;
* the ``Dispatcher`` (its statistics), the main port (``MainPort``: where
  the main listener is now, and moving it);
* with the append-only log on, the log and its ``LogFlusher``
  (compactions); both None with ``--appendonly no``;
* with ``--cluster-enabled yes``, the node's ``ClusterView`` (one node:
  ``cluster.view.emulated``); whoever owns the cluster's opinion (the bus)
  replaces it whole with ``set_cluster_view``, an attribute assignment
  that a worker thread reads atomically.

Reads from a worker thread of state the event loop changes (the registry)
copy first: one ``list()`` of a dict is atomic under the GIL.
"""

from __future__ import annotations

import logging
import resource
from collections.abc import Mapping
from typing import TYPE_CHECKING

import trio

from ..cluster.ring import Member
from ..cluster.view import ClusterView, emulated
from ..commands.session import Session
from ..store.durability.append_log import Persistence
from .log_commit import LogFlusher, SaveRequest

if TYPE_CHECKING:
    from .cluster.node import ClusterNode
    from .dispatch import Dispatcher
    from .listener import ConnectionRegistry
    from .main_port import MainPort

log = logging.getLogger(__name__)

# File descriptors kept free for listeners, logs and later data files.
RESERVED_FDS = 32


def clamp_max_clients(requested: int) -> int:
    """Raise the open-file limit if allowed, then keep max-clients below it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = requested + RESERVED_FDS
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as error:
            log.warning("could not raise the open-file limit to %d: %s", target, error)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        clamped = max(1, soft - RESERVED_FDS)
        log.warning("max-clients %d clamped to %d (open-file limit %d)", requested, clamped, soft)
        return clamped
    return requested


class RunningServer:
    def __init__(
        self,
        *,
        token: trio.lowlevel.TrioToken,
        shutdown: trio.Event,
        registry: ConnectionRegistry,
        dispatcher: Dispatcher,
        main_port: MainPort,
        log: Persistence | None,
        flusher: LogFlusher | None,
        started_at_s: float,
        cluster: ClusterView | None = None,
        cluster_node: ClusterNode | None = None,
    ) -> None:
        self._token = token
        self._shutdown = shutdown
        self._registry = registry
        self._dispatcher = dispatcher
        self._main_port = main_port
        self._log = log
        self._flusher = flusher
        # When serve() began, before the data was loaded (Redis' stat_starttime).
        self.started_at_s = started_at_s
        # None: cluster mode off.
        self._cluster = cluster
        # The cluster's node (server.cluster) with --cluster-seeds; None otherwise.
        self._cluster_node = cluster_node

    @property
    def log(self) -> Persistence | None:
        return self._log

    @property
    def max_clients(self) -> int:
        return self._registry.max_clients

    @property
    def tcp_port(self) -> int:
        return self._main_port.port

    def clients(self) -> list[Session]:
        return [connection.session for connection in list(self._registry.connections.values())]

    def kill_client(self, client_id: int) -> None:
        self._token.run_sync_soon(self._kill, client_id)

    def _kill(self, client_id: int) -> None:
        connection = self._registry.connections.get(client_id)
        if connection is not None:
            connection.kill()

    def request_shutdown(self) -> None:
        self._token.run_sync_soon(self._shutdown.set)

    def set_max_clients(self, requested: int) -> None:
        # Clamped as at start-up; the accept loop reads the registry's cap
        # for each new connection.
        self._registry.max_clients = clamp_max_clients(requested)

    def change_port(self, port: int) -> None:
        self._main_port.change_port(port)
        view = self._cluster
        if view is not None and view.ring.members == (view.myself,) and port:
            # A one-node cluster is where it listens (a member of a static
            # cluster is its address in the seed list: unchanged).
            self._cluster = emulated(Member(view.myself.host, port), view.my_id)

    def dispatcher_statistics(self) -> Mapping[str, int]:
        return self._dispatcher.statistics()

    def request_compaction(self) -> None:
        if self._flusher is not None:
            self._token.run_sync_soon(self._flusher.request_compaction, None)

    def compact_and_wait(self) -> bool:
        if self._flusher is None:
            return False
        request = SaveRequest()
        self._token.run_sync_soon(self._flusher.request_compaction, request)
        return request.wait()

    def cluster_view(self) -> ClusterView | None:
        return self._cluster

    def set_cluster_view(self, view: ClusterView) -> None:
        """A new opinion of the cluster (event loop); handlers see it from
        their next call of ``cluster_view``."""
        self._cluster = view

    def cluster_bus_status(self) -> Mapping[str, object] | None:
        return None if self._cluster_node is None else self._cluster_node.status()
