"""CLUSTER: answered as redis-server 7.0 answers with cluster support
disabled (``cluster-enabled no``, the default): every subcommand, HELP
included, is ``-ERR This instance has cluster support disabled``.

trio_kv is one node with one database; cluster-aware clients send
``CLUSTER INFO`` / ``CLUSTER SLOTS`` to find out, and COMMAND LIST lists
``cluster|...`` as Redis does. Unknown subcommands and wrong argument counts
get the usual container errors first, as in Redis (its arity check runs
before the command).
"""

from __future__ import annotations

from ..protocol.replies import Error
from .container import Container, Subcommand
from .session import Session
from .table import CommandSpec, Lock

CLUSTER_DISABLED = Error("ERR This instance has cluster support disabled")


def cluster_disabled(session: Session, args: list[bytes]) -> Error:
    return CLUSTER_DISABLED


class DisabledCluster(Container):
    """CLUSTER HELP answers the same error as every other subcommand."""

    def _help(self, session: Session, args: list[bytes]) -> Error:
        return CLUSTER_DISABLED


_ADMIN = ("admin", "stale", "no_async_loading")
_STALE = ("stale",)
_ADMIN_STALE = ("admin", "stale")
# Redis 7.0's CLUSTER subcommands: name, arity, flags, summary, since. All
# answer an error, under the read lock.
_SUBCOMMANDS = [
    ("addslots", -3, _ADMIN, "Assign new hash slots to receiving node", "3.0.0"),
    ("addslotsrange", -4, _ADMIN, "Assign new hash slots to receiving node", "7.0.0"),
    ("bumpepoch", 2, _ADMIN, "Advance the cluster config epoch", "3.0.0"),
    (
        "count-failure-reports", 3, _ADMIN_STALE, "Return the number of failure reports active for a given node",
        "3.0.0",
    ),
    ("countkeysinslot", 3, _STALE, "Return the number of local keys in the specified hash slot", "3.0.0"),
    ("delslots", -3, _ADMIN, "Set hash slots as unbound in receiving node", "3.0.0"),
    ("delslotsrange", -4, _ADMIN, "Set hash slots as unbound in receiving node", "7.0.0"),
    ("failover", -2, _ADMIN, "Forces a replica to perform a manual failover of its master.", "3.0.0"),
    ("flushslots", 2, _ADMIN, "Delete a node's own slots information", "3.0.0"),
    ("forget", 3, _ADMIN, "Remove a node from the nodes table", "3.0.0"),
    ("getkeysinslot", 4, _STALE, "Return local key names in the specified hash slot", "3.0.0"),
    ("info", 2, _STALE, "Provides info about Redis Cluster node state", "3.0.0"),
    ("keyslot", 3, _STALE, "Returns the hash slot of the specified key", "3.0.0"),
    ("links", 2, _STALE, "Returns a list of all TCP links to and from peer nodes in cluster", "7.0.0"),
    ("meet", -4, _ADMIN, "Force a node cluster to handshake with another node", "3.0.0"),
    ("myid", 2, _STALE, "Return the node id", "3.0.0"),
    ("nodes", 2, _STALE, "Get Cluster config for the node", "3.0.0"),
    ("replicas", 3, _ADMIN_STALE, "List replica nodes of the specified master node", "5.0.0"),
    ("replicate", 3, _ADMIN, "Reconfigure a node as a replica of the specified master node", "3.0.0"),
    ("reset", -2, ("admin", "noscript", "stale"), "Reset a Redis Cluster node", "3.0.0"),
    ("saveconfig", 2, _ADMIN, "Forces the node to save cluster state on disk", "3.0.0"),
    ("set-config-epoch", 3, _ADMIN, "Set the configuration epoch in a new node", "3.0.0"),
    ("setslot", -4, _ADMIN, "Bind a hash slot to a specific node", "3.0.0"),
    ("shards", 2, _STALE, "Get array of cluster slots to node mappings", "7.0.0"),
    ("slaves", 3, _ADMIN_STALE, "List replica nodes of the specified master node", "3.0.0"),
    ("slots", 2, _STALE, "Get array of Cluster slot to node mappings", "3.0.0"),
]

CLUSTER = DisabledCluster(
    "cluster",
    [
        Subcommand(
            name=name, arity=arity, lock=Lock.READ, flags=flags, usage=name.upper(),
            summary=summary + " (cluster support is disabled).", handler=cluster_disabled, since=since,
        )
        for name, arity, flags, summary, since in _SUBCOMMANDS
    ],
)

SPECS: list[CommandSpec] = [
    CommandSpec(
        name="cluster", arity=-2, lock=Lock.READ, since="3.0.0", group="cluster", handler=CLUSTER,
        summary="A container for cluster commands.",
    ),
]
