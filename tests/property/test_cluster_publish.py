"""How the ring is published (trio_kv/cluster/publish.py): ranges cover every
slot once, sorted and merged; each names its first live preference-list
member; keyless commands cover exactly the published-first partitions; and
redis-py's own NodesManager, fed the ranges as a CLUSTER SLOTS reply, takes
every published primary for a primary (the reason replicas are not listed)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from redis import Redis
from redis.cluster import PRIMARY, ClusterNode, NodesManager

from trio_kv.cluster.publish import FirstFor, SlotRange, publish, published_primaries, published_primary
from trio_kv.cluster.ring import Member, Ring, claim
from trio_kv.cluster.slots import SLOT_COUNT

_members = st.builds(Member, st.sampled_from(["127.0.0.11", "127.0.0.12", "10.0.0.1"]), st.integers(7001, 7012))


@st.composite
def rings_and_liveness(draw: st.DrawFn) -> tuple[Ring, frozenset[Member]]:
    members = draw(st.lists(_members, min_size=1, max_size=8, unique=True))
    ring = claim(members, replicas=draw(st.integers(1, 4)), partition_count=draw(st.sampled_from([1, 2, 8, 64, 256])))
    up = frozenset(draw(st.lists(st.sampled_from(members), unique=True)))
    return ring, up


def _slot_table(ranges: tuple[SlotRange, ...]) -> list[Member]:
    return [slot_range.primary for slot_range in ranges for _ in range(slot_range.start, slot_range.end + 1)]


@given(rings_and_liveness())
def test_ranges_cover_every_slot_once_sorted_and_merged(case: tuple[Ring, frozenset[Member]]) -> None:
    ring, up = case
    ranges = publish(ring, up)
    assert ranges[0].start == 0 and ranges[-1].end == SLOT_COUNT - 1
    for before, after in zip(ranges, ranges[1:]):
        assert after.start == before.end + 1
        assert after.nodes != before.nodes  # adjacent equal ranges are merged
    for slot_range in ranges:
        assert slot_range.start <= slot_range.end
        assert slot_range.nodes == (slot_range.primary,)
        # Ranges are made of whole partitions.
        assert slot_range.start % ring.slots_per_partition == 0
        assert (slot_range.end + 1) % ring.slots_per_partition == 0


@given(rings_and_liveness())
def test_each_slot_publishes_its_first_live_member(case: tuple[Ring, frozenset[Member]]) -> None:
    ring, up = case
    table = _slot_table(publish(ring, up))
    assert len(table) == SLOT_COUNT
    for slot in range(0, SLOT_COUNT, 37):
        preference_list = ring.preference_list(slot)
        live = [member for member in preference_list if member in up]
        assert table[slot] == (live[0] if live else preference_list[0])


@given(rings_and_liveness())
def test_every_live_first_member_is_published_first_somewhere(case: tuple[Ring, frozenset[Member]]) -> None:
    ring, up = case
    primaries = published_primaries(publish(ring, up))
    firsts = {preference_list[0] for preference_list in ring.preference_lists}
    assert {member for member in firsts if member in up} <= primaries
    if up:
        # With anyone up, only live members are published (each list is up or falls back to a live one).
        live_lists = [preference_list for preference_list in ring.preference_lists if set(preference_list) & up]
        assert {published_primary(preference_list, up) for preference_list in live_lists} <= up


@given(rings_and_liveness(), st.data())
def test_first_for_covers_exactly_the_published_slots(case: tuple[Ring, frozenset[Member]], data: st.DataObject) -> None:
    ring, up = case
    table = _slot_table(publish(ring, up))
    member = data.draw(st.sampled_from(ring.members))
    first_for = FirstFor(ring, up, member)
    for slot in range(SLOT_COUNT):
        assert first_for.covers_slot(slot) == (table[slot] == member)
    covered = [slot for first, last in first_for.slot_ranges() for slot in range(first, last + 1)]
    assert covered == [slot for slot in range(SLOT_COUNT) if table[slot] == member]
    # Every slot is covered by exactly one member: a fan-out to all primaries sees each key once.
    owners = [FirstFor(ring, up, candidate) for candidate in ring.members]
    for slot in range(0, SLOT_COUNT, 101):
        assert sum(owner.covers_slot(slot) for owner in owners) == 1


class _AnsweringClient(Redis):
    """A redis-py client that answers CLUSTER SLOTS from a list and never
    opens a socket (redis-py connects lazily)."""

    reply: list[Any] = []

    def execute_command(self, *args: Any, **options: Any) -> Any:
        assert args[0] == "CLUSTER SLOTS", args
        return self.reply


def _cluster_slots_reply(ranges: tuple[SlotRange, ...]) -> list[Any]:
    return [
        [slot_range.start, slot_range.end, *([node.host, node.port, f"{node.port:040x}"] for node in slot_range.nodes)]
        for slot_range in ranges
    ]


def _redis_py_view(ranges: tuple[SlotRange, ...]) -> NodesManager:
    """redis-py's NodesManager.initialize run on ``ranges`` as CLUSTER SLOTS."""
    reply = _cluster_slots_reply(ranges)

    class Manager(NodesManager):
        def create_redis_node(self, host: Any, port: Any, **kwargs: Any) -> Any:
            client = _AnsweringClient(host=host, port=port)
            client.reply = reply
            return client

    first = ranges[0].primary
    return Manager([ClusterNode(first.host, first.port)], require_full_coverage=True)


@settings(max_examples=40, deadline=None)
@given(rings_and_liveness())
def test_redis_py_takes_every_published_primary_for_a_primary(case: tuple[Ring, frozenset[Member]]) -> None:
    ring, up = case
    ranges = publish(ring, up)
    manager = _redis_py_view(ranges)
    primaries = {node.name for node in manager.get_nodes_by_server_type(PRIMARY)}
    assert primaries == {f"{member.host}:{member.port}" for member in published_primaries(ranges)}
    for slot_range in ranges:
        for slot in (slot_range.start, slot_range.end):
            node = manager.get_node_from_slot(slot, read_from_replicas=True)
            assert (node.name, node.server_type) == (f"{slot_range.primary.host}:{slot_range.primary.port}", PRIMARY)


def test_listing_replicas_would_hide_primaries_from_redis_py() -> None:
    """Why replicas are not listed: the same ring with each range's whole
    preference list makes redis-py take members first seen as a replica for
    replicas, so scan_iter (primaries only) would skip their partitions."""
    members = [Member("127.0.0.11", port) for port in (7001, 7002, 7003)]
    ring = claim(members, replicas=3, partition_count=64)
    ranges = tuple(
        SlotRange(*ring.slot_range(partition), preference_list) for partition, preference_list in enumerate(ring.preference_lists)
    )
    manager = _redis_py_view(ranges)
    assert len(manager.get_nodes_by_server_type(PRIMARY)) == 1
    assert len(published_primaries(publish(ring, frozenset(members)))) == 3
