"""Static membership: the members are the ``--cluster-seeds`` list, this
node among them. Pure.

This node is ``--cluster-announce-host`` (or ``--host``) with ``--port``;
a start where that address is not in the list is refused with a sentence
naming both, since a node outside its own ring would coordinate keys for a
ring nobody else computes. With no seeds, the node is alone (emulated
mode: one member, one replica).

With ``--cluster-join yes`` the node joins a running cluster: the seeds
name it and members to ask, and its ring is ``joining_ring`` until a
member's ring arrives (after ``trio-kv cluster add``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Config
from .ring import Member, Ring, claim


class MembershipError(ValueError):
    """The configuration describes no cluster this node can be part of."""


@dataclass(frozen=True)
class StaticMembership:
    myself: Member
    ring: Ring

    @property
    def peers(self) -> tuple[Member, ...]:
        return tuple(member for member in self.ring.members if member != self.myself)


def myself_of(config: Config, port: int | None = None) -> Member:
    """This node's member address (``port``: the bound port, when --port 0)."""
    host = config.cluster_announce_host or config.host
    return Member(host, config.port if port is None else port)


def static_membership(config: Config, port: int | None = None) -> StaticMembership:
    myself = myself_of(config, port)
    if not config.cluster_seeds:
        ring = claim([myself], replicas=1, partition_count=config.cluster_partitions)
        return StaticMembership(myself, ring)
    members = [Member.parse(seed) for seed in config.cluster_seeds]
    if myself not in members:
        raise MembershipError(
            f"this node ({myself.address}: --cluster-announce-host or --host, and --port) is not in "
            f"--cluster-seeds ({', '.join(config.cluster_seeds)}); list it, or set --cluster-announce-host "
            "to the host the seeds name it by"
        )
    if config.cluster_join:
        return StaticMembership(myself, joining_ring(myself, members, config))
    ring = claim(members, replicas=config.cluster_replicas, partition_count=config.cluster_partitions)
    return StaticMembership(myself, ring)


def joining_ring(myself: Member, seeds: list[Member], config: Config) -> Ring:
    """A joining node's ring until the cluster's arrives: epoch 0 (older than
    any real ring, so the first one it hears of is adopted), the seeds as
    members, and every preference list made of the other seeds only, so this
    node coordinates and stores nothing and forwards every request to them."""
    others = sorted(set(seeds) - {myself})
    if not others:
        raise MembershipError("--cluster-join yes needs --cluster-seeds naming at least one member besides this node")
    lists = claim(others, replicas=config.cluster_replicas, partition_count=config.cluster_partitions).preference_lists
    return Ring(epoch=0, members=tuple(sorted({myself, *others})), partition_count=config.cluster_partitions,
                preference_lists=lists)
