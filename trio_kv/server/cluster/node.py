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

Ring epochs (issue 11, membership changes). The ring is kept in a
``RingStore`` (``cluster.ring_record``; a file in the data directory). A
node adopts a ring only if its epoch is higher than its own, never going
back, and only once it is saved (compare-and-set on the epoch it last
saved): a restart then starts from it. Rings arrive three ways: a peer's
``TKV.PING`` answer names a higher epoch (``peer_epoch``: this node fetches
``TKV.RING RECORD`` from that peer), a ``TKV.RING.PUSH`` (``offer_ring``),
or an admin change made here (``propose_ring``: adopted, then pushed to
every connected member). Adopting starts a link to each new member and
stops the links to members gone (their ``PeerLink`` objects stay in
``links``, stopped, so a member that comes back gets the same object).

Two admins at once (``change_lock.py``): an admin change locks every
member first (``lock_change``); a locked node adopts no ring of the next
epoch made by another change (``adopt``'s ``change`` token). A node a
change removed keeps running but is no member: it coordinates no
partition, its peers refuse its handshake, and ``ring_state`` says
``removed`` (``trio-kv cluster status``, INFO ``cluster_bus_ring_state``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import trio

from ...cluster.handshake import PROTOCOL_VERSION, Hello, hello_ring
from ...cluster.health import PeerHealth
from ...cluster.ring import Member, Ring
from ...cluster.ring_document import ring_hash
from ...cluster.ring_record import (
    MemoryRingStore, RingRecordError, RingStore, StaleRing, change_of, decode_ring, encode_ring, previous_hash_of,
)
from ...cluster.seeds import StaticMembership
from ...cluster.view import ClusterView, placeholder_node_id
from ...config import Config
from .change_lock import ChangeLock
from .link import LinkError
from .peer_link import LinkStatistics, PeerLink
from .transport import Transport

log = logging.getLogger(__name__)

WATCH_INTERVAL_SECONDS = 0.1
SETTLE_POLL_SECONDS = 0.02


def ring_state(ring: Ring, myself: Member) -> str:
    """What ``trio-kv cluster status`` says of this node's place in ``ring``:
    ``removed`` (not a member: it serves no partition, stop it), ``leaving``
    (a staged change removes it: it serves its partitions and hands them
    off), ``staged`` (a change is under way), ``final``."""
    if myself not in ring.members:
        return "removed"
    if ring.staged:
        return "leaving" if myself not in ring.next_members else "staged"
    return "final"


class ClusterNode:
    def __init__(
        self,
        config: Config,
        membership: StaticMembership,
        node_id: str,
        *,
        bus_port_offset: int | None = None,
        transport: Transport | None = None,
        ring_store: RingStore | None = None,
    ) -> None:
        self.myself = membership.myself
        # The adopted ring (handshakes, pings, the store) and the one the view
        # shows (the data path): they differ while a new ring settles (_settle).
        self.ring = membership.ring
        self._view_ring = membership.ring
        # N of the claim: a membership change keeps it (cluster.ring_change.reclaim).
        self.replicas = config.cluster_replicas
        self._ring_store: RingStore = MemoryRingStore() if ring_store is None else ring_store
        # The epoch the store holds (None: nothing saved; the ring came from the seeds).
        saved = self._ring_store.load()
        self._saved_epoch = None if saved is None else saved.epoch
        # The hash of the ring this one was made from, when known (TKV.RING RECORD).
        self.previous_ring_hash: str | None = None
        # The ring this one was made from, when it was this node's (a staged
        # change's FINISH recomputes the final ring from it: commands/peer/ring.py).
        self.previous_ring: Ring | None = None
        # The token of the admin change that made the adopted ring (None: not
        # one; change_lock.py), served with it in TKV.RING RECORD.
        self.change_token: str | None = None
        # Two admins at once (change_lock.py): the lock a change takes on every member.
        self.change_lock = ChangeLock(lambda: self.ring.epoch)
        self.node_id = node_id
        self.cluster_name = config.cluster_name
        self._secret = config.cluster_secret
        self.node_timeout_seconds = config.cluster_node_timeout_seconds
        self._ring_hash = ring_hash(self.ring)
        self._node_ids: dict[Member, str] = {self.myself: node_id}
        self._health = {peer: PeerHealth(self.node_timeout_seconds) for peer in membership.peers}
        self._up: frozenset[Member] = frozenset([self.myself])
        extra: dict[str, object] = {} if bus_port_offset is None else {"bus_port_offset": bus_port_offset}
        self._new_link: Callable[[Member], PeerLink] = lambda peer: PeerLink(
            peer, self, node_timeout_seconds=self.node_timeout_seconds, transport=transport, **extra  # type: ignore[arg-type]
        )
        # Every member's link, for the current ring's peers and (stopped) for members gone.
        self.links: dict[Member, PeerLink] = {peer: self._new_link(peer) for peer in membership.peers}
        # Set by run_links: where links and ring fetches run, and how other threads reach it.
        self._nursery: trio.Nursery | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._link_scopes: dict[Member, trio.CancelScope] = {}
        self._adopting = trio.Lock()
        # Each peer's ring epoch, as its last ping answer showed it.
        self._peer_epochs: dict[Member, int] = {}
        # Peers a ring fetch is under way from (at most one each).
        self._fetching: set[Member] = set()
        self._view = self._build_view()
        # Set (and replaced) whenever the view changes: tests and the data path wait on it.
        self.view_changed = trio.Event()
        self._subscribers: list[Callable[[ClusterView], None]] = []
        # Called with (old ring, new ring) at every adoption (moves.py).
        self._ring_subscribers: list[Callable[[Ring, Ring], None]] = []
        # The partition moves' counters (server/cluster/moves.py), once they run.
        self.move_statistics: Callable[[], Mapping[str, int]] | None = None
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

    def on_ring_change(self, subscriber: Callable[[Ring, Ring], None]) -> None:
        """Call ``subscriber(old, new)`` whenever this node adopts a ring made
        from its own (``new``'s record names ``old``'s hash as its previous)."""
        self._ring_subscribers.append(subscriber)

    @property
    def secret(self) -> str | None:
        return self._secret

    @property
    def ring_hash(self) -> str:
        return self._ring_hash

    def hello(self, nonce: str) -> Hello:
        return Hello(
            PROTOCOL_VERSION, self.cluster_name, self.node_id, self.myself.address,
            hello_ring(self._ring_hash, self.ring.epoch), nonce,
        )

    def link_statistics(self) -> list[LinkStatistics]:
        members = set(self.ring.members)
        return [link.statistics() for member, link in self.links.items() if member in members]

    def status(self) -> dict[str, object]:
        """``ServerControl.cluster_bus_status`` (safe from a worker thread:
        one view read, counters copied)."""
        view = self._view
        return {
            "epoch": view.ring.epoch,
            "ring_hash": self._ring_hash,
            "ring_state": ring_state(view.ring, self.myself),
            "myself": self.myself.address,
            "members": [
                (member.address, view.node_ids[member], member in view.up) for member in view.ring.members
            ],
            "links": [vars(statistics) for statistics in self.link_statistics()],
            "data_path": {} if self.data_path_statistics is None else dict(self.data_path_statistics()),
            "anti_entropy": {} if self.anti_entropy_statistics is None else dict(self.anti_entropy_statistics()),
            "moves": {} if self.move_statistics is None else dict(self.move_statistics()),
            "anti_entropy_peers": [] if self.anti_entropy_peers is None else self.anti_entropy_peers(),
            "hints": {} if self.hints_statistics is None else dict(self.hints_statistics()),
            "hints_pending": [] if self.hints_pending is None else sorted(self.hints_pending().items()),
        }

    def members_caught_up(self, epoch: int) -> bool:
        """Whether this node and every member it believes up are at ``epoch``
        or later (their last pings): the moves' test that no member still
        writes the way an older ring says (moves.py)."""
        view = self._view
        return view.ring.epoch >= epoch and all(
            self._peer_epochs.get(member, -1) >= epoch for member in view.up if member != self.myself
        )

    # -- the ring-change lock (change_lock.py; TKV.RING.LOCK) ------------------

    def lock_change(self, epoch: int, token: str, seconds: float) -> str | None:
        return self.change_lock.acquire(epoch, token, seconds)

    def unlock_change(self, token: str) -> bool:
        return self.change_lock.release(token)

    def holds_change(self, token: str, epoch: int) -> bool:
        return self.change_lock.holds(token, epoch)

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

    # -- ring epochs (the module docstring) -----------------------------------

    def run_links(self, nursery: trio.Nursery) -> None:
        """Start a link per peer in ``nursery`` (the cluster's), which also
        runs every later link and ring fetch."""
        self._nursery = nursery
        self._token = trio.lowlevel.current_trio_token()
        for member in self.links:
            self._start_link(member)

    def _start_link(self, member: Member) -> None:
        assert self._nursery is not None
        scope = self._link_scopes[member] = trio.CancelScope()
        self._nursery.start_soon(self._run_link, self.links[member], scope)

    @staticmethod
    async def _run_link(link: PeerLink, scope: trio.CancelScope) -> None:
        """A peer's own nursery: a bug in its link ends that link, logged, and
        the node goes on without it (its peer is then seen down)."""
        with scope:
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(link.run)
            except Exception:
                log.exception("bus link to %s failed; the peer stays unlinked", link.member.address)

    def peer_epoch(self, member: Member, epoch: int) -> None:
        """``member`` answered a ping with ``epoch``: fetch its ring if newer."""
        self._peer_epochs[member] = epoch
        if epoch > self.ring.epoch and member not in self._fetching and self._nursery is not None:
            self._fetching.add(member)
            self._nursery.start_soon(self._fetch_ring, member)

    async def _fetch_ring(self, member: Member) -> None:
        try:
            with trio.fail_after(self.node_timeout_seconds):
                reply = await self.links[member].request([b"TKV.RING", b"RECORD"])
            if not isinstance(reply, bytes):
                raise RingRecordError(f"TKV.RING RECORD answered {str(reply)[:80]}")
            await self.adopt(decode_ring(reply), previous_hash_of(reply), change_of(reply))
        except (LinkError, RingRecordError, trio.TooSlowError) as error:
            log.warning("could not fetch the ring of %s: %s", member.address, error or "timed out")
        finally:
            self._fetching.discard(member)

    def offer_ring(
        self, ring: Ring, *, previous_hash: str | None = None, push: bool = False, change: str | None = None,
    ) -> None:
        """Adopt ``ring`` soon if it is newer (``push``: then send it to every
        connected member; ``change``: the admin change's token that made it).
        Safe from any thread: peer handlers call it."""
        token, nursery = self._token, self._nursery
        if token is None or nursery is None:
            raise RuntimeError("the cluster is not running")

        async def adopt_and_push() -> None:
            if await self.adopt(ring, previous_hash, change) and push:
                await self.push_ring(ring)

        token.run_sync_soon(nursery.start_soon, adopt_and_push)

    async def adopt(self, ring: Ring, previous_hash: str | None = None, change: str | None = None) -> bool:
        """Save ``ring`` and make it this node's if its epoch is higher; False
        (logged) if it is not, or does not fit, or could not be saved, or
        another change's lock holds this node (``change``: the token of the
        change that made ``ring``; change_lock.py). ``previous_hash``: the
        ring it was made from (``on_ring_change`` subscribers hear of it
        only if that was this node's)."""
        async with self._adopting:
            if ring.epoch <= self.ring.epoch:
                return False
            refused = self.change_lock.refuses(ring.epoch, change)
            if refused is not None:
                log.warning("refused ring epoch %d: %s", ring.epoch, refused)
                return False
            if ring.partition_count != self.ring.partition_count:
                log.error(
                    "refused ring epoch %d: %d partitions, this node has %d (fixed at creation)",
                    ring.epoch, ring.partition_count, self.ring.partition_count,
                )
                return False
            try:
                await trio.to_thread.run_sync(self._ring_store.save, ring, self._saved_epoch)
            except (StaleRing, OSError) as error:
                log.error("could not save ring epoch %d, not adopted: %s", ring.epoch, error)
                return False
            self._saved_epoch = ring.epoch
            self.change_token = change
            self._install(ring, previous_hash)
            return True

    async def push_ring(self, ring: Ring) -> None:
        """Send ``ring`` to every connected member (the others learn it from
        the next ping); failures are logged, never raised."""
        record = encode_ring(ring, self.previous_ring_hash, self.change_token if ring is self.ring else None)

        async def push(member: Member) -> None:
            try:
                with trio.fail_after(self.node_timeout_seconds):
                    await self.links[member].request([b"TKV.RING.PUSH", record])
            except (LinkError, trio.TooSlowError) as error:
                log.info("ring epoch %d not pushed to %s (%s): it learns it from a ping", ring.epoch, member.address, error)

        async with trio.open_nursery() as nursery:
            for member in ring.members:
                if member != self.myself and member in self.links:
                    nursery.start_soon(push, member)

    def _install(self, ring: Ring, previous_hash: str | None) -> None:
        old = self.ring
        old_hash = self._ring_hash
        self.previous_ring_hash = previous_hash
        before = set(old.members) - {self.myself}
        after = set(ring.members) - {self.myself}
        self.ring = ring
        self._ring_hash = ring_hash(ring)
        log.info(
            "adopted ring epoch %d (hash %s): members %s", ring.epoch, self._ring_hash,
            ", ".join(member.address for member in ring.members),
        )
        if self.myself not in ring.members:
            log.warning("this node (%s) is not a member of ring epoch %d: it was removed", self.myself.address, ring.epoch)
        for member in sorted(after - before):
            self._health[member] = PeerHealth(self.node_timeout_seconds)
            if member not in self.links:
                self.links[member] = self._new_link(member)
            if self._nursery is not None:
                self._start_link(member)
        for member in sorted(before - after):
            self._health.pop(member, None)
            scope = self._link_scopes.pop(member, None)
            if scope is not None:
                scope.cancel()
            self.links[member].set_up(False)
        self._up = self._up & frozenset(ring.members) | {self.myself}
        notify = previous_hash == old_hash
        self.previous_ring = old if notify else None
        if not notify:
            # This node's ring was not the one the change was made from (it
            # missed an epoch, or it is joining with its seeds' ring): the
            # nodes that had it make the copies.
            log.info("ring epoch %d was not made from this node's epoch %d: no copies from here", ring.epoch, old.epoch)
        new_peers = frozenset(after - before)
        # A joining node's old view (epoch 0) routes nowhere useful: switch at once.
        if new_peers and self._nursery is not None and self._view_ring.epoch > 0:
            self._nursery.start_soon(self._settle, ring, old, new_peers, notify)
        else:
            self._switch(ring, old, notify)

    async def _settle(self, ring: Ring, old: Ring, new_peers: frozenset[Member], notify: bool) -> None:
        """Show ``ring`` to the data path once the links to its new members
        are up and their pings show this epoch (at most ``node_timeout``
        later): a coordinator must not send requests to a new member that
        cannot reach its own replicas yet, nor meet a list whose new members
        it cannot reach."""
        with trio.move_on_after(self.node_timeout_seconds):
            while self.ring is ring and not all(
                member in self._up and self._peer_epochs.get(member, -1) >= ring.epoch for member in new_peers
            ):
                await trio.sleep(SETTLE_POLL_SECONDS)
        self._switch(ring, old, notify)

    def _switch(self, ring: Ring, old: Ring, notify: bool) -> None:
        if self.ring is not ring:
            return  # a newer ring was adopted meanwhile: it switches
        self._view_ring = ring
        self._publish()
        if notify:
            for subscriber in self._ring_subscribers:
                subscriber(old, ring)

    def member_addresses(self) -> frozenset[str]:
        """Whom the handshake lets in: the members of the adopted ring and
        of the ring the view still shows (while a new one settles)."""
        return frozenset(member.address for member in (*self.ring.members, *self._view_ring.members))

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
            member: self._node_ids.get(member) or placeholder_node_id(member)
            for member in (*self._view_ring.members, self.myself)
        }
        return ClusterView(myself=self.myself, ring=self._view_ring, node_ids=node_ids, up=self._up)

    def _publish(self) -> None:
        self._view = self._build_view()
        changed, self.view_changed = self.view_changed, trio.Event()
        changed.set()
        for subscriber in self._subscribers:
            subscriber(self._view)

