"""The coordinator's decisions, without IO: whom to ask, when a request is
decided, how replies merge, and where a request that is not ours goes.

The async shell drives these objects: it sends what ``AckCounter.take_sends``
names (nothing when too few members are up: the counter is then IMPOSSIBLE
from the start and the write must not be applied anywhere), feeds every
reply (or failure, or per-node timeout) back, sends again what
``take_sends`` names after a failure (a spare, for reads), answers the client
once ``outcome`` is decided, and calls ``deadline_passed`` when its
``--cluster-write-timeout`` scope ends. Nothing here reads a clock or a link.

Rules kept here:

- Who counts: only the key's preference-list members (design: W and R count
  preference-list replicas, so R + W > N really overlaps). The coordinator
  counts itself when it is one of them; it is always up in its own opinion.
  The one exception is sloppy quorum (``--cluster-sloppy-quorum yes``,
  ``PlanCache(sloppy=True)``, writes only): a preference-list member
  believed down may get a *fallback* (``fallbacks.py``), a healthy node
  outside the list that holds the write as a hint for it; the fallback's
  ack is recorded as that member's (it is in ``asked``), so W still counts
  distinct nodes that hold the write, and the member's copy arrives when
  the fallback hands the hint back. Reads never use fallbacks.
- How many: ONE needs 1 reply, QUORUM the configured W (writes) or R (reads),
  ALL every member of the preference list. The preference list has
  min(N, members) members; W and R are capped at its length, so a cluster
  of fewer than N members still works (two members, N=3, W=2: both must
  ack). The cap keeps the overlap: if R + W > N then min(R, L) + min(W, L) > L
  for every list length L <= N (tests/property/test_cluster_quorum.py).
- Writes go to every preference-list member believed up (the ones believed
  down are ``skipped``: hinted later). Reads ask the ``needed`` first live
  members, the coordinator first (ONE on a replica answers from its own
  copy), and keep the other live ones as spares, asked one per target that
  fails.
- Decided, and then final: SUCCESS as soon as ``needed`` distinct members
  said ok; IMPOSSIBLE (-NOREPLICAS) as soon as the oks plus the members that
  may still answer (asked and silent, or spares) fall below ``needed``, or
  at the deadline. A reply counts once per member (a duplicated reply is
  ignored); late replies are still recorded for metrics.
- A read merges every reply with the version type's join; a replica whose
  reply does not dominate the merge is stale and is repaired before the
  client gets its answer (blocking read repair).
- A key whose preference list does not hold the coordinator goes to its
  first live member (Riak forwards the same way), or, with
  ``--cluster-redirect moved``, the client gets ``-MOVED slot host:port``
  naming that member, the range's published primary.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from .fallbacks import choose_fallbacks, walk_order
from .publish import published_primary
from .ring import Member, Ring


class Level(enum.Enum):
    """A connection's consistency level (TKV.CONSISTENCY ONE|QUORUM|ALL)."""

    ONE = "ONE"
    QUORUM = "QUORUM"
    ALL = "ALL"

    @classmethod
    def parse(cls, text: str) -> Level:
        """Case-insensitive; ValueError for anything else."""
        return cls(text.upper())


class Operation(enum.Enum):
    READ = "read"
    WRITE = "write"


def replies_needed(
    level: Level, operation: Operation, *, preference_length: int, write_quorum: int, read_quorum: int
) -> int:
    """Successful replies a request needs (see "How many" above)."""
    if preference_length < 1:
        raise ValueError("a preference list has at least one member")
    if level is Level.ONE:
        return 1
    if level is Level.ALL:
        return preference_length
    quorum = write_quorum if operation is Operation.WRITE else read_quorum
    if quorum < 1:
        raise ValueError(f"a quorum is at least 1, got {quorum}")
    return min(quorum, preference_length)


@dataclass(frozen=True)
class RequestPlan:
    # Ask these now; the coordinator first when it is one of them.
    targets: tuple[Member, ...]
    # Live members not asked yet: one is asked for each target that fails (reads).
    spares: tuple[Member, ...]
    # Preference-list members believed down and without a fallback: not
    # asked (the coordinator hints them, later).
    skipped: tuple[Member, ...]
    needed: int
    # Sloppy quorum (writes): (down preference-list member, the healthy
    # node outside the list that holds the write as a hint for it). The
    # member counts as asked; its answer is the fallback's.
    fallbacks: tuple[tuple[Member, Member], ...] = ()

    @property
    def feasible(self) -> bool:
        """Whether enough members are believed up to ever succeed."""
        return len(self.targets) + len(self.spares) + len(self.fallbacks) >= self.needed


