"""The coordinator's replication plumbing in one process, on trio's mock
clock (server/cluster/replicator.py, write_acks.py):

* a job's pairs for a peer go out as one multi-key put, with no task
  waiting for it, and pairs sent before the link's writer takes that put
  join it (up to ``MAX_PAIRS_PER_PUT``); every answer is recorded when the
  link's reader gets it (late ones too); an error answer or a failed link
  fails that write for that peer;
* a refused put (no link, a full link queue) sends nothing;
* ``WriteDeadlines`` decides a batch at its deadline, never before, and
  leaves a batch decided by its acks alone.
"""

from __future__ import annotations

from collections.abc import Callable

import trio
import trio.testing

from trio_kv.cluster.quorum import AckCounter, Level, Operation, Outcome, plan_request
from trio_kv.cluster.ring import Member
from trio_kv.protocol.replies import Error
from trio_kv.protocol.resp_reply import NEED_DATA, ReplyParser
from trio_kv.server.cluster.replicator import MAX_PAIRS_PER_PUT, PeerReplicator
from trio_kv.server.cluster.write_acks import Write, WriteBatch, WriteDeadlines

ME, PEER, OTHER = Member("10.0.0.1", 7001), Member("10.0.0.2", 7001), Member("10.0.0.3", 7001)


def _write(batch: WriteBatch, progress: list[int]) -> Write:
    """A QUORUM write of a 3-member list, acked here already (as the coordinator makes it)."""
    plan = plan_request((ME, PEER, OTHER), ME, {ME, PEER, OTHER}, Level.QUORUM, Operation.WRITE,
                        write_quorum=2, read_quorum=2)
    counter = AckCounter(plan)
    counter.take_sends()
    counter.ok(ME)
    return Write(counter, lambda: progress.append(1), batch)


class FakeLink:
    """send_nowait that keeps each batch until the test takes it (``take``:
    as the link's writer would, encoding it then) and answers it."""

    def __init__(self, *, refuse: bool = False) -> None:
        self.batches: list[tuple[bytes | Callable[[], bytes], Callable[[list[object] | None], None]]] = []
        self.refuse = refuse

    def send_nowait(self, data: bytes | Callable[[], bytes], count: int,
                    on_replies: Callable[[list[object] | None], None]) -> bool:
        if self.refuse:
            return False
        assert count == 1  # a put is one request
        self.batches.append((data, on_replies))
        return True

    def take(self, index: int) -> list[bytes]:
        """Batch ``index``'s one request, decoded (the writer took it)."""
        data, on_replies = self.batches[index]
        if not isinstance(data, bytes):
            data = data()
            self.batches[index] = (data, on_replies)
        parser = ReplyParser()
        parser.receive_data(data)
        request = parser.next_reply()
        assert isinstance(request, list) and parser.next_reply() is NEED_DATA
        return request

    def answer(self, index: int) -> None:
        request = self.take(index)
        replies: list[object] = [Error("ERR no") if key == b"bad" else 1 for key in request[1::2]]
        self.batches[index][1](replies if len(replies) == 1 else [replies])

    def fail(self, index: int) -> None:
        self.batches[index][1](None)


def pairs(*keys: bytes) -> list[tuple[bytes, bytes]]:
    return [(key, b"clock") for key in keys]


def test_a_jobs_pairs_go_as_one_put_and_every_answer_counts() -> None:
    link = FakeLink()
    replicator = PeerReplicator(PEER, link.send_nowait)
    progress: list[int] = []
    batch = WriteBatch()
    writes = [_write(batch, progress) for _ in range(4)]
    batch.check()
    for write in writes:
        write.owed[PEER] = 1
    keys = [b"a", b"b", b"c", b"bad"]
    assert replicator.send(pairs(*keys), writes)
    assert link.take(0) == [b"TKV.REPL.PUT", b"a", b"clock", b"b", b"clock", b"c", b"clock", b"bad", b"clock"]
    assert [write.counter.outcome for write in writes] == [Outcome.PENDING] * 4  # nothing answered yet
    link.answer(0)
    assert [write.counter.outcome for write in writes] == [Outcome.SUCCESS] * 3 + [Outcome.PENDING]
    assert [write.remote_acks(ME) for write in writes] == [1, 1, 1, 0]
    assert len(progress) == 4
    assert batch.pending == 1 and not batch.decided.is_set()  # the error answer decides nothing


