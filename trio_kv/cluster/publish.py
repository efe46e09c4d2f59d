"""How the ring is shown to Redis Cluster clients: slot ranges with one
published node each, and which slots a node answers keyless commands for.

Rules kept here:

- A range's published primary is the first member of its preference list
  that this node believes up (the ring's first when none is: the client then
  fails to connect, which is the truth). With every member up it is the
  ring's first, whose first positions the claim balances.
- Ranges are sorted by slot, cover 0..16383 exactly once, and adjacent
  partitions with the same published nodes are merged into one range.
- Replicas are not listed: each range names its primary only. Why, from
  the clients' code:

  * redis-py (``NodesManager.initialize`` in redis/cluster.py) walks the
    CLUSTER SLOTS reply in order and fixes each node's role at its *first*
    appearance (``_get_or_create_cluster_node`` never changes it later);
    ``scan_iter``, ``keys``, ``dbsize``, ``flushdb`` and ``randomkey`` go
    to the nodes it holds as primaries only. Whatever the order of ranges,
    the replicas of the first range listed are first seen as replicas, and
    the claim makes every member first for some partition: listing every
    range's replicas would always make N-1 members "replicas" to redis-py
    and its ``scan_iter`` would miss their partitions. The only safe partial
    form (name a replica only after it has appeared as some range's
    primary) depends on the order of ranges and lists different replicas
    for the same preference list: confusing, and brittle for other clients.
  * Nothing is lost by leaving them out. Any node coordinates any key and a
    quorum read already asks R replicas, so a client reading "from a
    replica" reaches no copy the primary cannot. With one node per range,
    redis-py's ``read_from_replicas`` / ``load_balancing_strategy`` read from
    the primary (its load balancer is used only when a slot has more than
    one node), which is correct.
  * redis-benchmark --cluster (7.0) reads CLUSTER NODES, keeps the masters
    that have slots, and on MOVED re-reads CLUSTER SLOTS matching each
    range's *first* node by node id against those masters; redis-cli -c
    follows -MOVED/-ASK and reads no map. CLUSTER NODES gives a node one
    role for all its slots, so it cannot say "replica here, primary there"
    anyway: every node that publishes ranges is a master there, with the
    same ranges as here.

  The preference lists themselves are visible on the bus (TKV.RING).
- Keyless commands (SCAN, KEYS, DBSIZE, RANDOMKEY, FLUSHDB) cover only the
  partitions a node is published first for (``FirstFor``): cluster clients
  send them to every primary, and each key must come back once. Each node
  decides from its own liveness opinion; while opinions differ (a node just
  went down or came back) a map read from one node may not match another
  node's FirstFor, and a fan-out can miss or repeat a partition until they
  agree.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass

from .ring import Member, Ring


@dataclass(frozen=True)
class SlotRange:
    # First and last slot, both inclusive (as CLUSTER SLOTS).
    start: int
    end: int
    # The published nodes; nodes[0] is the range's primary. Only the primary
    # is published (see the module docstring); a tuple so the reply builders
    # stay shaped as CLUSTER SLOTS is.
    nodes: tuple[Member, ...]

    @property
    def primary(self) -> Member:
        return self.nodes[0]


def published_primary(preference_list: tuple[Member, ...], up: Collection[Member]) -> Member:
    """The first member of ``preference_list`` believed up, else its first."""
    for member in preference_list:
        if member in up:
            return member
    return preference_list[0]


def publish(ring: Ring, up: Collection[Member]) -> tuple[SlotRange, ...]:
    """The slot ranges CLUSTER SLOTS / SHARDS / NODES are built from, sorted,
    covering every slot once, adjacent partitions with the same nodes merged."""
    ranges: list[SlotRange] = []
    for partition, preference_list in enumerate(ring.preference_lists):
        nodes = (published_primary(preference_list, up),)
        start, end = ring.slot_range(partition)
        if ranges and ranges[-1].nodes == nodes:
            ranges[-1] = SlotRange(ranges[-1].start, end, nodes)
        else:
            ranges.append(SlotRange(start, end, nodes))
    return tuple(ranges)


def published_primaries(ranges: Collection[SlotRange]) -> frozenset[Member]:
    """Every member that is some range's primary (CLUSTER NODES' masters with slots)."""
    return frozenset(slot_range.primary for slot_range in ranges)


class FirstFor:
    """The partitions ``member`` is published first for: what its keyless
    commands cover. ``covers_slot`` is O(1) (a shift and a tuple index)."""

    __slots__ = ("member", "partitions", "_shift", "_covered")

    def __init__(self, ring: Ring, up: Collection[Member], member: Member) -> None:
        self.member = member
        self.partitions = frozenset(
            partition
            for partition, preference_list in enumerate(ring.preference_lists)
            if published_primary(preference_list, up) == member
        )
        # slots_per_partition is a power of two (the partition count is).
        self._shift = ring.slots_per_partition.bit_length() - 1
        self._covered = tuple(partition in self.partitions for partition in range(ring.partition_count))

    def covers_slot(self, slot: int) -> bool:
        return self._covered[slot >> self._shift]

    def slot_ranges(self) -> Iterator[tuple[int, int]]:
        """The covered slots as sorted (first, last) ranges, adjacent partitions merged."""
        size = 1 << self._shift
        start: int | None = None
        for partition, covered in enumerate(self._covered):
            if covered and start is None:
                start = partition * size
            elif not covered and start is not None:
                yield start, partition * size - 1
                start = None
        if start is not None:
            yield start, len(self._covered) * size - 1
