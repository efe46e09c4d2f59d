"""A membership change: the next ring computed from the *old* ring, so a
join or a leave moves the fewest partitions. Pure.

``claim`` (ring.py) makes a fresh cluster's ring from its members alone;
every later ring comes from ``reclaim(old, members)``, Riak's way
(riak_core_claim: a joining node "wants" its share and takes partitions
from the nodes that hold the most). Changes apply one member at a time,
joins first (so the ring is never empty), then leaves, in address order, so the result is a function
of (old ring, new member set).

Words, as ``trio-kv cluster plan`` prints them:

* a partition *moves* when its first member (who coordinates it and answers
  SCAN for it) changes: ``movement(old, new).primaries``;
* a *replica move* is a (partition, member) pair in the new ring and not in
  the old: a copy to make (``movement(old, new).replicas``).

Rules (each a property in tests/property/test_cluster_ring_change.py):

1. Every partition has ``min(replicas, members)`` distinct members.
2. Deterministic: the same old ring and member set give the same ring.
3. Minimal movement: a join's replica moves are exactly the slots the
   newcomer takes (nobody else gains anything) and a leave's are exactly
   the slots the leaver held (each goes to one member). The only exception
   is when every member is in every list (members <= replicas): then the
   lists are a fresh ``claim`` and the copies are forced anyway.
4. Balanced: at every position the newcomer takes from the member holding
   the most there until no member holds more than one above it, so adding
   a 4th node to 3 with 64 partitions moves exactly 16 partitions (and
   makes 48 replica moves: with N=3 the newcomer must hold 3/4 of them);
   a leaver's slots go to the member holding the fewest at that position.

How: a join walks positions 0..width-1; at each, while the most loaded
member (ties by the hash of its address) holds at least two more than the
newcomer, the newcomer replaces it in the partition it scores best on
(``ring.affinity``) among those it is not already in. A leave gives each
of the leaver's places, partition by partition, to the least loaded member
at that position not already in the list (ties by affinity). Both are
O(P log P) per position.

``staged(old, new)`` is the ring a change runs on while partitions are
copied (reads from the old lists, writes to their union with the new ones,
W + k acks), ``finished`` the ring it switches to once every copy is made;
``partition_moves(old, new)`` names the copies and who makes each
(server/cluster/moves.py streams them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .ring import Member, Ring, _digest, affinity, claim


def reclaim(old: Ring, members: Iterable[Member], *, replicas: int) -> Ring:
    """The ring after ``old``'s members become ``members``: epoch + 1,
    the same partition count, lists changed as little as the rules allow."""
    target = sorted(set(members))
    if not target:
        raise ValueError("a ring needs at least one member")
    if old.staged:
        raise ValueError(f"epoch {old.epoch} is a staged change: finish it first")
    current = list(old.members)
    lists = [list(chosen) for chosen in old.preference_lists]
    for joiner in sorted(set(target) - set(current)):
        current = sorted([*current, joiner])
        lists = _step(lists, current, replicas, old.partition_count) or _join(lists, current, joiner)
    for leaver in sorted(set(current) - set(target)):
        current.remove(leaver)
        lists = _step(lists, current, replicas, old.partition_count) or _leave(lists, current, leaver)
    return Ring(
        epoch=old.epoch + 1, members=tuple(current), partition_count=old.partition_count,
        preference_lists=tuple(tuple(chosen) for chosen in lists),
    )


def _step(lists: list[list[Member]], members: list[Member], replicas: int, partition_count: int) -> list[list[Member]] | None:
    """A fresh claim's lists when every member is in every list (nothing to
    choose, copies forced); None when the width stays below the member count."""
    if min(replicas, len(members)) < len(members):
        return None
    fresh = claim(members, replicas=replicas, partition_count=partition_count)
    return [list(chosen) for chosen in fresh.preference_lists]


def _rank(member: Member) -> tuple[int, Member]:
    # As ring._Claim's tie-break: a hash of the address, which joins and leaves do not reorder.
    return (_digest(member.address), member)


def _join(lists: list[list[Member]], members: list[Member], joiner: Member) -> list[list[Member]]:
    width = len(lists[0]) if lists else 0
    for position in range(width):
        # Each holder's partitions at this position, worst for the joiner first (pop() takes its best).
        held: dict[Member, list[int]] = {member: [] for member in members if member != joiner}
        for partition, chosen in enumerate(lists):
            held[chosen[position]].append(partition)
        for partitions in held.values():
            partitions.sort(key=lambda partition: (affinity(joiner, partition), -partition))
        mine = 0
        while (taken := _take(lists, held, joiner, position, mine)) is not None:
            lists[taken][position] = joiner
            mine += 1
    return lists


def _take(lists: list[list[Member]], held: dict[Member, list[int]], joiner: Member, position: int, mine: int) -> int | None:
    """The partition the joiner takes next at ``position`` (removed from its
    donor's list), or None once no member holds two more than the joiner."""
    for donor in sorted(held, key=lambda member: (-len(held[member]), _rank(member))):
        if len(held[donor]) < mine + 2:
            return None
        for index in range(len(held[donor]) - 1, -1, -1):
            partition = held[donor][index]
            if joiner not in lists[partition]:
                del held[donor][index]
                return partition
    return None


def _leave(lists: list[list[Member]], members: list[Member], leaver: Member) -> list[list[Member]]:
    width = len(lists[0]) if lists else 0
    for position in range(width):
        counts = dict.fromkeys(members, 0)
        for chosen in lists:
            if chosen[position] != leaver:
                counts[chosen[position]] += 1
        for partition, chosen in enumerate(lists):
            if chosen[position] != leaver:
                continue
            allowed = [member for member in members if member not in chosen]
            heir = min(allowed, key=lambda member: (counts[member], -affinity(member, partition), member))
            chosen[position] = heir
            counts[heir] += 1
    return lists


@dataclass(frozen=True)
class PartitionMove:
    """Copies ``source`` makes of ``partition`` after a ring change: to
    ``targets``. ``primary``: the first member of the old list that stays
    (every node names it alike), whose copies go first."""

    partition: int
    source: Member
    targets: tuple[Member, ...]
    primary: bool = True


def partition_moves(old: Ring, new: Ring) -> list[PartitionMove]:
    """The copies ``new`` needs (``new`` staged: the ring it leads to).

    For each partition whose list changes: its primary (the first old
    member that stays) copies to the members the list gains, and every
    member leaving the list copies too, so each write acknowledged by W
    old members ends on W members of the new list: a write set without
    the primary and without a leaver is W members that stay. A member
    leaving the list hands its copy to the members gained, or, when it
    leaves the cluster (a removed node: it may hold writes nobody else
    has, such as one acknowledged by it and a node that then died), to
    every member of the new list, before it stops serving. A copy is an
    anti-entropy sync, so a target that already holds a key costs only the
    roots and segments compared. None from a staged ring to the ring it
    leads to: its copies were made while it was staged."""
    if old.staged:
        return []
    members_after = set(new.next_members or new.members)
    moves = []
    for partition, after in enumerate(new.next_lists or new.preference_lists):
        before = old.preference_lists[partition]
        gained = tuple(member for member in after if member not in before)
        if not gained and set(before) <= set(after):
            continue
        primary = next((member for member in before if member in after), None)
        if primary is not None and gained:
            moves.append(PartitionMove(partition, primary, gained))
        for leaver in before:
            if leaver not in after:
                targets = gained if gained and leaver in members_after else after
                moves.append(PartitionMove(partition, leaver, targets, primary=False))
    return moves


def staged(old: Ring, new: Ring) -> Ring:
    """The ring a change runs on while its partitions are copied: ``old``'s
    lists (they coordinate and serve reads) with ``new``'s as its next
    lists, members the union of both, ``new``'s epoch.

    Reads ask R of the old list; a write goes to the old list and the
    members the new list adds (``Ring.write_list``) and needs W + k acks,
    k the members added (Cassandra's pending ranges: the pending replicas
    count on top of the consistency level; ``quorum.plan_request`` gives
    the rule when the width changes too). Among those acks at least W
    are old members (k of the union are new) and at least W are members
    of the new list (only k leave): so a read of R old members meets every
    write, before and during the move, and after the switch a read of R
    new members meets every write made during the move (R + W > N both
    times); the writes from before the move reach the new members through
    the copies (``partition_moves``: the primary's and the leavers'). Once
    every copy is made (Tictac roots match), ``finished`` switches."""
    return Ring(
        epoch=new.epoch, members=tuple(sorted(set(old.members) | set(new.members))),
        partition_count=new.partition_count, preference_lists=old.preference_lists,
        next_lists=new.preference_lists, next_members=new.members,
    )


def finished(stage: Ring) -> Ring:
    """The ring a staged change leads to, one epoch later; no data moves."""
    if not stage.staged:
        raise ValueError(f"epoch {stage.epoch} is not a staged change")
    return Ring(epoch=stage.epoch + 1, members=stage.next_members, partition_count=stage.partition_count,
                preference_lists=stage.next_lists)
