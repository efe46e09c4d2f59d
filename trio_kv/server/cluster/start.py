"""Before the cluster runs: whether it runs at all, its bus port, its
membership and this node's id.

The bus runs only with ``--cluster-enabled yes`` *and* ``--cluster-seeds``
(a cluster of several nodes): a one-node (emulated) cluster has nobody to
talk to, opens no bus port, and so still starts with ``--port 0``.

``prepare_cluster`` refuses a start where this node is not in the seed
list (``cluster.seeds.MembershipError``, one sentence for the command
line). A node with a saved ring (``membership_store``: it was part of a
cluster before) starts from that ring instead of the seeds: a restarted
node rejoins by itself, at the epoch it had, and fetches any newer one
from its peers' pings. The node id comes from the server (``server.lifecycle._node_id``:
the data directory's ``node-id`` file, created at first start; a fresh id
with ``--appendonly no``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ...cluster.ring import BUS_PORT_OFFSET
from ...cluster.ring_record import MemoryRingStore, RingStore
from ...cluster.seeds import StaticMembership, myself_of, static_membership
from ...config import Config
from .membership_store import FileRingStore
from .node import ClusterNode

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterStart:
    node: ClusterNode


def runs_bus(config: Config) -> bool:
    return config.cluster_enabled and bool(config.cluster_seeds)


def bus_port(config: Config, main_port: int) -> int | None:
    """The bus port for a main listener on ``main_port`` (None: no bus)."""
    if not runs_bus(config):
        return None
    port = main_port + BUS_PORT_OFFSET
    if port > 65535:
        raise OSError(f"the cluster bus port would be {port} (client port {main_port} + {BUS_PORT_OFFSET}): too high")
    return port


def prepare_cluster(config: Config, main_port: int, node_id: str) -> ClusterStart | None:
    """The node of a multi-node cluster (None: no bus), this node being
    ``node_id`` (read by the server from the data directory) listening on
    ``main_port``; raises ``MembershipError`` if it is not in the seeds,
    ``RingRecordError`` if its saved ring is unreadable."""
    if not runs_bus(config):
        return None
    ring_store = ring_store_of(config)
    saved = ring_store.load()
    if saved is None:
        membership = static_membership(config, main_port)
    else:
        # A restart: the saved ring, not the seeds (which may be out of date).
        myself = myself_of(config, main_port)
        membership = StaticMembership(myself, saved)
        log.info("cluster ring epoch %d loaded from %s (--cluster-seeds are not used)", saved.epoch, config.data_dir)
        if myself not in saved.members:
            log.warning("this node (%s) is not a member of its saved ring epoch %d: it was removed", myself.address, saved.epoch)
    return ClusterStart(ClusterNode(config, membership, node_id, ring_store=ring_store))


def ring_store_of(config: Config) -> RingStore:
    """The ring's store: a file in the data directory with the log on; in
    memory for a memory-only node (whose node id is new at every start, so
    it rejoins as a new node, from its seeds)."""
    return FileRingStore(config.data_dir) if config.appendonly else MemoryRingStore()