def test_sends_before_the_writer_takes_the_put_join_it_and_later_ones_start_another() -> None:
    link = FakeLink()
    replicator = PeerReplicator(PEER, link.send_nowait)
    progress: list[int] = []
    batch = WriteBatch()
    writes = [_write(batch, progress) for _ in range(3)]
    for write in writes:
        write.owed[PEER] = 1
    assert replicator.send(pairs(b"a"), writes[:1])
    assert replicator.send(pairs(b"b"), writes[1:2])
    assert len(link.batches) == 1  # the second joined the first, still queued
    assert link.take(0) == [b"TKV.REPL.PUT", b"a", b"clock", b"b", b"clock"]
    assert replicator.send(pairs(b"c"), writes[2:])  # the first was taken: a new put
    assert len(link.batches) == 2 and link.take(1) == [b"TKV.REPL.PUT", b"c", b"clock"]
    link.answer(1)
    assert [write.remote_acks(ME) for write in writes] == [0, 0, 1]
    link.answer(0)
    assert [write.remote_acks(ME) for write in writes] == [1, 1, 1]


def test_a_put_holds_at_most_its_pairs_bound() -> None:
    link = FakeLink()
    replicator = PeerReplicator(PEER, link.send_nowait)
    batch = WriteBatch()
    writes = [_write(batch, []) for _ in range(MAX_PAIRS_PER_PUT + 1)]
    for index, write in enumerate(writes):
        assert replicator.send(pairs(b"k%d" % index), [write])
    assert len(link.batches) == 2
    assert len(link.take(0)) == 1 + 2 * MAX_PAIRS_PER_PUT and len(link.take(1)) == 3


def test_one_error_for_a_whole_put_fails_each_of_its_pairs() -> None:
    link = FakeLink()
    replicator = PeerReplicator(PEER, link.send_nowait)
    batch = WriteBatch()
    writes = [_write(batch, []) for _ in range(2)]
    for write in writes:
        write.owed[PEER] = 1
    assert replicator.send(pairs(b"a", b"b"), writes)
    link.batches[0][1]([Error("ERR unknown command")])
    assert [write.failed for write in writes] == [{PEER}, {PEER}]


def test_a_refused_put_sends_nothing_and_a_link_failure_fails_the_put() -> None:
    progress: list[int] = []
    batch = WriteBatch()
    writes = [_write(batch, progress) for _ in range(3)]
    assert not PeerReplicator(PEER, FakeLink(refuse=True).send_nowait).send(pairs(b"c"), writes[2:])
    link = FakeLink()
    for write in writes[:2]:
        write.owed[PEER] = 1
    replicator = PeerReplicator(PEER, link.send_nowait)
    assert replicator.send(pairs(b"a", b"b"), writes[:2])
    link.fail(0)  # before the writer took it
    assert len(progress) == 2
    assert [dict(write.counter.replies).get(PEER) is not None for write in writes] == [True, True, False]
    assert writes[0].failed == {PEER} and writes[0].remote_acks(ME) == 0
    # The failed put is closed: the next send queues a new one.
    assert replicator.send(pairs(b"c"), writes[2:]) and len(link.batches) == 2


def test_the_local_ack_may_come_after_a_peers_and_decides_then() -> None:
    # The coordinator sends before its own log flush returns.
    plan = plan_request((ME, PEER, OTHER), ME, {ME, PEER, OTHER}, Level.QUORUM, Operation.WRITE,
                        write_quorum=2, read_quorum=2)
    counter = AckCounter(plan)
    counter.take_sends()
    batch = WriteBatch()
    write = Write(counter, lambda: None, batch, here=True)
    batch.check()
    write.owed[PEER] = 1
    write.answered(PEER, True)
    assert counter.outcome is Outcome.PENDING and not batch.decided.is_set()  # one ack of the two
    write.acked_here(ME)
    assert counter.outcome is Outcome.SUCCESS and batch.decided.is_set()
    assert write.remote_acks(ME) == 1


async def test_deadlines_decide_a_silent_batch_at_its_deadline_only(autojump_clock: trio.testing.MockClock) -> None:
    deadlines = WriteDeadlines(2.0)
    progress: list[int] = []
    silent, acked = WriteBatch(), WriteBatch()
    silent_write, acked_write = _write(silent, progress), _write(acked, progress)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(deadlines.run)
            start = trio.current_time()
            deadlines.add(silent)
            deadlines.add(acked)
            acked_write.owed[PEER] = 1
            await trio.sleep(0.5)
            acked_write.answered(PEER, True)
            assert acked.decided.is_set() and not silent.decided.is_set()
            await silent.decided.wait()
            assert trio.current_time() - start >= 2.0
            assert silent_write.counter.outcome is Outcome.PENDING  # the waiter calls deadline_passed
            # A batch added after the queue emptied is timed out too.
            later = WriteBatch()
            _write(later, progress)
            deadlines.add(later)
            await later.decided.wait()
            nursery.cancel_scope.cancel()
