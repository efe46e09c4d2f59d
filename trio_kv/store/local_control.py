"""``LocalControl``: the ``commands.control.ServerControl`` of a store used
without a server (unit tests, an embedded store).

There is no server to stop, no listener to move and no connection to close,
so those requests only record themselves; ``clients`` is the registry the
caller fills by hand. The log is whatever the store holds
(``store.persistence``), and there is no commit thread, so compaction is
never available. Everything else answers from the configuration; with
``cluster_enabled`` the cluster is the one-node view of this address with a
fresh node id (a test may assign ``cluster`` any other view).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..cluster.ring import Member
from ..cluster.view import ClusterView, emulated
from .durability.node_id import new_node_id
from .store import Store

if TYPE_CHECKING:
    from ..commands.control import LogStatus
    from ..commands.session import Session


class LocalControl:
    def __init__(self, store: Store) -> None:
        self._store = store
        self.started_at_s = time.time()
        self.max_clients = store.config.max_clients
        self.tcp_port = store.config.port
        # The "connected" sessions by id, filled by the caller (tests).
        self.sessions: dict[int, Session] = {}
        # What handlers asked for, in order: ("shutdown",), ("kill", id).
        self.requests: list[tuple[object, ...]] = []
        config = store.config
        self.cluster: ClusterView | None = (
            emulated(Member(config.host, config.port), new_node_id()) if config.cluster_enabled else None
        )

    @property
    def log(self) -> LogStatus | None:
        return self._store.persistence

    def clients(self) -> list[Session]:
        return list(self.sessions.values())

    def kill_client(self, client_id: int) -> None:
        self.requests.append(("kill", client_id))

    def request_shutdown(self) -> None:
        self.requests.append(("shutdown",))

    def set_max_clients(self, requested: int) -> None:
        self.max_clients = requested

    def change_port(self, port: int) -> None:
        self.tcp_port = port

    def dispatcher_statistics(self) -> Mapping[str, int]:
        return {}

    def request_compaction(self) -> None:
        self.requests.append(("compaction",))

    def compact_and_wait(self) -> bool:
        return False

    def cluster_view(self) -> ClusterView | None:
        return self.cluster

    def cluster_bus_status(self) -> Mapping[str, object] | None:
        return None
