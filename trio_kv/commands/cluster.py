"""CLUSTER: Redis Cluster's introspection, answered from the node's
``ClusterView`` (``session.control.cluster_view()``).

With cluster mode off (no view) every subcommand, HELP included, is
``-ERR This instance has cluster support disabled``, as redis-server 7.0
with ``cluster-enabled no``. Unknown subcommands and wrong argument counts
get the usual container errors first either way, as in Redis (its arity
check runs before the command).

With cluster mode on:

* SLOTS, SHARDS, NODES, INFO, REPLICAS/SLAVES: ``commands.cluster_replies``
  (pure functions of the view); MYID, KEYSLOT; LINKS: an empty list (what
  a redis-server node without peers answers; the bus does not report its
  links through the view yet).
* COUNTKEYSINSLOT reads the keyspace's per-slot count (kept only in
  cluster mode: ``Keyspace.keys_in_slot``); GETKEYSINSLOT walks the table
  in slices under the read lock (``commands/slicing.py``), keeping the keys
  of that slot, and stops once it has ``count`` of them or as many as the
  slot holds. It costs no memory per key (a per-slot index of keys would
  cost a set entry per key, about 50 bytes, on every node, for a command
  only resharding tools send); a call walks the table, in 3 ms slices, at
  about 0.5 us a key (unless the slot is empty: answered at once).
  Expired keys not yet removed are counted, as in Redis, but not listed.
* The slot map is computed from the members (``--cluster-seeds``), so the
  commands that change slots or membership (ADDSLOTS, MEET, SETSLOT,
  RESET, ...) answer ``ERR CLUSTER <NAME> is not supported ...`` after the
  argument checks Redis makes first; FAILOVER, FORGET, REPLICATE and
  COUNT-FAILURE-REPORTS answer Redis' own errors where Redis has one for
  the case (a master: every member is shown as one; myself; an unknown
  node); SAVECONFIG is OK (nothing
  to save).
"""

from __future__ import annotations

from collections.abc import Callable

from ..cluster.slots import SLOT_COUNT, key_slot
from ..cluster.view import ClusterView
from ..protocol.replies import OK, Error, SimpleString, Verbatim
from . import cluster_bus_info, cluster_replies
from .arguments import NOT_AN_INTEGER, SYNTAX_ERROR, parse_int64
from .container import Container, Subcommand
from .session import Session
from .slicing import KeysSlices
from .table import CommandSpec, Lock

CLUSTER_DISABLED = Error("ERR This instance has cluster support disabled")
INVALID_SLOT = Error("ERR Invalid slot")
INVALID_SLOT_OR_COUNT = Error("ERR Invalid slot or number of keys")

ViewHandler = Callable[[Session, list[bytes], ClusterView], object]


def cluster_disabled(session: Session, args: list[bytes]) -> Error:
    return CLUSTER_DISABLED


def _with_view(handler: ViewHandler) -> Callable[[Session, list[bytes]], object]:
    def run(session: Session, args: list[bytes]) -> object:
        view = session.control.cluster_view()
        if view is None:
            return CLUSTER_DISABLED
        return handler(session, args, view)

    return run


def _not_supported(args: list[bytes]) -> Error:
    name = args[1].decode("utf-8", "replace").upper()
    return Error(f"ERR CLUSTER {name} is not supported: trio_kv computes the slot map from --cluster-seeds")


# --- the subcommands (cluster mode on) ---------------------------------------


def _slots(session: Session, args: list[bytes], view: ClusterView) -> object:
    return cluster_replies.cluster_slots(view)


def _shards(session: Session, args: list[bytes], view: ClusterView) -> object:
    return cluster_replies.cluster_shards(view)


def _nodes(session: Session, args: list[bytes], view: ClusterView) -> object:
    return Verbatim("txt", cluster_replies.cluster_nodes(view).encode())


def _info(session: Session, args: list[bytes], view: ClusterView) -> object:
    messages = cluster_bus_info.message_counts(session.control.cluster_bus_status())
    return Verbatim("txt", cluster_replies.cluster_info(view, messages).encode())


def _myid(session: Session, args: list[bytes], view: ClusterView) -> object:
    return view.my_id.encode()


def _links(session: Session, args: list[bytes], view: ClusterView) -> object:
    return cluster_bus_info.cluster_links(session.control.cluster_bus_status())


def _keyslot(session: Session, args: list[bytes], view: ClusterView) -> object:
    return key_slot(args[2])


def _countkeysinslot(session: Session, args: list[bytes], view: ClusterView) -> object:
    slot = parse_int64(args[2])
    if slot is None:
        return NOT_AN_INTEGER
    if not 0 <= slot < SLOT_COUNT:
        return INVALID_SLOT
    return session.keyspace.keys_in_slot(slot)


