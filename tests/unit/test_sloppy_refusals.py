"""Sloppy quorum on the coordinator's data path (server/cluster/coordinator.py
``_replicate``), with fake links: a preference-list member believed down
has its share sent to its plan's fallback as TKV.HINT; members believed up
whose links refuse the put, or fail with it in flight, have theirs
diverted to the next healthy nodes of the ring walk, one distinct fallback
per member and write (a write's keys for one member go to the same one),
and the fallbacks' acks make the W=2 write succeed; without the option a
refusal fails the write."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

from trio_kv.cluster.fallbacks import walk_order
from trio_kv.cluster.quorum import Level, Outcome, PlanCache
from trio_kv.cluster.ring import Member, claim
from trio_kv.cluster.slots import key_slot
from trio_kv.protocol.resp_reply import ReplyParser
from trio_kv.server.cluster.coordinator import Coordinator

MEMBERS = [Member("127.0.0.1", 7001 + index) for index in range(5)]
RING = claim(MEMBERS, replicas=3, partition_count=64)


class Link:
    def __init__(self, refuse: bool) -> None:
        self.refuse = refuse
        self.sent: list[tuple[bytes, object]] = []

    def send_nowait(self, data, count, on_replies) -> bool:
        if self.refuse:
            return False
        self.sent.append((data if isinstance(data, bytes) else data(), on_replies))
        return True

    def requests(self) -> list[list[bytes]]:
        decoded = []
        for data, _ in self.sent:
            parser = ReplyParser()
            parser.receive_data(data)
            decoded.append(parser.next_reply())
        return decoded


def _coordinator(links: dict[Member, Link], sloppy: bool) -> Coordinator:
    coordinator = Coordinator.__new__(Coordinator)
    coordinator.node = SimpleNamespace(links=links)
    coordinator.hints = None
    coordinator.counts = defaultdict(int)
    coordinator.sloppy_quorum = sloppy
    coordinator._fallback_sender = None
    coordinator._replicators = {}
    coordinator._waits = 0
    return coordinator


def _keys_of(partition_members: set[Member], count: int = 1) -> list[bytes]:
    keys = []
    for index in range(100_000):
        key = f"k{index}".encode()
        if set(RING.preference_list(key_slot(key))) == partition_members:
            keys.append(key)
            if len(keys) == count:
                return keys
    raise AssertionError("no such key")


def _key_of(partition_members: set[Member]) -> bytes:
    return _keys_of(partition_members)[0]


def _replicate(sloppy: bool, up: set[Member], refusing: set[Member], keys: int = 1):
    local = MEMBERS[0]
    chosen = _keys_of({MEMBERS[0], MEMBERS[1], MEMBERS[2]}, keys)
    # One partition: one Write for all the keys.
    chosen = [key for key in chosen if RING.partition_of_slot(key_slot(key)) == RING.partition_of_slot(key_slot(chosen[0]))]
    key = chosen[0]
    links = {member: Link(member in refusing) for member in MEMBERS[1:]}
    coordinator = _coordinator(links, sloppy)
    plans = PlanCache(RING, local, frozenset(up), write_quorum=2, read_quorum=2, sloppy=sloppy)
    coordinator.node.view = lambda: None
    coordinator.plans = lambda view: plans
    job = SimpleNamespace(version_deltas=[(0, [(each, b"clock") for each in chosen])])
    _batch, by_reply = coordinator._replicate(job, Level.QUORUM, plans)
    [(_index, [write])] = by_reply
    write.acked_here(local)
    walk = walk_order(RING, RING.partition_of_slot(key_slot(key)))
    return key, links, write, walk, coordinator


def test_refused_members_are_diverted_to_distinct_fallbacks_and_their_acks_count() -> None:
    key, links, write, walk, coordinator = _replicate(True, set(MEMBERS), refusing={MEMBERS[1], MEMBERS[2]})
    assert len(walk) == 2
    first, second = walk
    assert links[first].requests() == [[b"TKV.HINT", MEMBERS[1].address.encode(), key, b"clock"]]
    assert links[second].requests() == [[b"TKV.HINT", MEMBERS[2].address.encode(), key, b"clock"]]
    assert write.counter.outcome is Outcome.PENDING
    _data, on_replies = links[first].sent[0]
    on_replies([[1]])
    assert write.counter.outcome is Outcome.SUCCESS
    assert coordinator.counts["fallback_pairs"] == 2


def test_a_member_believed_down_goes_to_its_plans_fallback() -> None:
    up = set(MEMBERS) - {MEMBERS[1]}
    key, links, write, walk, _ = _replicate(True, up, refusing=set())
    assert links[walk[0]].requests() == [[b"TKV.HINT", MEMBERS[1].address.encode(), key, b"clock"]]
    assert links[MEMBERS[2]].requests() == [[b"TKV.REPL.PUT", key, b"clock"]]
    assert links[walk[1]].sent == []


def test_without_sloppy_quorum_refusals_fail_the_write() -> None:
    _key, links, write, walk, coordinator = _replicate(False, set(MEMBERS), refusing={MEMBERS[1], MEMBERS[2]})
    assert write.counter.outcome is Outcome.IMPOSSIBLE
    assert all(links[member].sent == [] for member in walk)
    assert coordinator.counts["fallback_pairs"] == 0


def test_a_failed_link_diverts_its_put_to_a_fallback() -> None:
    key, links, write, walk, coordinator = _replicate(True, set(MEMBERS), refusing=set())
    for member in (MEMBERS[1], MEMBERS[2]):
        assert links[member].requests() == [[b"TKV.REPL.PUT", key, b"clock"]]
        _data, on_replies = links[member].sent[0]
        on_replies(None)  # the link failed with the put in flight
    assert links[walk[0]].requests() == [[b"TKV.HINT", MEMBERS[1].address.encode(), key, b"clock"]]
    assert links[walk[1]].requests() == [[b"TKV.HINT", MEMBERS[2].address.encode(), key, b"clock"]]
    assert write.counter.outcome is Outcome.PENDING
    links[walk[1]].sent[0][1]([[1]])
    assert write.counter.outcome is Outcome.SUCCESS


def test_a_writes_keys_for_one_member_share_its_fallback() -> None:
    _key, links, write, walk, _ = _replicate(True, set(MEMBERS), refusing={MEMBERS[1]}, keys=40)
    [request] = links[walk[0]].requests()
    assert request[:2] == [b"TKV.HINT", MEMBERS[1].address.encode()] and len(request) > 4
    assert links[walk[1]].sent == []
