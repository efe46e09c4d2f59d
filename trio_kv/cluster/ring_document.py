"""The ring as a document: what ``TKV.RING`` returns and what every node
hashes to tell whether a peer computed the same ring.

``ring_hash`` covers the members, the partition count, every
preference list and a staged change's next ring (so it also differs when two nodes run different claim
functions), not the epoch: the epoch travels beside it in ``TKV.PING``.
Pure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from ..protocol.replies import Map
from .ring import Member, Ring


def ring_hash(ring: Ring) -> str:
    """16 hex characters, equal on every node that computed the same ring."""
    text = "|".join([
        str(ring.partition_count),
        ",".join(member.address for member in ring.members),
        ";".join(",".join(member.address for member in preference) for preference in ring.preference_lists),
        *(
            # A staged change: the ring it leads to (absent when final, so a final ring hashes as before).
            ["next", ",".join(member.address for member in ring.next_members),
             ";".join(",".join(member.address for member in chosen) for chosen in ring.next_lists)]
            if ring.staged else []
        ),
    ])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def ring_document(ring: Ring, node_ids: Mapping[Member, str], up: frozenset[Member]) -> Map:
    """The ring for ``TKV.RING`` (a flat array in RESP2): epoch, hash,
    partitions, replicas, members (address, node id, up or down) and each
    partition's first and last slot and preference list; while a change is
    staged, each partition's pending members and the next ring's members."""
    replicas = len(ring.preference_lists[0]) if ring.preference_lists else 0
    members = [
        [member.address.encode(), node_ids.get(member, "").encode(), b"up" if member in up else b"down"]
        for member in ring.members
    ]
    partitions = []
    for partition, preference in enumerate(ring.preference_lists):
        first, last = ring.slot_range(partition)
        partitions.append([partition, first, last, [member.address.encode() for member in preference]])
    fields: list[tuple[bytes, object]] = [
        (b"epoch", ring.epoch),
        (b"hash", ring_hash(ring).encode()),
        (b"partitions", ring.partition_count),
        (b"replicas", replicas),
        (b"members", members),
        (b"preference_lists", partitions),
    ]
    if ring.staged:
        # A staged change: each partition's members written to but not read yet.
        fields.append((b"pending", [
            [partition, [member.address.encode() for member in ring.pending(partition)]]
            for partition in range(ring.partition_count) if ring.pending(partition)
        ]))
        fields.append((b"next_members", [member.address.encode() for member in ring.next_members]))
    return Map(fields)
