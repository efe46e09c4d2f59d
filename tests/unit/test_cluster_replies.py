"""CLUSTER SLOTS / SHARDS / NODES / INFO / REPLICAS built from a view
(commands/cluster_replies.py): the one-node view, and a hand-made view of
three members with replicas, one of them down. Expectations are derived
from the view's ring, so they hold for any claim."""

from __future__ import annotations

import pytest

from trio_kv.cluster.ring import Member, Ring, claim
from trio_kv.cluster.slots import SLOT_COUNT
from trio_kv.cluster.view import ClusterView, emulated
from trio_kv.commands.cluster_replies import (
    cluster_info,
    cluster_nodes,
    cluster_replicas,
    cluster_shards,
    cluster_slots,
    slot_ranges,
)
from trio_kv.protocol.replies import Error, Map

A, B, C = Member("10.0.0.1", 7001), Member("10.0.0.2", 7002), Member("10.0.0.3", 7003)
IDS = {A: "a" * 40, B: "b" * 40, C: "c" * 40}


def _view(up: set[Member], ring: Ring | None = None) -> ClusterView:
    ring = ring or claim([A, B, C], replicas=2, partition_count=8)
    return ClusterView(myself=A, ring=ring, node_ids=IDS, up=frozenset(up))


def _info(view: ClusterView) -> dict[str, str]:
    return dict(line.split(":", 1) for line in cluster_info(view).split("\r\n") if line)


def test_one_node_owns_every_slot() -> None:
    view = emulated(Member("127.0.0.1", 7000), "f" * 40)
    assert cluster_slots(view) == [[0, 16383, [b"127.0.0.1", 7000, b"f" * 40, Map([])]]]
    assert cluster_nodes(view) == f"{'f' * 40} 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-16383\n"
    [shard] = cluster_shards(view)
    assert dict(shard.pairs)[b"slots"] == [0, 16383]
    [node] = dict(shard.pairs)[b"nodes"]
    assert dict(node.pairs) == {
        b"id": b"f" * 40, b"port": 7000, b"ip": b"127.0.0.1", b"endpoint": b"127.0.0.1", b"role": b"master",
        b"replication-offset": 0, b"health": b"online",
    }
    info = _info(view)
    assert info["cluster_state"] == "ok" and info["cluster_known_nodes"] == "1" and info["cluster_size"] == "1"
    assert cluster_replicas(view, b"f" * 40) == []
    assert cluster_replicas(view, b"nosuch") == Error("ERR Unknown node nosuch")


def _published_first(view: ClusterView, slot: int) -> Member:
    return next(member for member in view.ring.preference_list(slot) if member in view.up)


def test_three_members_with_replicas_all_up() -> None:
    view = _view({A, B, C})
    slots = cluster_slots(view)
    # Contiguous ranges covering every slot, each naming its preference
    # list's first member only (cluster.publish: replicas are not listed).
    assert slots[0][0] == 0 and slots[-1][1] == SLOT_COUNT - 1
    assert all(left[1] + 1 == right[0] for left, right in zip(slots, slots[1:]))
    for entry in slots:
        first = view.ring.preference_list(entry[0])[0]
        assert view.ring.preference_list(entry[1])[0] == first
        assert [(node[0].decode(), node[1], node[2].decode()) for node in entry[2:]] == [
            (first.host, first.port, IDS[first])
        ]
    lines = cluster_nodes(view).splitlines()
    assert len(lines) == 3 and sum(" myself," in line for line in lines) == 1
    for member in (A, B, C):
        [line] = [line for line in lines if line.startswith(IDS[member])]
        fields = line.split(" ")
        assert fields[1] == f"{member.host}:{member.port}@{member.port + 10000}"
        assert fields[2].endswith("master") and fields[3] == "-" and fields[7] == "connected"
        owned = sum(entry[1] - entry[0] + 1 for entry in slots if entry[2][2] == IDS[member].encode())
        shown = 0
        for text in fields[8:]:
            start, _, end = text.partition("-")
            shown += int(end or start) - int(start) + 1
        assert shown == owned
    primaries = {entry[2][2] for entry in slots}
    info = _info(view)
    assert info["cluster_known_nodes"] == "3" and info["cluster_size"] == str(len(primaries))
    assert info["cluster_slots_ok"] == str(SLOT_COUNT) and info["cluster_state"] == "ok"
    shards = cluster_shards(view)
    assert len(shards) == 3
    assert sorted(sum((dict(shard.pairs)[b"slots"][1::2] for shard in shards), [])) == sorted(e[1] for e in slots)
    for shard in shards:
        [node] = dict(shard.pairs)[b"nodes"]
        assert dict(node.pairs)[b"role"] == b"master" and dict(node.pairs)[b"health"] == b"online"
    assert cluster_replicas(view, IDS[B].encode()) == []


def test_a_member_down_is_not_published() -> None:
    view = _view({A, C})
    for entry in cluster_slots(view):
        assert entry[2][2] == IDS[_published_first(view, entry[0])].encode() != IDS[B].encode()
    [line] = [line for line in cluster_nodes(view).splitlines() if line.startswith(IDS[B])]
    fields = line.split(" ")
    assert fields[2] == "master,fail?" and fields[7] == "disconnected" and len(fields) == 8  # no slots
    assert _info(view)["cluster_state"] == "ok"  # every partition still has a live member
    [shard] = [s for s in cluster_shards(view) if dict(dict(s.pairs)[b"nodes"][0].pairs)[b"id"] == IDS[B].encode()]
    assert dict(shard.pairs)[b"slots"] == [] and dict(dict(shard.pairs)[b"nodes"][0].pairs)[b"health"] == b"fail"


def test_slots_with_no_live_member_make_the_state_fail() -> None:
    ring = claim([A, B, C], replicas=1, partition_count=8)
    view = _view({A}, ring)
    info = _info(view)
    lost = sum(r.end - r.start + 1 for r in slot_ranges(view) if r.primary != A)
    assert lost > 0
    assert info["cluster_state"] == "fail" and info["cluster_slots_pfail"] == str(lost)
    assert int(info["cluster_slots_ok"]) + lost == SLOT_COUNT


def test_a_member_that_is_never_first_is_a_master_without_slots() -> None:
    # Every partition lists A then B.
    ring = Ring(epoch=3, members=(A, B), partition_count=4, preference_lists=((A, B),) * 4)
    view = ClusterView(myself=B, ring=ring, node_ids=IDS, up=frozenset({A, B}))
    assert [(r.start, r.end, r.primary) for r in slot_ranges(view)] == [(0, 16383, A)]  # merged into one range
    lines = {line.split(" ")[0]: line for line in cluster_nodes(view).splitlines()}
    assert lines[IDS[B]] == f"{IDS[B]} 10.0.0.2:7002@17002 myself,master - 0 0 3 connected"
    assert lines[IDS[A]] == f"{IDS[A]} 10.0.0.1:7001@17001 master - 0 0 3 connected 0-16383"
    assert cluster_replicas(view, IDS[A].encode()) == []
    assert _info(view)["cluster_size"] == "1" and _info(view)["cluster_my_epoch"] == "3"


@pytest.mark.parametrize("host", ["", "::1"])
def test_hosts_are_shown_as_the_view_has_them(host: str) -> None:
    view = emulated(Member(host, 7000), "f" * 40)
    assert cluster_slots(view)[0][2][0] == host.encode()
    assert cluster_nodes(view).split(" ")[1] == f"{host}:7000@17000"
