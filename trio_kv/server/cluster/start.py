"""Before the cluster runs: whether it runs at all, its bus port, its
membership and this node's id.

The bus runs only with ``--cluster-enabled yes`` *and* ``--cluster-seeds``
(a cluster of several nodes): a one-node (emulated) cluster has nobody to
talk to, opens no bus port, and so still starts with ``--port 0``.

``prepare_cluster`` refuses a start where this node is not in the seed
list (``cluster.seeds.MembershipError``, one sentence for the command
line) and reads the node id from the data directory's ``node-id`` file
(created at first start; a memory-only node, ``--appendonly no``, gets a
fresh id each start).
"""

from __future__ import annotations

from dataclasses import dataclass

import trio

from ...cluster.ring import BUS_PORT_OFFSET
from ...cluster.seeds import static_membership
from ...config import Config
from ...store.durability.node_id import load_or_create_node_id, new_node_id
from .node import ClusterNode


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


async def prepare_cluster(config: Config, main_port: int, disk: trio.CapacityLimiter) -> ClusterStart | None:
    if not runs_bus(config):
        return None
    membership = static_membership(config, main_port)
    if config.appendonly:
        node_id = await trio.to_thread.run_sync(load_or_create_node_id, config.data_dir, limiter=disk)
    else:
        node_id = new_node_id()
    return ClusterStart(ClusterNode(config, membership, node_id))
