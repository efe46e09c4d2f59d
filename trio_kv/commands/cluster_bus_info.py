"""INFO cluster's cluster bus fields (only while the bus runs, so a single
node's INFO is unchanged): the ring epoch and hash, each member, and each
peer link's state and traffic, in Redis' ``name:key=value,...`` shape (as
its ``slave0:`` lines). ``trio-kv cluster status`` reads them back.

    cluster_bus_epoch:1
    cluster_bus_ring_hash:1f0c...
    cluster_bus_ring_state:final (staged, leaving, removed: node.ring_state)
    cluster_bus_myself:127.0.0.11:7001
    cluster_bus_members:3
    cluster_bus_members_up:3
    cluster_bus_member0:address=127.0.0.11:7001,node_id=...,up=1
    cluster_bus_link0:peer=127.0.0.12:7001,node_id=...,state=connected,up=1,queued=0,in_flight=0,
        sent_bytes=...,received_bytes=...,sent_messages=...,received_messages=...,late_replies=0,
        connections=1,connected_since=1765098000,ping_rtt_us=412,oldest_request_age_us=0
    cluster_writes_ok:10 (and writes_noreplicas, reads_ok, reads_noreplicas,
        reads_repaired, forwarded, forward_failed, refused: the coordinator's)
    cluster_aae_rounds:12 (and rounds_failed, rounds_limited, partitions_compared,
        partitions_differing, segments_compared, segments_differing, keys_compared, keys_differing,
        keys_repaired, roots_requests, segments_requests, keys_requests,
        repair_requests, rate_waits, reap_rounds, partitions_waiting, tombstones_confirmed,
        tombstones_purged, reap_failed: anti-entropy's and its tombstone reaper's, while they run)
    cluster_aae_peer0:peer=127.0.0.12:7001,rounds=12,failed=0,keys_repaired=100,
        last_exchange_unix_ms=1765098000123,last_ok=1,last_repaired=0,last_partitions_differing=0
    cluster_moves_pending:0 (and streaming, done, keys_copied: the partition
        copies this node makes after ring changes)

``oldest_request_age_us`` is how long the oldest unanswered request to the
peer has waited (queued or in flight; 0 when none): the peer's lag.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..protocol.replies import Map

_LINK_COUNTERS = (
    "queued", "in_flight", "sent_bytes", "received_bytes", "sent_messages", "received_messages",
    "late_replies", "connections",
)


def message_counts(status: Mapping[str, object] | None) -> tuple[int, int]:
    """Requests sent and replies received over every peer link (CLUSTER
    INFO's ``cluster_stats_messages_sent`` / ``_received``)."""
    if status is None:
        return 0, 0
    links = status["links"]
    assert isinstance(links, list)
    return sum(link["sent_messages"] for link in links), sum(link["received_messages"] for link in links)


def cluster_links(status: Mapping[str, object] | None) -> list[Map]:
    """CLUSTER LINKS as Redis 7 shapes it, one entry per connected outbound
    link (direction ``to``): node id, when the connection was made (ms),
    events ``r`` (the reader always waits for input, as on an idle Redis
    link), and the bytes waiting to be sent (allocated = used: the queue
    holds encoded requests, nothing more). Inbound links are not listed."""
    if status is None:
        return []
    links = status["links"]
    assert isinstance(links, list)
    return [
        Map([
            (b"direction", b"to"),
            (b"node", str(link["node_id"]).encode()),
            (b"create-time", int(link["connected_since_s"] * 1000)),
            (b"events", b"r"),
            (b"send-buffer-allocated", link["queued_bytes"]),
            (b"send-buffer-used", link["queued_bytes"]),
        ])
        for link in links
        if link["state"] == "connected" and link["connected_since_s"] is not None
    ]


def bus_info_fields(status: Mapping[str, object] | None) -> list[tuple[str, object]]:
    if status is None:
        return []
    members = status["members"]
    links = status["links"]
    assert isinstance(members, list) and isinstance(links, list)
    fields: list[tuple[str, object]] = [
        ("cluster_bus_epoch", status["epoch"]),
        ("cluster_bus_ring_hash", status["ring_hash"]),
        # final, staged (a change under way), leaving (a staged change removes
        # this node) or removed (not a member: it serves no partition).
        ("cluster_bus_ring_state", status.get("ring_state", "final")),
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
        age = link.get("oldest_request_age_seconds")
        parts.append(f"oldest_request_age_us={int(age * 1_000_000) if isinstance(age, (int, float)) else 0}")
        fields.append((f"cluster_bus_link{index}", ",".join(parts)))
    data_path = status.get("data_path") or {}
    assert isinstance(data_path, Mapping)
    # The coordinator's quorum outcomes (server/cluster/coordinator.py).
    for name, count in data_path.items():
        fields.append((f"cluster_{name}", count))
    anti_entropy = status.get("anti_entropy") or {}
    assert isinstance(anti_entropy, Mapping)
    # Anti-entropy's rounds and repairs (server/cluster/anti_entropy.py).
    for name, count in anti_entropy.items():
        fields.append((f"cluster_aae_{name}", count))
    moves = status.get("moves") or {}
    assert isinstance(moves, Mapping)
    # Partition moves after ring changes (server/cluster/moves.py).
    for name, count in moves.items():
        fields.append((f"cluster_moves_{name}", count))
    peers = status.get("anti_entropy_peers") or []
    assert isinstance(peers, list)
    # Anti-entropy with each peer: its last exchange and totals.
    for index, progress in enumerate(peers):
        fields.append((f"cluster_aae_peer{index}", ",".join(f"{name}={value}" for name, value in progress.items())))
    hints = status.get("hints") or {}
    assert isinstance(hints, Mapping)
    # Hinted handoff's counters and pending hints per target (server/cluster/hints.py).
    for name, count in hints.items():
        fields.append((f"cluster_hints_{name}", count))
    pending = status.get("hints_pending") or []
    assert isinstance(pending, list)
    for index, (target, (records, size)) in enumerate(pending):
        fields.append((f"cluster_hints_target{index}", f"target={target},records={records},bytes={size}"))
    return fields
