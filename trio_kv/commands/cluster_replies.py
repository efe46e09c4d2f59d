"""CLUSTER SLOTS / SHARDS / NODES / INFO / REPLICAS, built from a
``ClusterView`` alone, in redis-server 7.0.15's shapes and field names.

Pure functions of the view (no store, no server): the same code answers a
one-node ("emulated") cluster and a static cluster of N members with
replicas; only the view differs.

How the ring is shown as Redis Cluster's model (``slot_ranges``):

* every partition's preference list, its live members first (the first
  live one is the range's primary: the node cluster clients send the key
  to), consecutive partitions with the same list merged into one range;
  a partition with no live member keeps its first member, shown failing;
* a member that is the primary of some range is a ``master`` (CLUSTER
  NODES lists its ranges); one that never is, is a ``slave`` of the primary
  of the first range it replicates (Redis' model has one master per
  replica; ours has one preference list per partition);
* CLUSTER SHARDS groups ranges by primary: its slots, then the primary and
  the replicas of any of its ranges.

Fields Redis shows but a view does not hold are constant: ping/pong times
0, replication offsets 0, bus message counters 0. Hosts are shown as the
view has them; an empty host is what a redis-server node that met no peer
shows (clients use the address they connected to).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..cluster.ring import BUS_PORT_OFFSET, Member
from ..cluster.slots import SLOT_COUNT
from ..cluster.view import ClusterView
from ..protocol.replies import Error, Map


@dataclass(frozen=True)
class SlotRange:
    # First and last slot, inclusive (as CLUSTER SLOTS).
    start: int
    end: int
    primary: Member
    # Live members after the primary, in preference order.
    replicas: tuple[Member, ...]


def slot_ranges(view: ClusterView) -> list[SlotRange]:
    """The ring as slot ranges, in slot order (see the module docstring)."""
    ring, up = view.ring, view.up
    ranges: list[SlotRange] = []
    for partition, members in enumerate(ring.preference_lists):
        live = [member for member in members if member in up]
        primary, replicas = (live[0], tuple(live[1:])) if live else (members[0], ())
        start, end = ring.slot_range(partition)
        last = ranges[-1] if ranges else None
        if last is not None and last.primary == primary and last.replicas == replicas and last.end + 1 == start:
            ranges[-1] = SlotRange(last.start, end, primary, replicas)
        else:
            ranges.append(SlotRange(start, end, primary, replicas))
    return ranges


def _node_id(view: ClusterView, member: Member) -> str:
    return view.node_ids[member]


def _masters_of(ranges: Iterable[SlotRange]) -> dict[Member, Member]:
    """Each replica that is never a primary -> the primary it is shown under."""
    primaries = {slot_range.primary for slot_range in ranges}
    masters: dict[Member, Member] = {}
    for slot_range in ranges:
        for replica in slot_range.replicas:
            if replica not in primaries:
                masters.setdefault(replica, slot_range.primary)
    return masters


def _slot_text(ranges: Iterable[SlotRange]) -> list[str]:
    return [str(r.start) if r.start == r.end else f"{r.start}-{r.end}" for r in ranges]


# --- CLUSTER SLOTS ---------------------------------------------------------


def _slots_node(view: ClusterView, member: Member) -> list[object]:
    # host, port, id, then a map of extra endpoints (hostname): none here.
    return [member.host.encode(), member.port, _node_id(view, member).encode(), Map([])]


def cluster_slots(view: ClusterView) -> list[object]:
    return [
        [slot_range.start, slot_range.end, *(_slots_node(view, m) for m in (slot_range.primary, *slot_range.replicas))]
        for slot_range in slot_ranges(view)
    ]


# --- CLUSTER SHARDS --------------------------------------------------------


def _shard_node(view: ClusterView, member: Member, role: bytes) -> Map:
    return Map(
        [
            (b"id", _node_id(view, member).encode()),
            (b"port", member.port),
            (b"ip", member.host.encode()),
            (b"endpoint", member.host.encode()),
            (b"role", role),
            (b"replication-offset", 0),
            (b"health", b"online" if member in view.up else b"fail"),
        ]
    )


def cluster_shards(view: ClusterView) -> list[object]:
    shards: dict[Member, tuple[list[int], list[Member]]] = {}
    for slot_range in slot_ranges(view):
        slots, replicas = shards.setdefault(slot_range.primary, ([], []))
        slots += [slot_range.start, slot_range.end]
        replicas += [member for member in slot_range.replicas if member not in replicas]
    return [
        Map(
            [
                (b"slots", slots),
                (
                    b"nodes",
                    [
                        _shard_node(view, primary, b"master"),
                        *(_shard_node(view, replica, b"replica") for replica in replicas),
                    ],
                ),
            ]
        )
        for primary, (slots, replicas) in shards.items()
    ]


# --- CLUSTER NODES / REPLICAS ---------------------------------------------


def _node_line(view: ClusterView, member: Member, ranges: list[SlotRange], masters: dict[Member, Member]) -> str:
    flags = []
    if member == view.myself:
        flags.append("myself")
    master = masters.get(member)
    flags.append("master" if master is None else "slave")
    up = member in view.up
    if not up:
        flags.append("fail?")
    fields = [
        _node_id(view, member),
        f"{member.host}:{member.port}@{member.port + BUS_PORT_OFFSET}",
        ",".join(flags),
        "-" if master is None else _node_id(view, master),
        "0",  # ping sent (ms)
        "0",  # pong received (ms)
        str(view.ring.epoch),  # config epoch
        "connected" if up else "disconnected",
    ]
    if master is None:
        fields += _slot_text(r for r in ranges if r.primary == member)
    return " ".join(fields) + "\n"


def is_master(view: ClusterView, member: Member) -> bool:
    """Whether ``member`` is shown as a master (the primary of some range)."""
    return member not in _masters_of(slot_ranges(view))


def cluster_nodes(view: ClusterView) -> str:
    """One line per member (Redis' format; each line ends with a newline)."""
    ranges = slot_ranges(view)
    masters = _masters_of(ranges)
    return "".join(_node_line(view, member, ranges, masters) for member in view.ring.members)


def member_by_id(view: ClusterView, node_id: bytes) -> Member | None:
    text = node_id.decode("utf-8", "replace")
    for member, known_id in view.node_ids.items():
        if known_id == text and member in view.ring.members:
            return member
    return None


def unknown_node(node_id: bytes) -> Error:
    return Error(f"ERR Unknown node {node_id.decode('utf-8', 'replace')}")


def cluster_replicas(view: ClusterView, node_id: bytes) -> list[object] | Error:
    """CLUSTER REPLICAS <id>: the CLUSTER NODES lines of the replicas
    shown under that master."""
    member = member_by_id(view, node_id)
    if member is None:
        return unknown_node(node_id)
    ranges = slot_ranges(view)
    masters = _masters_of(ranges)
    if member in masters:
        return Error("ERR The specified node is not a master")
    return [
        _node_line(view, replica, ranges, masters).rstrip("\n").encode()
        for replica in view.ring.members
        if masters.get(replica) == member
    ]


# --- CLUSTER INFO ----------------------------------------------------------


def cluster_info(view: ClusterView) -> str:
    """Redis' CLUSTER INFO fields (``\\r\\n`` after each). A slot is ok when a
    member of its preference list is up; ``pfail`` when none is (this
    node's opinion: nothing is ever agreed ``fail``)."""
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
        ("cluster_stats_messages_sent", 0),
        ("cluster_stats_messages_received", 0),
        ("total_cluster_links_buffer_limit_exceeded", 0),
    ]
    return "".join(f"{name}:{value}\r\n" for name, value in fields)