def plan_request(
    preference_list: tuple[Member, ...],
    local: Member,
    up: Collection[Member],
    level: Level,
    operation: Operation,
    *,
    write_quorum: int,
    read_quorum: int,
) -> RequestPlan:
    """Whom to ask for a key with ``preference_list``, coordinated by ``local``."""
    needed = replies_needed(
        level, operation, preference_length=len(preference_list), write_quorum=write_quorum, read_quorum=read_quorum
    )
    live = [member for member in preference_list if member == local or member in up]
    if local in live:
        live.remove(local)
        live.insert(0, local)
    skipped = tuple(member for member in preference_list if member not in live)
    if operation is Operation.WRITE:
        return RequestPlan(targets=tuple(live), spares=(), skipped=skipped, needed=needed)
    return RequestPlan(targets=tuple(live[:needed]), spares=tuple(live[needed:]), skipped=skipped, needed=needed)


class Outcome(enum.Enum):
    PENDING = "pending"
    SUCCESS = "success"
    # Not enough members can still answer: -NOREPLICAS.
    IMPOSSIBLE = "impossible"


class Reply(enum.Enum):
    OK = "ok"
    FAILED = "failed"
    # The shell gave up on this member: its write may or may not have
    # landed ("unknown", never "failed", to a history checker).
    TIMED_OUT = "timed out"


class AckCounter:
    """Counts one request's replies (see the module docstring's rules).

    Counts are kept as the replies come (one per write on the data path:
    no scan of the replies per decision)."""

    __slots__ = ("needed", "_spares", "_to_send", "asked", "replies", "outcome", "_oks")

    def __init__(self, plan: RequestPlan) -> None:
        self.needed = plan.needed
        self._spares = list(plan.spares)
        self._to_send = list(plan.targets)
        # Every member asked, in the order asked (a member with a fallback
        # too: the fallback's answer is recorded as its own).
        self.asked: list[Member] = list(plan.targets)
        if plan.fallbacks:
            self.asked += [member for member, _fallback in plan.fallbacks]
        self.replies: dict[Member, Reply] = {}
        self.outcome = Outcome.PENDING
        # Replies that are Reply.OK (kept with ``replies``).
        self._oks = 0
        self._decide()
        if self.outcome is Outcome.IMPOSSIBLE:
            # Too few members up to ever succeed: refuse before anything is
            # written, as Redis' min-replicas-to-write and Riak's pw do.
            self._to_send.clear()

    @property
    def oks(self) -> int:
        return self._oks

    @property
    def unanswered(self) -> tuple[Member, ...]:
        """Members asked that have not answered (the ones to hint or to wait for)."""
        return tuple(member for member in self.asked if member not in self.replies)

    def take_sends(self) -> tuple[Member, ...]:
        """Members to send the request to now, each named once."""
        sends = tuple(self._to_send)
        self._to_send.clear()
        return sends

    def record(self, member: Member, reply: Reply) -> Outcome:
        """One member's reply; a second reply from the same member is ignored."""
        if member not in self.asked:
            raise ValueError(f"{member.address} was not asked")
        if member in self.replies:
            return self.outcome
        self.replies[member] = reply
        if reply is Reply.OK:
            self._oks += 1
        elif self.outcome is Outcome.PENDING:
            self._ask_spares()
        self._decide()
        return self.outcome

    def ok(self, member: Member) -> Outcome:
        return self.record(member, Reply.OK)

    def failed(self, member: Member) -> Outcome:
        return self.record(member, Reply.FAILED)

    def timed_out(self, member: Member) -> Outcome:
        return self.record(member, Reply.TIMED_OUT)

    def deadline_passed(self) -> Outcome:
        """The request's time is up: the silent members timed out, no spare is asked."""
        self._spares.clear()
        self._to_send.clear()
        for member in self.unanswered:
            self.replies[member] = Reply.TIMED_OUT
        self._decide()
        return self.outcome

    def _ask_spares(self) -> None:
        # Keep enough members in flight to still reach ``needed``.
        while self._spares and self._oks + len(self.asked) - len(self.replies) < self.needed:
            spare = self._spares.pop(0)
            self.asked.append(spare)
            self._to_send.append(spare)

    def _decide(self) -> None:
        if self.outcome is not Outcome.PENDING:
            return
        oks = self._oks
        if oks >= self.needed:
            self.outcome = Outcome.SUCCESS
        # Every reply is from an asked member, so asked - replies are the silent ones.
        elif oks + len(self.asked) - len(self.replies) + len(self._spares) < self.needed:
            self.outcome = Outcome.IMPOSSIBLE


