"""The coordinator's replication plumbing in one process, on trio's mock
clock (server/cluster/replicator.py, write_acks.py):

* a job's requests for a peer go out as one batch, with no task waiting
  for it, and every answer is recorded when the link's reader gets it
  (late ones too); an error answer or a failed link fails that write for
  that peer;
* a refused batch (no link, a full link queue) sends nothing;
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
from trio_kv.server.cluster.replicator import PeerReplicator, repl_put
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
    """send_nowait that keeps each batch (decoded) until the test answers it."""

    def __init__(self, *, refuse: bool = False) -> None:
        self.batches: list[tuple[list[list[bytes]], Callable[[list[object] | None], None]]] = []
        self.refuse = refuse

    def send_nowait(self, data: bytes, count: int, on_replies: Callable[[list[object] | None], None]) -> bool:
        if self.refuse:
            return False
        parser = ReplyParser()
        parser.receive_data(data)
        requests = []
        while (request := parser.next_reply()) is not NEED_DATA:
            assert isinstance(request, list)
            requests.append(request)
        assert len(requests) == count
        self.batches.append((requests, on_replies))
        return True

    def answer(self, index: int) -> None:
        requests, on_replies = self.batches[index]
        on_replies([Error("ERR no") if request[1] == b"bad" else 1 for request in requests])

    def fail(self, index: int) -> None:
        self.batches[index][1](None)


def test_a_jobs_requests_go_as_one_batch_and_every_answer_counts() -> None:
    link = FakeLink()
    replicator = PeerReplicator(PEER, link.send_nowait)
    progress: list[int] = []
    batch = WriteBatch()
    writes = [_write(batch, progress) for _ in range(4)]
    batch.check()
    for write in writes:
        write.owed[PEER] = 1
    keys = [b"a", b"b", b"c", b"bad"]
    assert replicator.send([repl_put(key, b"clock") for key in keys], writes)
    assert [requests for requests, _ in link.batches] == [[[b"TKV.REPL.PUT", key, b"clock"] for key in keys]]
    assert [write.counter.outcome for write in writes] == [Outcome.PENDING] * 4  # nothing answered yet
    link.answer(0)
    assert [write.counter.outcome for write in writes] == [Outcome.SUCCESS] * 3 + [Outcome.PENDING]
    assert [write.remote_acks(ME) for write in writes] == [1, 1, 1, 0]
    assert len(progress) == 4
    assert batch.pending == 1 and not batch.decided.is_set()  # the error answer decides nothing


def test_a_refused_batch_sends_nothing_and_a_link_failure_fails_the_batch() -> None:
    progress: list[int] = []
    batch = WriteBatch()
    writes = [_write(batch, progress) for _ in range(3)]
    assert not PeerReplicator(PEER, FakeLink(refuse=True).send_nowait).send(
        [repl_put(b"c", b"c")], writes[2:])
    link = FakeLink()
    for write in writes[:2]:
        write.owed[PEER] = 1
    assert PeerReplicator(PEER, link.send_nowait).send(
        [repl_put(b"a", b"c"), repl_put(b"b", b"c")], writes[:2])
    link.fail(0)
    assert len(progress) == 2
    assert [dict(write.counter.replies).get(PEER) is not None for write in writes] == [True, True, False]
    assert writes[0].failed == {PEER} and writes[0].remote_acks(ME) == 0


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