def _getkeysinslot(session: Session, args: list[bytes], view: ClusterView) -> object:
    slot, count = parse_int64(args[2]), parse_int64(args[3])
    if slot is None or count is None:
        return NOT_AN_INTEGER
    if not 0 <= slot < SLOT_COUNT or count < 0:
        return INVALID_SLOT_OR_COUNT
    wanted = min(count, session.keyspace.keys_in_slot(slot))
    if not wanted:
        return []
    return KeysSlices(
        session.keyspace,
        lambda key: key_slot(key) == slot,
        max_keys=wanted,
        make_reply=lambda keys, cursor: keys[:wanted],
    )


def _replicas(session: Session, args: list[bytes], view: ClusterView) -> object:
    return cluster_replies.cluster_replicas(view, args[2])


def _count_failure_reports(session: Session, args: list[bytes], view: ClusterView) -> object:
    if cluster_replies.member_by_id(view, args[2]) is None:
        return cluster_replies.unknown_node(args[2])
    return 0


def _too_many_arguments(args: list[bytes]) -> Error:
    # Redis' addReplySubcommandSyntaxError, for FAILOVER and RESET.
    name = args[1].decode("utf-8", "replace")[:128]
    return Error(f"ERR unknown subcommand or wrong number of arguments for '{name}'. Try CLUSTER HELP.")


def _failover(session: Session, args: list[bytes], view: ClusterView) -> object:
    if len(args) > 3:
        return _too_many_arguments(args)
    if len(args) == 3 and args[2].lower() not in (b"force", b"takeover"):
        return SYNTAX_ERROR
    # Every member is shown as a master (commands.cluster_replies).
    return Error("ERR You should send CLUSTER FAILOVER to a replica")


def _forget(session: Session, args: list[bytes], view: ClusterView) -> object:
    member = cluster_replies.member_by_id(view, args[2])
    if member is None:
        return cluster_replies.unknown_node(args[2])
    if member == view.myself:
        return Error("ERR I tried hard but I can't forget myself...")
    return _not_supported(args)


def _replicate(session: Session, args: list[bytes], view: ClusterView) -> object:
    member = cluster_replies.member_by_id(view, args[2])
    if member is None:
        return cluster_replies.unknown_node(args[2])
    if member == view.myself:
        return Error("ERR Can't replicate myself")
    return _not_supported(args)


def _reset(session: Session, args: list[bytes], view: ClusterView) -> object:
    if len(args) > 3:
        return _too_many_arguments(args)
    if len(args) == 3 and args[2].lower() not in (b"hard", b"soft"):
        return SYNTAX_ERROR
    return _not_supported(args)


def _saveconfig(session: Session, args: list[bytes], view: ClusterView) -> object:
    return OK


def _unsupported(session: Session, args: list[bytes], view: ClusterView) -> object:
    return _not_supported(args)


# Redis 7.0.15's CLUSTER HELP, line for line.
HELP_LINES = [
    "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ADDSLOTS <slot> [<slot> ...]",
    "    Assign slots to current node.",
    "ADDSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Assign slots which are between <start-slot> and <end-slot> to current node.",
    "BUMPEPOCH",
    "    Advance the cluster config epoch.",
    "COUNT-FAILURE-REPORTS <node-id>",
    "    Return number of failure reports for <node-id>.",
    "COUNTKEYSINSLOT <slot>",
    "    Return the number of keys in <slot>.",
    "DELSLOTS <slot> [<slot> ...]",
    "    Delete slots information from current node.",
    "DELSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Delete slots information which are between <start-slot> and <end-slot> from current node.",
    "FAILOVER [FORCE|TAKEOVER]",
    "    Promote current replica node to being a master.",
    "FORGET <node-id>",
    "    Remove a node from the cluster.",
    "GETKEYSINSLOT <slot> <count>",
    "    Return key names stored by current node in a slot.",
    "FLUSHSLOTS",
    "    Delete current node own slots information.",
    "INFO",
    "    Return information about the cluster.",
    "KEYSLOT <key>",
    "    Return the hash slot for <key>.",
    "MEET <ip> <port> [<bus-port>]",
    "    Connect nodes into a working cluster.",
    "MYID",
    "    Return the node id.",
    "NODES",
    "    Return cluster configuration seen by node. Output format:",
    "    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
    "REPLICATE <node-id>",
    "    Configure current node as replica to <node-id>.",
    "RESET [HARD|SOFT]",
    "    Reset current node (default: soft).",
    "SET-CONFIG-EPOCH <epoch>",
    "    Set config epoch of current node.",
    "SETSLOT <slot> (IMPORTING <node-id>|MIGRATING <node-id>|STABLE|NODE <node-id>)",
    "    Set slot state.",
    "REPLICAS <node-id>",
    "    Return <node-id> replicas.",
    "SAVECONFIG",
    "    Force saving cluster configuration on disk.",
    "SLOTS",
    "    Return information about slots range mappings. Each range is made of:",
    "    start, end, master and replicas IP addresses, ports and ids",
    "SHARDS",
    "    Return information about slot range mappings and the nodes associated with them.",
    "LINKS",
    "    Return information about all network links between this node and its peers.",
    "    Output format is an array where each array element is a map containing attributes of a link",
    "HELP",
    "    Prints this help.",
]


