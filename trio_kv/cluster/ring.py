"""Slot -> partition -> preference list: the ring every node computes alike.

The 16,384 slots fall into ``partition_count`` fixed partitions of
contiguous slots (64 of 256 by default; a power of two fixed when the
cluster is created: Dynamo's "strategy 3", Riak's ring of 64). ``claim``
gives every partition ``replicas`` distinct members (its preference list)
from the set of members alone, so the same members give the same ring on
every node with no messages exchanged.

A member is its client address; the bus listens on ``port + BUS_PORT_OFFSET``
unless configured otherwise. Node ids (what CLUSTER NODES shows, and the
actor ids in versions) are separate: a node's id lives in its data directory
and is learned by peers in the bus handshake, because an address can come
back with an empty disk and must then be a new actor.

The claim (rules it keeps, each a property in tests/property/test_cluster_ring.py)
-------------------------------------------------------------------------------
1. Every partition gets ``width = min(replicas, members)`` distinct members.
2. It is a function of the *set* of members: no history, no input order.
   Riak's claim (riak_core_claim v2/v3: a joining node "wants" its share and
   takes partitions that "meet target_n_val") starts from the previous ring;
   ours cannot, because every node computes the ring from the seeds alone.
3. Every position is balanced: member m holds position k of floor(P/M) or
   ceil(P/M) partitions, for every k (so first positions, which decide who
   coordinates and who answers SCAN, are balanced exactly).
4. Few preference lists change when a member joins or leaves.

How. Each (member, partition) pair has an *affinity*, a 64-bit hash of both
(rendezvous hashing, HRW). Plain HRW (each partition takes its ``width``
highest-affinity members) moves the minimum in expectation, because a
member's affinities do not depend on who else is there, but it is not
balanced: with 64 partitions and 10 members a member is first for anything
from 1 to 10 of them. So positions are filled one at a time, 0 to width-1,
each as a capacitated matching on the same affinities:

- quotas: each member may take floor(P/M) partitions at this position, and
  the P mod M ceilings go to the members with the fewest places so far (ties
  by the hash of the address). Totals thus never differ by more than one,
  which keeps the later positions satisfiable (when M == width the last
  position is forced, and the forced counts are exactly the quotas);
- greedy: walk every (partition, member) pair by decreasing affinity and take
  it if the partition has no member at this position yet, the member is not
  already in that partition's list and is under its quota. This is the
  stable matching of partitions and members under one shared score, which
  is why a join mostly leaves it alone: the newcomer's pairs are inserted
  into the walk and it takes its best partitions; chains of displacement are
  short;
- repair: a partition left over (every member it may take is full) gets one
  through an augmenting path (Kuhn's algorithm for b-matchings): a full
  member hands one of its partitions to a member with room. Should no path
  exist (seen only in tiny rings, fewer than two partitions per member, e.g.
  2 partitions, 5 members, N=4), the partition takes the allowed member
  holding the fewest at this position, so rule 1 never breaks and rule 3
  still held in every case the properties tried.

Cost: P·M hashes and one sort of the P·M pairs, plus the repairs: 64
partitions take 1 to 2 ms for 3 to 10 members, 4,096 partitions 0.1 to 0.4 s,
16,384 partitions (the most) 0.4 s for 3 members and 3 s for 20. It runs when
the members change, not per request; a caller on the Trio thread with a
very large ring should run it in a worker thread.

Movement, 64 partitions, N=3 (bench/cluster_claim.py; mean over 200 random
member sets; the minimum is what the newcomer must hold; a leave is the same
pair of rings read backwards, so it moves the same):

    M -> M+1   primaries moved/min     replicas moved/min      round robin
               dev     mean  worst     dev     mean  worst     primaries replicas
    3 -> 4     16/16   18.2  23/16     48/48   48.0  48/48     46/16     48/48
    4 -> 5     16/13   15.8  20/13     41/39   42.9  51/39     48/12     74/38
    5 -> 6     12/11   13.8  17/10     40/32   39.1  47/32     50/10     91/31
    7 -> 8     11/8    11.9  16/8      36/24   34.3  41/24     50/8     108/24
    9 -> 10    11/7    10.9  14/6      34/20   31.4  38/19     55/6     141/18

("dev" is 127.0.0.1:7001..; mean minimums are 16, 12.8, 10.6, 8.0, 6.4 primaries
and 48, 38.5, 32.0, 24.0, 19.2 replicas.) Round robin over sorted addresses
shifts almost every partition on a join; this claim moves close to the
minimum at 3 -> 4 and 4 -> 5, and about one and a half times it at 10 members
(displacement chains in the quota-limited greedy, repeated per position).
The worst case the properties found is about three times the minimum;
tests/property/test_cluster_ring.py bounds it by four.

A replica move is a (partition, member) pair that is new: data to copy.
A primary move is a partition whose first member changed: who coordinates
and who answers SCAN for it.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from .slots import SLOT_COUNT

# Redis' cluster bus is the client port + 10000; so is ours.
BUS_PORT_OFFSET = 10000
DEFAULT_PARTITION_COUNT = 64


class Member(NamedTuple):
    """A node's address. A tuple, so hashing and comparing one (the data
    path keys its per-peer state by Member, several times per write) is C
    code, not a dataclass's generated Python methods."""

    host: str
    # The client port (RESP and the line protocol).
    port: int

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> Member:
        """``host:port`` (``[v6]:port`` too) -> Member; ValueError if malformed."""
        host, separator, port_text = text.strip().rpartition(":")
        if not separator or not host or not port_text.isdigit():
            raise ValueError(f"expected host:port, got {text!r}")
        port = int(port_text)
        if not 0 < port < 65536 - BUS_PORT_OFFSET:
            raise ValueError(f"port must be 1..{65535 - BUS_PORT_OFFSET} (the bus is port + {BUS_PORT_OFFSET}), got {port}")
        return cls(host.strip("[]"), port)


