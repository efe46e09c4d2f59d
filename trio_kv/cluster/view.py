"""What a node knows of its cluster at one moment: the value the commands
layer answers CLUSTER SLOTS / SHARDS / NODES / INFO and ``INFO cluster``
from.

The async shell builds a new view whenever its opinion changes (a link goes
up or down, a new ring epoch) and hands it to handlers through
``ServerControl``; handlers never see links or timers. A one-node
("emulated", as Dragonfly's) cluster is ``emulated(...)``: the node owns all
16,384 slots.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from .ring import Member, Ring, claim


@dataclass(frozen=True)
class ClusterView:
    myself: Member
    ring: Ring
    # Every member's node id (40 lowercase hex characters, as Redis'). A peer
    # not yet met on the bus has placeholder_node_id(member).
    node_ids: Mapping[Member, str]
    # Members this node believes up (itself always): a local opinion, used
    # only to choose whom to publish first and whom to ask.
    up: frozenset[Member]

    @property
    def my_id(self) -> str:
        return self.node_ids[self.myself]


def placeholder_node_id(member: Member) -> str:
    """A stable stand-in id for a member whose real id is not known yet."""
    return hashlib.sha1(b"trio-kv-member:" + member.address.encode()).hexdigest()


def emulated(myself: Member, node_id: str) -> ClusterView:
    """The one-node cluster: ``myself`` owns every slot."""
    ring = claim([myself], replicas=1, partition_count=1)
    return ClusterView(myself=myself, ring=ring, node_ids={myself: node_id}, up=frozenset([myself]))
