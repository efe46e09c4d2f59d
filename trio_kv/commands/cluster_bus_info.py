"""INFO cluster's cluster bus fields (only while the bus runs, so a single
node's INFO is unchanged): the ring epoch and hash, each member, and each
peer link's state and traffic, in Redis' ``name:key=value,...`` shape (as
its ``slave0:`` lines). ``trio-kv cluster status`` reads them back.

    cluster_bus_epoch:1
    cluster_bus_ring_hash:1f0c...
    cluster_bus_myself:127.0.0.11:7001
    cluster_bus_members:3
    cluster_bus_members_up:3
    cluster_bus_member0:address=127.0.0.11:7001,node_id=...,up=1
    cluster_bus_link0:peer=127.0.0.12:7001,node_id=...,state=connected,up=1,queued=0,in_flight=0,
        sent_bytes=...,received_bytes=...,sent_messages=...,received_messages=...,late_replies=0,
        connections=1,connected_since=1765098000,ping_rtt_us=412
"""

from __future__ import annotations

from collections.abc import Mapping

_LINK_COUNTERS = (
    "queued", "in_flight", "sent_bytes", "received_bytes", "sent_messages", "received_messages",
    "late_replies", "connections",
)


def bus_info_fields(status: Mapping[str, object] | None) -> list[tuple[str, object]]:
    if status is None:
        return []
    members = status["members"]
    links = status["links"]
    assert isinstance(members, list) and isinstance(links, list)
    fields: list[tuple[str, object]] = [
        ("cluster_bus_epoch", status["epoch"]),
        ("cluster_bus_ring_hash", status["ring_hash"]),
        ("cluster_bus_myself", status["myself"]),
        ("cluster_bus_members", len(members)),
        ("cluster_bus_members_up", sum(1 for member in members if member[2])),
    ]
    for index, (address, node_id, up) in enumerate(members):
        fields.append((f"cluster_bus_member{index}", f"address={address},node_id={node_id},up={int(up)}"))
    for index, link in enumerate(links):
        rtt = link["last_ping_rtt_seconds"]
        since = link["connected_since_s"]
        parts = [f"peer={link['peer']}", f"node_id={link['node_id'] or '-'}", f"state={link['state']}",
                 f"up={int(bool(link['up']))}"]
        parts += [f"{name}={link[name]}" for name in _LINK_COUNTERS]
        parts.append(f"connected_since={int(since) if isinstance(since, (int, float)) else 0}")
        parts.append(f"ping_rtt_us={int(rtt * 1_000_000) if isinstance(rtt, (int, float)) else -1}")
        fields.append((f"cluster_bus_link{index}", ",".join(parts)))
    return fields
