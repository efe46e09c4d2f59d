"""The coordinator's decisions (trio_kv/cluster/quorum.py): how many replies
a level needs (capped, overlap kept), whom a plan asks, when an ack counter
decides (success exactly at `needed` distinct oks, NOREPLICAS exactly when
too few can still answer), read merges that dominate every reply with exact
stale detection, where a request that is not ours goes, and the cached
plans are plan_request's."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from trio_kv.cluster.quorum import (
    AckCounter,
    Coordinate,
    Forward,
    Level,
    Moved,
    Operation,
    Outcome,
    PlanCache,
    Reply,
    merge_replies,
    plan_request,
    replies_needed,
    route,
)
from trio_kv.cluster.ring import Member, claim

_pool = [Member("127.0.0.11", 7001 + index) for index in range(7)]


@st.composite
def situations(draw: st.DrawFn) -> tuple[tuple[Member, ...], Member, frozenset[Member]]:
    """A preference list, the coordinator (in it or not) and who is up."""
    preference_list = tuple(draw(st.lists(st.sampled_from(_pool), min_size=1, max_size=5, unique=True)))
    local = draw(st.sampled_from(_pool))
    up = frozenset(draw(st.lists(st.sampled_from(_pool), unique=True))) | {local}
    return preference_list, local, up


levels = st.sampled_from(list(Level))
operations = st.sampled_from(list(Operation))
quorums = st.integers(1, 5)


@given(st.integers(1, 7), st.integers(1, 7), st.integers(1, 7))
def test_capped_quorums_still_overlap(replicas: int, write_quorum: int, read_quorum: int) -> None:
    """R + W > N stays R' + W' > L for every list length L <= N."""
    for length in range(1, replicas + 1):
        write = replies_needed(Level.QUORUM, Operation.WRITE, preference_length=length, write_quorum=write_quorum, read_quorum=read_quorum)
        read = replies_needed(Level.QUORUM, Operation.READ, preference_length=length, write_quorum=write_quorum, read_quorum=read_quorum)
        assert write == min(write_quorum, length) and read == min(read_quorum, length)
        if write_quorum + read_quorum > replicas:
            assert write + read > length
        for operation in Operation:
            assert replies_needed(Level.ONE, operation, preference_length=length, write_quorum=write_quorum, read_quorum=read_quorum) == 1
            assert replies_needed(Level.ALL, operation, preference_length=length, write_quorum=write_quorum, read_quorum=read_quorum) == length


@given(situations(), levels, operations, quorums, quorums)
def test_plan_asks_live_members_coordinator_first(
    situation: tuple[tuple[Member, ...], Member, frozenset[Member]], level: Level, operation: Operation, write_quorum: int, read_quorum: int
) -> None:
    preference_list, local, up = situation
    plan = plan_request(preference_list, local, up, level, operation, write_quorum=write_quorum, read_quorum=read_quorum)
    live = [member for member in preference_list if member in up]
    everyone = plan.targets + plan.spares + plan.skipped
    assert sorted(everyone) == sorted(preference_list)
    assert set(plan.targets + plan.spares) == set(live)
    assert set(plan.skipped) == set(preference_list) - up
    if local in preference_list:
        assert plan.targets[0] == local
    # Otherwise in preference order.
    assert [member for member in plan.targets + plan.spares if member != local] == [member for member in live if member != local]
    if operation is Operation.WRITE:
        assert plan.spares == ()
    else:
        assert len(plan.targets) == min(plan.needed, len(live))
    assert plan.feasible == (len(live) >= plan.needed)


def test_one_on_a_replica_asks_only_itself() -> None:
    a, b, c = _pool[:3]
    plan = plan_request((a, b, c), b, {a, b, c}, Level.ONE, Operation.READ, write_quorum=2, read_quorum=2)
    assert (plan.targets, plan.spares, plan.needed) == ((b,), (a, c), 1)


_replies = st.sampled_from(list(Reply))


@given(situations(), levels, operations, quorums, quorums, st.lists(st.tuples(st.integers(0, 10), _replies), max_size=20), st.booleans())
def test_counter_decides_exactly(
    situation: tuple[tuple[Member, ...], Member, frozenset[Member]],
    level: Level,
    operation: Operation,
    write_quorum: int,
    read_quorum: int,
    events: list[tuple[int, Reply]],
    deadline: bool,
) -> None:
    """Drive the counter as a network would (replies only from members it
    sent to, duplicates included) and check each decision against the rule."""
    preference_list, local, up = situation
    plan = plan_request(preference_list, local, up, level, operation, write_quorum=write_quorum, read_quorum=read_quorum)
    counter = AckCounter(plan)
    live = len(plan.targets) + len(plan.spares)
    sent: list[Member] = list(counter.take_sends())
    if not plan.feasible:
        assert counter.outcome is Outcome.IMPOSSIBLE and sent == []
        return
    assert sent == list(plan.targets)
    first: dict[Member, Reply] = {}
    decided = Outcome.PENDING
    for index, reply in events:
        if not sent:
            break
        member = sent[index % len(sent)]
        outcome = counter.record(member, reply)
        first.setdefault(member, reply)
        sent.extend(counter.take_sends())
        assert len(sent) == len(set(sent))  # each member asked once
        oks = sum(kind is Reply.OK for kind in first.values())
        lost = sum(kind is not Reply.OK for kind in first.values())
        if decided is Outcome.PENDING:
            if oks >= plan.needed:
                expected = Outcome.SUCCESS
            elif live - lost < plan.needed:
                expected = Outcome.IMPOSSIBLE
            else:
                expected = Outcome.PENDING
            assert outcome is expected, (oks, lost, live, plan.needed)
            decided = outcome
        else:
            assert outcome is decided  # decisions are final
        assert counter.oks == oks
        assert set(counter.unanswered) == set(sent) - set(first)
        if outcome is Outcome.PENDING:
            # Enough members in flight to still succeed.
            assert oks + len(counter.unanswered) >= plan.needed or len(sent) == live
    if deadline:
        outcome = counter.deadline_passed()
        assert outcome is (decided if decided is not Outcome.PENDING else Outcome.IMPOSSIBLE)
        assert counter.unanswered == ()
        assert counter.take_sends() == ()


def test_a_failed_read_target_brings_in_a_spare() -> None:
    a, b, c = _pool[:3]
    counter = AckCounter(plan_request((a, b, c), a, {a, b, c}, Level.QUORUM, Operation.READ, write_quorum=2, read_quorum=2))
    assert counter.take_sends() == (a, b)
    assert counter.ok(a) is Outcome.PENDING
    assert counter.timed_out(b) is Outcome.PENDING
    assert counter.take_sends() == (c,)
    assert counter.ok(c) is Outcome.SUCCESS
    assert counter.ok(b) is Outcome.SUCCESS  # a duplicate/late reply changes nothing


# Read merges, with two model version types: sets under union (dominates =
# superset), and grow-only counters under pointwise max (dominates = pointwise >=).
_sets = st.frozensets(st.integers(0, 6), max_size=5)


def _dominates_set(a: frozenset[int], b: frozenset[int]) -> bool:
    return a >= b


@given(st.dictionaries(st.sampled_from(_pool), st.one_of(st.none(), _sets), max_size=5))
def test_read_merge_with_sets(replies: dict[Member, frozenset[int] | None]) -> None:
    merged = merge_replies(replies, frozenset.union, _dominates_set)
    present = [state for state in replies.values() if state is not None]
    if not present:
        assert merged.state is None and merged.stale == frozenset()
        return
    union = frozenset().union(*present)
    assert merged.state == union
    for member, state in replies.items():
        assert state is None or merged.state >= state  # dominates every reply
        assert (member in merged.stale) == (state != union)  # stale exactly when it lacks something
    # The same replies in another order merge to the same state.
    assert merge_replies(dict(reversed(list(replies.items()))), frozenset.union, _dominates_set) == merged


_counters = st.dictionaries(st.sampled_from("abc"), st.integers(0, 3), max_size=3)


def _join(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {key: max(a.get(key, 0), b.get(key, 0)) for key in a.keys() | b.keys()}


def _dominates_counter(a: dict[str, int], b: dict[str, int]) -> bool:
    return all(a.get(key, 0) >= value for key, value in b.items())


@given(st.dictionaries(st.sampled_from(_pool), st.one_of(st.none(), _counters), min_size=1, max_size=5))
def test_read_merge_with_counters(replies: dict[Member, dict[str, int] | None]) -> None:
    merged = merge_replies(replies, _join, _dominates_counter)
    if merged.state is None:
        assert all(state is None for state in replies.values())
        return
    for member, state in replies.items():
        if state is not None:
            assert _dominates_counter(merged.state, state)
        stale = state is None or any(state.get(key, 0) < value for key, value in merged.state.items())
        assert (member in merged.stale) == stale


@given(situations(), st.integers(0, 16383), st.sampled_from(["none", "moved"]))
def test_route(situation: tuple[tuple[Member, ...], Member, frozenset[Member]], slot: int, redirect: str) -> None:
    preference_list, local, up = situation
    decision = route(slot, preference_list, local, up, redirect=redirect)
    live = [member for member in preference_list if member in up]
    if local in preference_list:
        assert decision == Coordinate()
    elif redirect == "moved":
        assert decision == Moved(slot=slot, to=live[0] if live else preference_list[0])
    elif live:
        assert decision == Forward(to=live[0])
    else:
        assert decision == Coordinate()  # no one to forward to: the plan then has no targets


def test_moved_text_is_redis_shape() -> None:
    assert Moved(slot=3999, to=Member("127.0.0.1", 6381)).error == "MOVED 3999 127.0.0.1:6381"
    assert Moved(slot=1, to=Member("::1", 7000)).error == "MOVED 1 ::1:7000"


def test_level_parse() -> None:
    assert Level.parse("quorum") is Level.QUORUM
    assert Level.parse("All") is Level.ALL


@given(
    st.lists(st.sampled_from(_pool), min_size=1, max_size=6, unique=True),
    st.integers(1, 4),
    st.sampled_from([1, 4, 64]),
    st.sampled_from(_pool),
    st.lists(st.sampled_from(_pool), unique=True),
    quorums,
    quorums,
    st.lists(st.tuples(st.integers(0, 16383), levels, operations), min_size=1, max_size=30),
)
def test_plan_cache_answers_as_plan_request(
    members: list[Member], replicas: int, partition_count: int, local: Member, up_list: list[Member],
    write_quorum: int, read_quorum: int, asks: list[tuple[int, Level, Operation]],
) -> None:
    """The coordinator's cached plans are plan_request's, asked in any order
    (a slot's partition shares its plans), and ``replicates`` is membership."""
    ring = claim(members, replicas=replicas, partition_count=partition_count)
    up = frozenset(up_list) | {local}
    cache = PlanCache(ring, local, up, write_quorum=write_quorum, read_quorum=read_quorum)
    for slot, level, operation in asks + asks:
        preference = ring.preference_list(slot)
        expected = plan_request(
            preference, local, up, level, operation, write_quorum=write_quorum, read_quorum=read_quorum
        )
        assert cache.plan(slot, level, operation) == expected
        assert cache.replicates(slot) == (local in preference)