@dataclass(frozen=True)
class Ring:
    epoch: int
    # Sorted, distinct.
    members: tuple[Member, ...]
    partition_count: int
    # Index = partition; each list has min(replicas, len(members)) distinct members.
    # While a change is staged these are the lists the change started from:
    # reads ask them, and they coordinate (cluster.ring_change.staged).
    preference_lists: tuple[tuple[Member, ...], ...]
    # A staged change's lists in the ring it leads to (cluster.ring_change):
    # their members not in ``preference_lists`` are *pending* (written to,
    # not read from; Cassandra's pending ranges). Empty: the ring is final.
    next_lists: tuple[tuple[Member, ...], ...] = ()
    # A staged change's members in the ring it leads to (``members`` is the
    # union of both while it is staged). Empty: the ring is final.
    next_members: tuple[Member, ...] = ()

    @property
    def staged(self) -> bool:
        """Whether a change is under way (``next_lists`` set)."""
        return bool(self.next_lists)

    def pending(self, partition: int) -> tuple[Member, ...]:
        """The members a staged change adds to ``partition``'s list: written
        to on top of the write quorum, not read from (none when final)."""
        if not self.next_lists:
            return ()
        before = self.preference_lists[partition]
        return tuple(member for member in self.next_lists[partition] if member not in before)

    def write_list(self, partition: int) -> tuple[Member, ...]:
        """Whom a write of ``partition`` goes to: the list, then its pending members."""
        return self.preference_lists[partition] + self.pending(partition)

    @property
    def slots_per_partition(self) -> int:
        return SLOT_COUNT // self.partition_count

    def partition_of_slot(self, slot: int) -> int:
        return slot // self.slots_per_partition

    def preference_list(self, slot: int) -> tuple[Member, ...]:
        return self.preference_lists[self.partition_of_slot(slot)]

    def slot_range(self, partition: int) -> tuple[int, int]:
        """First and last slot (inclusive, as CLUSTER SLOTS) of ``partition``."""
        start = partition * self.slots_per_partition
        return start, start + self.slots_per_partition - 1


@dataclass(frozen=True)
class Movement:
    """What changes between two rings of the same partitions."""

    # Partitions whose first member differs.
    primaries: int
    # (partition, member) pairs in the new ring and not the old: copies to make.
    replicas: int


def movement(old: Ring, new: Ring) -> Movement:
    """How many first positions and replica places differ from ``old`` to ``new``."""
    if old.partition_count != new.partition_count:
        raise ValueError("rings of different partition counts cannot be compared")
    primaries = 0
    replicas = 0
    for before, after in zip(old.preference_lists, new.preference_lists, strict=True):
        primaries += before[0] != after[0]
        replicas += len(set(after) - set(before))
    return Movement(primaries=primaries, replicas=replicas)


