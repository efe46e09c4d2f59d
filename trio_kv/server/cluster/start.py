"""Before the cluster runs: whether it runs at all, its bus port, its
membership and this node's id.

The bus runs only with ``--cluster-enabled yes`` *and* ``--cluster-seeds``
(a cluster of several nodes): a one-node (emulated) cluster has nobody to
talk to, opens no bus port, and so still starts with ``--port 0``.

``prepare_cluster`` refuses a start where this node is not in the seed
list (``cluster.seeds.MembershipError``, one sentence for the command
line). The node id comes from the server (``server.lifecycle._node_id``:
the data directory's ``node-id`` file, created at first start; a fresh id
with ``--appendonly no``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...cluster.ring import BUS_PORT_OFFSET
from ...cluster.seeds import static_membership
from ...config import Config
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


def prepare_cluster(config: Config, main_port: int, node_id: str) -> ClusterStart | None:
    """The node of a multi-node cluster (None: no bus), this node being
    ``node_id`` (read by the server from the data directory) listening on
    ``main_port``; raises ``MembershipError`` if it is not in the seeds."""
    if not runs_bus(config):
        return None
    return ClusterStart(ClusterNode(config, static_membership(config, main_port), node_id))
