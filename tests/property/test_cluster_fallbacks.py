"""Sloppy quorum's fallback choice (trio_kv/cluster/fallbacks.py) and the
write plans that use it (``PlanCache(sloppy=True)``, quorum.py): the walk
holds every member outside the preference list once, in ring order; the
fallbacks are healthy, distinct, never a preference-list member nor the
coordinator, taken in walk order for the down members in list order; a
sloppy write plan counts them toward W (and its ack counter records a
fallback's answer as its member's); reads and sloppy-off plans are
unchanged."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from trio_kv.cluster.fallbacks import choose_fallbacks, walk_order
from trio_kv.cluster.quorum import AckCounter, Level, Operation, Outcome, PlanCache, plan_request
from trio_kv.cluster.ring import Member, claim

_pool = [Member("127.0.0.11", 7001 + index) for index in range(8)]

rings = st.builds(
    lambda members, replicas, partitions: claim(members, replicas=replicas, partition_count=partitions),
    st.lists(st.sampled_from(_pool), min_size=1, max_size=8, unique=True),
    st.integers(1, 4),
    st.sampled_from([1, 2, 8, 64]),
)


@given(rings, st.data())
def test_the_walk_is_every_other_member_once_in_ring_order(ring, data: st.DataObject) -> None:
    partition = data.draw(st.integers(0, ring.partition_count - 1))
    walk = walk_order(ring, partition)
    preference = ring.preference_lists[partition]
    assert sorted(walk) == sorted(set(ring.members) - set(preference))
    assert len(set(walk)) == len(walk)
    # Ring order: the first members met are those of the next partitions' lists.
    expected: list[Member] = []
    for step in range(1, ring.partition_count):
        for member in ring.preference_lists[(partition + step) % ring.partition_count]:
            if member not in preference and member not in expected:
                expected.append(member)
    assert list(walk[: len(expected)]) == expected
    assert walk == walk_order(ring, partition)


@given(rings, st.data())
def test_fallbacks_are_healthy_distinct_outsiders_in_walk_order(ring, data: st.DataObject) -> None:
    partition = data.draw(st.integers(0, ring.partition_count - 1))
    preference = ring.preference_lists[partition]
    local = data.draw(st.sampled_from(ring.members))
    up = frozenset(data.draw(st.lists(st.sampled_from(ring.members), unique=True))) | {local}
    down = tuple(member for member in preference if member not in up)
    taken = frozenset(data.draw(st.lists(st.sampled_from(ring.members), unique=True)))
    walk = walk_order(ring, partition)
    chosen = choose_fallbacks(walk, down, up, local, taken=taken)
    fallbacks = [fallback for _member, fallback in chosen]
    assert len(set(fallbacks)) == len(fallbacks)
    for member, fallback in chosen:
        assert fallback in up and fallback != local and fallback not in taken
        assert fallback not in preference
    # The down members in list order, each given the next healthy member of the walk.
    healthy = [member for member in walk if member in up and member != local and member not in taken]
    assert [member for member, _ in chosen] == list(down[: len(healthy)])
    assert fallbacks == healthy[: len(down)]


@given(rings, st.data(), st.sampled_from(list(Level)), st.integers(1, 4))
def test_sloppy_write_plans_count_fallbacks_toward_w(ring, data: st.DataObject, level: Level, quorum: int) -> None:
    local = data.draw(st.sampled_from(ring.members))
    up = frozenset(data.draw(st.lists(st.sampled_from(ring.members), unique=True))) | {local}
    slot = data.draw(st.integers(0, 16383))
    strict = PlanCache(ring, local, up, write_quorum=quorum, read_quorum=quorum)
    sloppy = PlanCache(ring, local, up, write_quorum=quorum, read_quorum=quorum, sloppy=True)
    preference = ring.preference_list(slot)
    expected = plan_request(preference, local, up, level, Operation.WRITE, write_quorum=quorum, read_quorum=quorum)
    assert strict.plan(slot, level, Operation.WRITE) == expected
    # Reads never use fallbacks.
    assert sloppy.plan(slot, level, Operation.READ) == strict.plan(slot, level, Operation.READ)
    plan = sloppy.plan(slot, level, Operation.WRITE)
    assert plan.targets == expected.targets and plan.needed == expected.needed
    covered = [member for member, _ in plan.fallbacks]
    assert sorted(covered + list(plan.skipped)) == sorted(expected.skipped)
    assert plan.fallbacks == choose_fallbacks(
        walk_order(ring, ring.partition_of_slot(slot)), expected.skipped, up, local
    )
    assert plan.feasible == (len(expected.targets) + len(plan.fallbacks) >= expected.needed)
    # The counter asks the members with a fallback too; their fallback's ack is theirs.
    counter = AckCounter(plan)
    assert counter.asked == [*plan.targets, *covered]
    assert counter.take_sends() == (plan.targets if plan.feasible else ())
    if plan.feasible:
        for member in counter.asked[: plan.needed]:
            counter.ok(member)
        assert counter.outcome is Outcome.SUCCESS
    else:
        assert counter.outcome is Outcome.IMPOSSIBLE


def test_four_nodes_two_down_a_w2_write_becomes_feasible() -> None:
    a, b, c, d = _pool[:4]
    ring = claim([a, b, c, d], replicas=3, partition_count=64)
    partition = next(index for index, members in enumerate(ring.preference_lists) if set(members) == {a, b, c})
    slot = partition * ring.slots_per_partition
    up = frozenset([a, d])
    assert not PlanCache(ring, a, up, write_quorum=2, read_quorum=2).plan(slot, Level.QUORUM, Operation.WRITE).feasible
    plan = PlanCache(ring, a, up, write_quorum=2, read_quorum=2, sloppy=True).plan(slot, Level.QUORUM, Operation.WRITE)
    assert plan.feasible and plan.targets == (a,)
    # One node outside the list: one fallback, the other down member is hinted by the coordinator.
    assert [fallback for _, fallback in plan.fallbacks] == [d]
    assert len(plan.skipped) == 1
