"""Sloppy quorum's fallback choice (Dynamo §4.6), without IO: which
healthy nodes stand in for a partition's preference-list members that
are down, each holding the write as a hint for the member it stands in
for.

The walk: ``walk_order(ring, partition)`` is every ring member *outside*
the partition's preference list, in ring order: the members of the next
partitions' preference lists (partition + 1, + 2, ... wrapping around),
each list in position order, each member once; members the walk never
meets (a ring so small that some member holds no place) come last,
sorted. Every node computes the same walk from the same ring, as Riak's
fallbacks walk the ring's partitions after the preference list.

Rules kept here (tests/property/test_cluster_fallbacks.py):

* A fallback is never a preference-list member: a live preference-list
  member gets the write itself, and a down one cannot hold it.
* A fallback is believed up, and is never this node (the coordinator is a
  preference-list member anyway: it coordinates only keys it replicates).
* Fallbacks are distinct: each stands in for one member, so W counts
  distinct nodes holding the write ("OK only after W replicas hold it").
* Down members are paired with the first healthy members of the walk in
  preference-list order; when the walk runs out of healthy members the
  rest get none (their writes are hinted by the coordinator, and count as
  failed).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from .ring import Member, Ring


def walk_order(ring: Ring, partition: int) -> tuple[Member, ...]:
    """The members outside ``partition``'s preference list, in ring order."""
    preference = ring.preference_lists[partition]
    seen = set(preference)
    order: list[Member] = []
    count = ring.partition_count
    for step in range(1, count):
        for member in ring.preference_lists[(partition + step) % count]:
            if member not in seen:
                seen.add(member)
                order.append(member)
    order.extend(member for member in ring.members if member not in seen)
    return tuple(order)


def choose_fallbacks(
    walk: Sequence[Member], down: Sequence[Member], up: Collection[Member], local: Member,
    *, taken: Collection[Member] = (),
) -> tuple[tuple[Member, Member], ...]:
    """(down member, its fallback) pairs: the ``down`` preference-list
    members, in order, each paired with the next member of ``walk`` that
    is up, is not ``local`` and is not already a fallback (in ``taken``
    or chosen here). Members left without one are not in the result."""
    chosen: list[tuple[Member, Member]] = []
    used = set(taken)
    candidates = iter(walk)
    for member in down:
        for candidate in candidates:
            if candidate in up and candidate != local and candidate not in used:
                used.add(candidate)
                chosen.append((member, candidate))
                break
        else:
            break
    return tuple(chosen)
