"""CLUSTER SLOTS / SHARDS / NODES / INFO / REPLICAS, built from a
``ClusterView`` alone, in redis-server 7.0.15's shapes and field names.

Pure functions of the view (no store, no server): the same code answers a
one-node ("emulated") cluster and a static cluster of N members with
replicas; only the view differs.

How the ring is shown as Redis Cluster's model is ``cluster.publish``'s
decision (its docstring says why): sorted, merged slot ranges, each naming
one node, the first live member of its preference list; replicas are not
listed. Hence every member is a ``master`` here: those that are some
range's primary with their ranges, the others (a member down, or first
for no partition) with none, as a redis-server master without slots.
CLUSTER SHARDS has one shard per master, its slots (maybe none) and its
one node; CLUSTER REPLICAS of a known node is empty.

Fields Redis shows but a view does not hold are constant: ping/pong times
0, replication offsets 0, bus message counters 0. Hosts are shown as the
view has them; an empty host is what a redis-server node that met no peer
shows (clients use the address they connected to).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..cluster.publish import SlotRange, publish
from ..cluster.ring import BUS_PORT_OFFSET, Member
from ..cluster.slots import SLOT_COUNT
from ..cluster.view import ClusterView
from ..protocol.replies import Error, Map


def slot_ranges(view: ClusterView) -> tuple[SlotRange, ...]:
    """The ring as published slot ranges (``cluster.publish``)."""
    return publish(view.ring, view.up)


def _node_id(view: ClusterView, member: Member) -> str:
    return view.node_ids[member]


def _slot_text(ranges: Iterable[SlotRange]) -> list[str]:
    return [str(r.start) if r.start == r.end else f"{r.start}-{r.end}" for r in ranges]


# --- CLUSTER SLOTS ---------------------------------------------------------


def _slots_node(view: ClusterView, member: Member) -> list[object]:
    # host, port, id, then a map of extra endpoints (hostname): none here.
    return [member.host.encode(), member.port, _node_id(view, member).encode(), Map([])]


def cluster_slots(view: ClusterView) -> list[object]:
    return [
        [slot_range.start, slot_range.end, *(_slots_node(view, member) for member in slot_range.nodes)]
        for slot_range in slot_ranges(view)
    ]


# --- CLUSTER SHARDS --------------------------------------------------------


def _shard_node(view: ClusterView, member: Member) -> Map:
    return Map(
        [
            (b"id", _node_id(view, member).encode()),
            (b"port", member.port),
            (b"ip", member.host.encode()),
            (b"endpoint", member.host.encode()),
            (b"role", b"master"),
            (b"replication-offset", 0),
            (b"health", b"online" if member in view.up else b"fail"),
        ]
    )


def _ranges_by_member(view: ClusterView) -> dict[Member, list[SlotRange]]:
    """Every member (ring order) -> the ranges it is published for (maybe none)."""
    owned: dict[Member, list[SlotRange]] = {member: [] for member in view.ring.members}
    for slot_range in slot_ranges(view):
        owned[slot_range.primary].append(slot_range)
    return owned


def cluster_shards(view: ClusterView) -> list[object]:
    """One shard per master (every member), its slots as a flat list of
    first, last pairs, and its one node."""
    return [
        Map(
            [
                (b"slots", [bound for r in ranges for bound in (r.start, r.end)]),
                (b"nodes", [_shard_node(view, member)]),
            ]
        )
        for member, ranges in _ranges_by_member(view).items()
    ]


# --- CLUSTER NODES / REPLICAS ---------------------------------------------


def _node_line(view: ClusterView, member: Member, ranges: list[SlotRange]) -> str:
    up = member in view.up
    flags = ("myself," if member == view.myself else "") + "master" + ("" if up else ",fail?")
    fields = [
        _node_id(view, member),
        f"{member.host}:{member.port}@{member.port + BUS_PORT_OFFSET}",
        flags,
        "-",  # the master it replicates: none
        "0",  # ping sent (ms)
        "0",  # pong received (ms)
        str(view.ring.epoch),  # config epoch
        "connected" if up else "disconnected",
        *_slot_text(ranges),
    ]
    return " ".join(fields) + "\n"


def cluster_nodes(view: ClusterView) -> str:
    """One line per member (Redis' format; each line ends with a newline)."""
    return "".join(_node_line(view, member, ranges) for member, ranges in _ranges_by_member(view).items())


def member_by_id(view: ClusterView, node_id: bytes) -> Member | None:
    text = node_id.decode("utf-8", "replace")
    for member, known_id in view.node_ids.items():
        if known_id == text and member in view.ring.members:
            return member
    return None


def unknown_node(node_id: bytes) -> Error:
    return Error(f"ERR Unknown node {node_id.decode('utf-8', 'replace')}")


def cluster_replicas(view: ClusterView, node_id: bytes) -> list[object] | Error:
    """CLUSTER REPLICAS <id>: no member is shown as a replica, so a known
    node has none."""
    if member_by_id(view, node_id) is None:
        return unknown_node(node_id)
    return []


# --- CLUSTER INFO ----------------------------------------------------------


def cluster_info(view: ClusterView, messages: tuple[int, int] = (0, 0)) -> str:
    """Redis' CLUSTER INFO fields (``\\r\\n`` after each). A slot is ok when
    its published node is up (a member of its preference list is);
    ``pfail`` when none is (this node's opinion: nothing is ever agreed
    ``fail``). ``messages``: bus requests sent and replies received over
    every peer link (``cluster_bus_info.message_counts``)."""
    ranges = slot_ranges(view)
    slots_ok = sum(r.end - r.start + 1 for r in ranges if r.primary in view.up)
    fields: list[tuple[str, object]] = [
        ("cluster_state", "ok" if slots_ok == SLOT_COUNT else "fail"),
        ("cluster_slots_assigned", SLOT_COUNT),
        ("cluster_slots_ok", slots_ok),
        ("cluster_slots_pfail", SLOT_COUNT - slots_ok),
        ("cluster_slots_fail", 0),
        ("cluster_known_nodes", len(view.ring.members)),
        ("cluster_size", len({r.primary for r in ranges})),
        ("cluster_current_epoch", view.ring.epoch),
        ("cluster_my_epoch", view.ring.epoch),
        ("cluster_stats_messages_sent", messages[0]),
        ("cluster_stats_messages_received", messages[1]),
        ("total_cluster_links_buffer_limit_exceeded", 0),
    ]
    return "".join(f"{name}:{value}\r\n" for name, value in fields)