def claim(
    members: Iterable[Member],
    *,
    replicas: int = 3,
    partition_count: int = DEFAULT_PARTITION_COUNT,
    epoch: int = 1,
) -> Ring:
    """The ring of ``members``: each partition gets min(replicas, members)
    distinct members, every position balanced. Deterministic in the set of
    members (the module docstring gives the algorithm and its movement)."""
    ordered = tuple(sorted(set(members)))
    if not ordered:
        raise ValueError("a ring needs at least one member")
    if partition_count < 1 or partition_count > SLOT_COUNT or partition_count & (partition_count - 1):
        raise ValueError(f"partition count must be a power of two in 1..{SLOT_COUNT}, got {partition_count}")
    if replicas < 1:
        raise ValueError(f"replicas must be at least 1, got {replicas}")
    width = min(replicas, len(ordered))
    lists = _Claim(ordered, partition_count).run(width)
    return Ring(epoch=epoch, members=ordered, partition_count=partition_count, preference_lists=lists)


def _digest(text: str) -> int:
    # blake2b, not hash(): the same on every node and every Python run.
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def affinity(member: Member, partition: int) -> int:
    """The rendezvous score of ``member`` for ``partition`` (higher is preferred)."""
    return _digest(f"{member.address}/{partition}")


class _Claim:
    """One run of the claim (see the module docstring): positions filled in
    turn, each a capacitated matching on the members' affinities."""

    def __init__(self, members: Sequence[Member], partition_count: int) -> None:
        self.members = members
        self.partition_count = partition_count
        # Ties among quotas go by a hash of the address, which a join or a
        # leave does not reorder (sorted addresses would shift).
        self.rank = {member: (_digest(member.address), member) for member in members}
        scores = {(partition, member): affinity(member, partition) for partition in range(partition_count) for member in members}
        # Every pair, best first; ties (astronomically rare) by member, then partition.
        self.walk = sorted(scores, key=lambda pair: (-scores[pair], pair[1], pair[0]))
        # Each partition's members, best first: the order repairs try them in.
        self.preferences = [
            sorted(members, key=lambda member: (-scores[partition, member], member)) for partition in range(partition_count)
        ]
        self.lists: list[list[Member]] = [[] for _ in range(partition_count)]
        self.totals = dict.fromkeys(members, 0)

    def run(self, width: int) -> tuple[tuple[Member, ...], ...]:
        for _position in range(width):
            self._fill_position()
        return tuple(tuple(chosen) for chosen in self.lists)

    def _quotas(self) -> dict[Member, int]:
        base, ceilings = divmod(self.partition_count, len(self.members))
        neediest = sorted(self.members, key=lambda member: (self.totals[member], self.rank[member]))
        return {member: base + (index < ceilings) for index, member in enumerate(neediest)}

    def _fill_position(self) -> None:
        quota = self._quotas()
        lists = self.lists
        assigned: list[Member | None] = [None] * self.partition_count
        holders: dict[Member, set[int]] = {member: set() for member in self.members}
        for partition, member in self.walk:
            if assigned[partition] is None and len(holders[member]) < quota[member] and member not in lists[partition]:
                assigned[partition] = member
                holders[member].add(partition)
        for partition in range(self.partition_count):
            if assigned[partition] is None and not self._augment(partition, assigned, holders, quota):
                # No augmenting path: these quotas cannot be met at this
                # position (Hall's condition fails). Distinctness comes first:
                # the allowed member holding the fewest here takes it.
                allowed = [member for member in self.preferences[partition] if member not in lists[partition]]
                least = min(allowed, key=lambda member: len(holders[member]))
                assigned[partition] = least
                holders[least].add(partition)
        for partition, chosen in enumerate(assigned):
            assert chosen is not None
            lists[partition].append(chosen)
            self.totals[chosen] += 1

    def _augment(
        self, start: int, assigned: list[Member | None], holders: dict[Member, set[int]], quota: dict[Member, int]
    ) -> bool:
        """Give ``start`` a member along a shortest alternating path (BFS):
        start -> a member it may take -> one of that member's partitions ->
        another member ... -> a member under quota. False if none exists."""
        reached_from: dict[Member, int] = {}
        queue = deque([start])
        seen = {start}
        while queue:
            partition = queue.popleft()
            for member in self.preferences[partition]:
                if member in reached_from or member in self.lists[partition]:
                    continue
                reached_from[member] = partition
                if len(holders[member]) < quota[member]:
                    self._flip(member, reached_from, assigned, holders)
                    return True
                for held in sorted(holders[member] - seen):
                    seen.add(held)
                    queue.append(held)
        return False

    @staticmethod
    def _flip(
        member: Member, reached_from: dict[Member, int], assigned: list[Member | None], holders: dict[Member, set[int]]
    ) -> None:
        """Shift every partition on the path to the member it was reached by."""
        while True:
            partition = reached_from[member]
            previous = assigned[partition]
            assigned[partition] = member
            holders[member].add(partition)
            if previous is None:
                return
            holders[previous].discard(partition)
            member = previous
