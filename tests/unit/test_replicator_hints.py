"""Where hints are born on the data path (server/cluster/replicator.py):
a peer that did not ack for sure (refused batch, failed link, error
answer) has those requests handed to the hint callback; acked requests,
and requests still unanswered, are not."""

from __future__ import annotations

from collections.abc import Callable

from trio_kv.cluster.quorum import AckCounter, Level, Operation, plan_request
from trio_kv.cluster.ring import Member
from trio_kv.protocol.replies import Error
from trio_kv.server.cluster.replicator import PeerReplicator, repl_put
from trio_kv.server.cluster.write_acks import Write, WriteBatch

ME, PEER, OTHER = Member("10.0.0.1", 7001), Member("10.0.0.2", 7001), Member("10.0.0.3", 7001)
OnReplies = Callable[[list[object] | None], None]


def _writes(count: int) -> tuple[WriteBatch, list[Write]]:
    batch = WriteBatch()
    plan = plan_request((ME, PEER, OTHER), ME, {ME, PEER, OTHER}, Level.QUORUM, Operation.WRITE,
                        write_quorum=2, read_quorum=2)
    writes = []
    for _ in range(count):
        counter = AckCounter(plan)
        counter.take_sends()
        write = Write(counter, lambda: None, batch)
        write.owed[PEER] = 1
        writes.append(write)
    return batch, writes


class Sent:
    def __init__(self, accept: bool = True) -> None:
        self.accept = accept
        self.on_replies: list[OnReplies] = []

    def __call__(self, data: bytes, count: int, on_replies: OnReplies) -> bool:
        if self.accept:
            self.on_replies.append(on_replies)
        return self.accept


def _replicator(sent: Sent) -> tuple[PeerReplicator, list[tuple[Member, list[bytes]]]]:
    hinted: list[tuple[Member, list[bytes]]] = []
    return PeerReplicator(PEER, sent, lambda member, requests: hinted.append((member, list(requests)))), hinted


REQUESTS = [repl_put(b"a", b"1"), repl_put(b"b", b"2"), repl_put(b"c", b"3")]


def test_acked_requests_are_not_hinted_and_unanswered_ones_not_yet() -> None:
    sent = Sent()
    replicator, hinted = _replicator(sent)
    _batch, writes = _writes(3)
    assert replicator.send(REQUESTS, writes)
    assert hinted == []  # in flight: no hint
    sent.on_replies[0]([1, 0, 1])
    assert hinted == []


def test_error_answers_hint_just_those_requests() -> None:
    sent = Sent()
    replicator, hinted = _replicator(sent)
    _batch, writes = _writes(3)
    replicator.send(REQUESTS, writes)
    sent.on_replies[0]([1, Error("ERR invalid clock: x"), None])
    assert hinted == [(PEER, REQUESTS[1:])]


def test_a_failed_link_hints_the_whole_batch() -> None:
    sent = Sent()
    replicator, hinted = _replicator(sent)
    _batch, writes = _writes(3)
    replicator.send(REQUESTS, writes)
    sent.on_replies[0](None)
    assert hinted == [(PEER, REQUESTS)]


def test_a_refused_batch_is_hinted_at_once() -> None:
    replicator, hinted = _replicator(Sent(accept=False))
    _batch, writes = _writes(3)
    assert not replicator.send(REQUESTS, writes)
    assert hinted == [(PEER, REQUESTS)]


def test_without_a_hint_callback_nothing_changes() -> None:
    sent = Sent()
    replicator = PeerReplicator(PEER, sent)
    _batch, writes = _writes(3)
    replicator.send(REQUESTS, writes)
    sent.on_replies[0](None)
    assert all(write.failed == {PEER} for write in writes)
