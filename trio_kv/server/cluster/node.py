"""``ClusterNode``: this node's membership, identity, peer links and
up/down opinion, and the ``ClusterView`` it publishes.

``view()`` is the function that produces the current view (handlers reach
it through ``ServerControl``); it returns an immutable snapshot rebuilt only
when the opinion changes (a peer met or heard after silence, a peer gone
silent for ``node_timeout``), so reading it from a worker thread is one
attribute read. ``links`` maps each peer to its ``PeerLink``: the data
path's way to every other node.

Up/down (``cluster.health``): a peer is up from its handshake or any
answered ping until ``node_timeout`` of silence. ``watch`` (a task in the
cluster nursery) re-reads the opinion every ``WATCH_INTERVAL_SECONDS``, so a
silent peer is marked down at most that long after its timeout; a peer
heard again is marked up at once. Every change is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import trio

from ...cluster.handshake import PROTOCOL_VERSION, Hello
from ...cluster.health import PeerHealth
from ...cluster.ring import Member
from ...cluster.ring_document import ring_hash
from ...cluster.seeds import StaticMembership
from ...cluster.view import ClusterView, placeholder_node_id
from ...config import Config
from .peer_link import LinkStatistics, PeerLink
from .transport import Transport

log = logging.getLogger(__name__)

WATCH_INTERVAL_SECONDS = 0.1


class ClusterNode:
    def __init__(
        self,
        config: Config,
        membership: StaticMembership,
        node_id: str,
        *,
        bus_port_offset: int | None = None,
        transport: Transport | None = None,
    ) -> None:
        self.myself = membership.myself
        self.ring = membership.ring
        self.node_id = node_id
        self.cluster_name = config.cluster_name
        self._secret = config.cluster_secret
        self.node_timeout_seconds = config.cluster_node_timeout_seconds
        self._ring_hash = ring_hash(self.ring)
        self._node_ids: dict[Member, str] = {self.myself: node_id}
        self._health = {peer: PeerHealth(self.node_timeout_seconds) for peer in membership.peers}
        self._up: frozenset[Member] = frozenset([self.myself])
        extra: dict[str, object] = {} if bus_port_offset is None else {"bus_port_offset": bus_port_offset}
        self.links: dict[Member, PeerLink] = {
            peer: PeerLink(peer, self, node_timeout_seconds=self.node_timeout_seconds, transport=transport, **extra)
            for peer in membership.peers
        }
        self._view = self._build_view()
        # Set (and replaced) whenever the view changes: tests and the data path wait on it.
        self.view_changed = trio.Event()
        self._subscribers: list[Callable[[ClusterView], None]] = []
        # The coordinator's quorum outcome counters (server/cluster/coordinator.py), once it runs.
        self.data_path_statistics: Callable[[], Mapping[str, int]] | None = None
        # Anti-entropy's counters (server/cluster/anti_entropy.py), once it runs.
        self.anti_entropy_statistics: Callable[[], Mapping[str, int]] | None = None
        # Anti-entropy's progress with each peer (last exchange...), once it runs.
        self.anti_entropy_peers: Callable[[], list[dict[str, object]]] | None = None
        # Hinted handoff's counters and per-target (records, bytes) pending (server/cluster/hints.py), once it runs.
        self.hints_statistics: Callable[[], Mapping[str, int]] | None = None
        self.hints_pending: Callable[[], Mapping[str, tuple[int, int]]] | None = None

    # -- what handlers and links read ----------------------------------------

    def view(self) -> ClusterView:
        return self._view

    def on_view_change(self, subscriber: Callable[[ClusterView], None]) -> None:
        """Call ``subscriber(view)`` now and on the event loop at every change
        (``RunningServer.set_cluster_view``, for handlers)."""
        self._subscribers.append(subscriber)
        subscriber(self._view)

    @property
    def secret(self) -> str | None:
        return self._secret

    @property
    def ring_hash(self) -> str:
        return self._ring_hash

    def hello(self, nonce: str) -> Hello:
        return Hello(PROTOCOL_VERSION, self.cluster_name, self.node_id, self.myself.address, self._ring_hash, nonce)

    def link_statistics(self) -> list[LinkStatistics]:
        return [link.statistics() for link in self.links.values()]

    def status(self) -> dict[str, object]:
        """``ServerControl.cluster_bus_status`` (safe from a worker thread:
        one view read, counters copied)."""
        view = self._view
        return {
            "epoch": view.ring.epoch,
            "ring_hash": self._ring_hash,
            "myself": self.myself.address,
            "members": [
                (member.address, view.node_ids[member], member in view.up) for member in view.ring.members
            ],
            "links": [vars(statistics) for statistics in self.link_statistics()],
            "data_path": {} if self.data_path_statistics is None else dict(self.data_path_statistics()),
            "anti_entropy": {} if self.anti_entropy_statistics is None else dict(self.anti_entropy_statistics()),
            "anti_entropy_peers": [] if self.anti_entropy_peers is None else self.anti_entropy_peers(),
            "hints": {} if self.hints_statistics is None else dict(self.hints_statistics()),
            "hints_pending": [] if self.hints_pending is None else sorted(self.hints_pending().items()),
        }

    # -- what links report ---------------------------------------------------

    def met(self, member: Member, node_id: str) -> None:
        if self._node_ids.get(member) != node_id:
            previous = self._node_ids.get(member)
            if previous is not None:
                log.warning("peer %s has a new node id %s (was %s): a new actor", member.address, node_id, previous)
            self._node_ids[member] = node_id
            self._publish()

    def heard(self, member: Member) -> None:
        health = self._health.get(member)
        if health is None:
            return
        health.heard(trio.current_time())
        if member not in self._up:
            self.refresh()

    # -- the opinion ---------------------------------------------------------

    def refresh(self) -> None:
        """Re-read every peer's health; publish a new view if it changed."""
        now = trio.current_time()
        up = frozenset([self.myself, *(member for member, health in self._health.items() if health.is_up(now))])
        if up == self._up:
            return
        for member in sorted(up - self._up):
            log.info("peer %s is up", member.address)
        for member in sorted(self._up - up):
            log.warning("peer %s is down (no answer for %g s)", member.address, self.node_timeout_seconds)
        self._up = up
        for member, link in self.links.items():
            link.set_up(member in up)
        self._publish()

    async def watch(self) -> None:
        """Mark silent peers down (runs in the cluster nursery)."""
        while True:
            self.refresh()
            await trio.sleep(WATCH_INTERVAL_SECONDS)

    def _build_view(self) -> ClusterView:
        node_ids: Mapping[Member, str] = {
            member: self._node_ids.get(member) or placeholder_node_id(member) for member in self.ring.members
        }
        return ClusterView(myself=self.myself, ring=self.ring, node_ids=node_ids, up=self._up)

    def _publish(self) -> None:
        self._view = self._build_view()
        changed, self.view_changed = self.view_changed, trio.Event()
        changed.set()
        for subscriber in self._subscribers:
            subscriber(self._view)
