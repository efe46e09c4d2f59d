"""The ring's interface, whatever claim fills it: N distinct members per
partition, contiguous slot ranges, addresses parsed strictly."""

from __future__ import annotations

import pytest

from trio_kv.cluster.ring import Member, claim
from trio_kv.cluster.slots import SLOT_COUNT
from trio_kv.cluster.view import emulated


def test_every_partition_has_distinct_members() -> None:
    members = [Member("127.0.0.1", port) for port in (7003, 7001, 7002, 7004)]
    ring = claim(members, replicas=3, partition_count=64)
    assert ring.members == tuple(sorted(members))
    for preference in ring.preference_lists:
        assert len(set(preference)) == 3
    assert ring.slot_range(0) == (0, 255)
    assert ring.slot_range(63) == (16128, 16383)
    assert ring.preference_list(16383) == ring.preference_lists[63]
    assert claim(reversed(members), replicas=3) == ring


def test_fewer_members_than_replicas() -> None:
    ring = claim([Member("h", 1)], replicas=3)
    assert all(len(p) == 1 for p in ring.preference_lists)


def test_emulated_owns_every_slot() -> None:
    me = Member("127.0.0.1", 7000)
    view = emulated(me, "a" * 40)
    assert view.ring.slot_range(0) == (0, SLOT_COUNT - 1)
    assert view.my_id == "a" * 40


@pytest.mark.parametrize("text", ["nohost", ":7000", "h:0", "h:x", "h:65535"])
def test_member_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        Member.parse(text)


def test_member_parse_ipv6() -> None:
    assert Member.parse("[::1]:7000") == Member("::1", 7000)