class ClusterContainer(Container):
    """CLUSTER HELP: Redis' help text with cluster mode on, the disabled
    error with it off."""

    def _help(self, session: Session, args: list[bytes]) -> list[SimpleString] | Error:
        if session.control.cluster_view() is None:
            return CLUSTER_DISABLED
        return [SimpleString(line) for line in HELP_LINES]


_ADMIN = ("admin", "stale", "no_async_loading")
_STALE = ("stale",)
_ADMIN_STALE = ("admin", "stale")
# Redis 7.0's CLUSTER subcommands: name, arity, flags, summary, since, handler.
# All run under the read lock.
_SUBCOMMANDS: list[tuple[str, int, tuple[str, ...], str, str, ViewHandler]] = [
    ("addslots", -3, _ADMIN, "Assign new hash slots to receiving node", "3.0.0", _unsupported),
    ("addslotsrange", -4, _ADMIN, "Assign new hash slots to receiving node", "7.0.0", _unsupported),
    ("bumpepoch", 2, _ADMIN, "Advance the cluster config epoch", "3.0.0", _unsupported),
    (
        "count-failure-reports", 3, _ADMIN_STALE, "Return the number of failure reports active for a given node",
        "3.0.0", _count_failure_reports,
    ),
    (
        "countkeysinslot", 3, _STALE, "Return the number of local keys in the specified hash slot", "3.0.0",
        _countkeysinslot,
    ),
    ("delslots", -3, _ADMIN, "Set hash slots as unbound in receiving node", "3.0.0", _unsupported),
    ("delslotsrange", -4, _ADMIN, "Set hash slots as unbound in receiving node", "7.0.0", _unsupported),
    ("failover", -2, _ADMIN, "Forces a replica to perform a manual failover of its master.", "3.0.0", _failover),
    ("flushslots", 2, _ADMIN, "Delete a node's own slots information", "3.0.0", _unsupported),
    ("forget", 3, _ADMIN, "Remove a node from the nodes table", "3.0.0", _forget),
    (
        "getkeysinslot", 4, _STALE, "Return local key names in the specified hash slot", "3.0.0",
        _getkeysinslot,
    ),
    ("info", 2, _STALE, "Provides info about Redis Cluster node state", "3.0.0", _info),
    ("keyslot", 3, _STALE, "Returns the hash slot of the specified key", "3.0.0", _keyslot),
    ("links", 2, _STALE, "Returns a list of all TCP links to and from peer nodes in cluster", "7.0.0", _links),
    ("meet", -4, _ADMIN, "Force a node cluster to handshake with another node", "3.0.0", _unsupported),
    ("myid", 2, _STALE, "Return the node id", "3.0.0", _myid),
    ("nodes", 2, _STALE, "Get Cluster config for the node", "3.0.0", _nodes),
    ("replicas", 3, _ADMIN_STALE, "List replica nodes of the specified master node", "5.0.0", _replicas),
    (
        "replicate", 3, _ADMIN, "Reconfigure a node as a replica of the specified master node", "3.0.0",
        _replicate,
    ),
    ("reset", -2, ("admin", "noscript", "stale"), "Reset a Redis Cluster node", "3.0.0", _reset),
    ("saveconfig", 2, _ADMIN, "Forces the node to save cluster state on disk", "3.0.0", _saveconfig),
    ("set-config-epoch", 3, _ADMIN, "Set the configuration epoch in a new node", "3.0.0", _unsupported),
    ("setslot", -4, _ADMIN, "Bind a hash slot to a specific node", "3.0.0", _unsupported),
    ("shards", 2, _STALE, "Get array of cluster slots to node mappings", "7.0.0", _shards),
    ("slaves", 3, _ADMIN_STALE, "List replica nodes of the specified master node", "3.0.0", _replicas),
    ("slots", 2, _STALE, "Get array of Cluster slot to node mappings", "3.0.0", _slots),
]

CLUSTER = ClusterContainer(
    "cluster",
    [
        Subcommand(
            name=name, arity=arity, lock=Lock.READ, flags=flags, usage=name.upper(),
            summary=summary, handler=_with_view(handler), since=since,
        )
        for name, arity, flags, summary, since, handler in _SUBCOMMANDS
    ],
)

SPECS: list[CommandSpec] = [
    CommandSpec(
        name="cluster", arity=-2, lock=Lock.READ, since="3.0.0", group="cluster", handler=CLUSTER,
        may_slice=True, summary="A container for cluster commands.",
    ),
]
