"""Keyless commands in a multi-node cluster see only the partitions this
node is published first for (``cluster.publish.FirstFor``): SCAN, KEYS,
DBSIZE, RANDOMKEY, FLUSHDB and FLUSHALL.

Cluster clients send these to every published primary (redis-py's
``scan_iter``, ``keys``, ``dbsize``, ``flushdb``; ``redis-cli --cluster
call``), and every node holds N partitions' keys, so a node answering
for all its keys would show each key N times. With the one-node cluster
(and with cluster mode off) a node is first for everything and nothing
here filters (``covering`` answers None).

FLUSHDB and FLUSHALL mean the same in cluster mode: delete the keys of the
partitions this node is first for, each as a tombstone that the
coordinator replicates to the key's other replicas. A client that sends
either to every primary (as redis-py does) empties the whole cluster
once; sent to one node it empties that node's share. Deleting key by key
is O(keys of the share) under the write lock in one unit, unsliced.

Pure code: no trio, sockets or threads.
"""

from __future__ import annotations

from ..cluster.publish import FirstFor
from ..cluster.slots import key_slot
from ..cluster.view import ClusterView
from .session import Session


class _Cache:
    """The FirstFor of the last view asked about (views are replaced whole,
    rarely: a tuple swap is atomic under the GIL, so workers may share it)."""

    last: tuple[ClusterView, FirstFor | None] | None = None


def covering(session: Session) -> FirstFor | None:
    """What this node's keyless commands cover, or None for everything."""
    view = session.control.cluster_view()
    if view is None:
        return None
    cached = _Cache.last
    if cached is not None and cached[0] is view:
        return cached[1]
    first_for: FirstFor | None = FirstFor(view.ring, view.up, view.myself)
    assert first_for is not None
    if len(first_for.partitions) == view.ring.partition_count:
        first_for = None
    _Cache.last = (view, first_for)
    return first_for


def covers(first_for: FirstFor, key: bytes) -> bool:
    return first_for.covers_slot(key_slot(key))


def count_keys(session: Session, first_for: FirstFor) -> int:
    """DBSIZE of the covered slots (per-slot counts, expired keys not yet
    removed included, as DBSIZE)."""
    keyspace = session.keyspace
    total = 0
    for start, end in first_for.slot_ranges():
        total += sum(keyspace.keys_in_slot(slot) for slot in range(start, end + 1))
    return total


def covered_keys(session: Session, first_for: FirstFor) -> list[bytes]:
    """Every stored key in the covered slots (FLUSH: O(keys))."""
    keyspace = session.keyspace
    found: list[bytes] = []
    cursor = 0
    while True:
        cursor, keys = keyspace.scan(cursor, 1024)
        found.extend(key for key in keys if first_for.covers_slot(key_slot(key)))
        if cursor == 0:
            return found