class PlanCache:
    """``plan_request``'s answers for one ring and up set, computed once per
    (partition, level, operation): the coordinator asks for every key of
    every request, and the answer changes only with the view. A new view
    needs a new cache (the coordinator keeps one per view it sees)."""

    __slots__ = (
        "ring", "local", "up", "write_quorum", "read_quorum", "sloppy", "_plans", "_local_partitions",
        "_slots_per_partition",
    )

    def __init__(
        self, ring: Ring, local: Member, up: Collection[Member], *, write_quorum: int, read_quorum: int,
        sloppy: bool = False,
    ) -> None:
        self.ring = ring
        self.local = local
        self.up = up
        self.write_quorum = write_quorum
        self.read_quorum = read_quorum
        # Sloppy quorum: write plans give down members fallbacks (see the module docstring).
        self.sloppy = sloppy
        # (level, operation) -> a plan per partition, filled as asked.
        self._plans: dict[tuple[Level, Operation], list[RequestPlan | None]] = {}
        # Per partition: whether ``local`` is in its preference list.
        self._local_partitions = [local in preference for preference in ring.preference_lists]
        self._slots_per_partition = ring.slots_per_partition

    def replicates(self, slot: int) -> bool:
        """Whether ``local`` is in the preference list of ``slot``."""
        return self._local_partitions[slot // self._slots_per_partition]

    def plan(self, slot: int, level: Level, operation: Operation) -> RequestPlan:
        """``plan_request`` for a key in ``slot`` (the same value, cached)."""
        partition = slot // self._slots_per_partition
        plans = self._plans.get((level, operation))
        if plans is None:
            plans = self._plans[(level, operation)] = [None] * self.ring.partition_count
        plan = plans[partition]
        if plan is None:
            plan = plan_request(
                self.ring.preference_lists[partition], self.local, self.up, level, operation,
                write_quorum=self.write_quorum, read_quorum=self.read_quorum,
            )
            if self.sloppy and plan.skipped and operation is Operation.WRITE:
                plan = with_fallbacks(plan, walk_order(self.ring, partition), self.up, self.local)
            plans[partition] = plan
        return plan

    def fallback_walk(self, slot: int) -> tuple[Member, ...]:
        """``fallbacks.walk_order`` of ``slot``'s partition (a refused member's fallback)."""
        return walk_order(self.ring, slot // self._slots_per_partition)


def with_fallbacks(plan: RequestPlan, walk: tuple[Member, ...], up: Collection[Member], local: Member) -> RequestPlan:
    """``plan`` (a write's) with a fallback for each skipped member the
    walk has a healthy node for (``fallbacks.choose_fallbacks``); the
    members left without one stay ``skipped``."""
    chosen = choose_fallbacks(walk, plan.skipped, up, local)
    if not chosen:
        return plan
    covered = {member for member, _fallback in chosen}
    return replace(plan, skipped=tuple(member for member in plan.skipped if member not in covered), fallbacks=chosen)


S = TypeVar("S")


@dataclass(frozen=True)
class ReadMerge(Generic[S]):
    # The join of every reply; None when every replica said "absent".
    state: S | None
    # Replicas whose reply does not dominate ``state``: repair them.
    stale: frozenset[Member]


def merge_replies(
    replies: Mapping[Member, S | None],
    merge: Callable[[S, S], S],
    dominates: Callable[[S, S], bool],
) -> ReadMerge[S]:
    """Merge R replicas' replies (a state, or None for "absent").

    ``merge`` is the version type's join (commutative, associative,
    idempotent: DVVSet sync); ``dominates(a, b)`` says a has seen everything
    b has. Replies are folded in member order, so every coordinator gets the
    same state from the same replies.
    """
    merged: S | None = None
    for member in sorted(replies):
        state = replies[member]
        if state is not None:
            merged = state if merged is None else merge(merged, state)
    if merged is None:
        return ReadMerge(state=None, stale=frozenset())
    result: S = merged
    stale = frozenset(member for member, state in replies.items() if state is None or not dominates(state, result))
    return ReadMerge(state=result, stale=stale)


@dataclass(frozen=True)
class Coordinate:
    """This node is in the key's preference list (or no one else is up): it coordinates."""


@dataclass(frozen=True)
class Forward:
    """Send the request to ``to``, the key's first live member, and relay its reply."""

    to: Member


@dataclass(frozen=True)
class Moved:
    """Answer ``-MOVED slot host:port`` (--cluster-redirect moved)."""

    slot: int
    to: Member

    @property
    def error(self) -> str:
        # Redis writes the host bare, IPv6 included; clients split at the last colon.
        return f"MOVED {self.slot} {self.to.host}:{self.to.port}"


Route = Coordinate | Forward | Moved


def route(
    slot: int, preference_list: tuple[Member, ...], local: Member, up: Collection[Member], *, redirect: str = "none"
) -> Route:
    """Where a request for a key in ``slot`` goes (``redirect``: config's
    cluster_redirect, "none" or "moved")."""
    if local in preference_list:
        return Coordinate()
    if redirect == "moved":
        return Moved(slot=slot, to=published_primary(preference_list, up))
    if redirect != "none":
        raise ValueError(f"cluster redirect is none or moved, got {redirect!r}")
    live = [member for member in preference_list if member in up]
    return Forward(to=live[0]) if live else Coordinate()
