"""Slot -> partition -> preference list: the ring every node computes alike.

The 16,384 slots fall into ``partition_count`` fixed partitions of
contiguous slots (64 of 256 by default; a power of two fixed when the
cluster is created: Dynamo's "strategy 3", Riak's ring of 64). ``claim``
gives every partition ``replicas`` distinct members (its preference list)
from the sorted member list alone, so the same members give the same ring on
every node with no messages exchanged.

A member is its client address; the bus listens on ``port + BUS_PORT_OFFSET``
unless configured otherwise. Node ids (what CLUSTER NODES shows, and the
actor ids in versions) are separate: a node's id lives in its data directory
and is learned by peers in the bus handshake, because an address can come
back with an empty disk and must then be a new actor.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .slots import SLOT_COUNT

# Redis' cluster bus is the client port + 10000; so is ours.
BUS_PORT_OFFSET = 10000
DEFAULT_PARTITION_COUNT = 64


@dataclass(frozen=True, order=True)
class Member:
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
    preference_lists: tuple[tuple[Member, ...], ...]

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


def claim(
    members: Iterable[Member],
    *,
    replicas: int = 3,
    partition_count: int = DEFAULT_PARTITION_COUNT,
    epoch: int = 1,
) -> Ring:
    """The ring of ``members``: each partition gets min(replicas, members)
    distinct members. Deterministic in the set of members.

    Placeholder claim (round robin over the sorted members); the real claim
    (balanced first positions, few moves when a member joins) replaces it
    behind this same signature.
    """
    ordered = tuple(sorted(set(members)))
    if not ordered:
        raise ValueError("a ring needs at least one member")
    if partition_count < 1 or partition_count > SLOT_COUNT or partition_count & (partition_count - 1):
        raise ValueError(f"partition count must be a power of two in 1..{SLOT_COUNT}, got {partition_count}")
    if replicas < 1:
        raise ValueError(f"replicas must be at least 1, got {replicas}")
    width = min(replicas, len(ordered))
    lists = tuple(
        tuple(ordered[(partition + i) % len(ordered)] for i in range(width))
        for partition in range(partition_count)
    )
    return Ring(epoch=epoch, members=ordered, partition_count=partition_count, preference_lists=lists)
