"""The coordinator's replication plumbing in one process, on trio's mock
clock (server/cluster/replicator.py, write_acks.py):

* a peer's sender takes everything queued while its last batch was in
  flight as one ``request_many``, and records every answer (late ones too);
* a full queue refuses at once (the write counts that peer failed), a link
  failure fails the batch's requests;
* ``WriteDeadlines`` decides a batch at its deadline, never before, and
  leaves a batch decided by its acks alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import trio
import trio.testing

from trio_kv.cluster.quorum import AckCounter, Level, Operation, Outcome, plan_request
from trio_kv.cluster.ring import Member
from trio_kv.protocol.replies import Error
from trio_kv.server.cluster.link import LinkDown
from trio_kv.server.cluster.replicator import PeerReplicator
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


class FakePeer:
    """request_many that waits for the test to answer each call."""

    def __init__(self) -> None:
        self.calls: list[list[Sequence[bytes]]] = []
        self.release = trio.Event()
        self.fail = False

    async def request_many(self, requests: Sequence[Sequence[bytes]]) -> list[object]:
        self.calls.append(list(requests))
        await self.release.wait()
        if self.fail:
            raise LinkDown("peer gone")
        return [Error("ERR no") if request[1] == b"bad" else 1 for request in requests]


async def test_writes_queued_during_a_round_trip_travel_together_and_every_answer_counts() -> None:
    peer = FakePeer()
    replicator = PeerReplicator(PEER, peer.request_many, senders=1)
    progress: list[int] = []
    batch = WriteBatch()
    writes = [_write(batch, progress) for _ in range(4)]
    batch.check()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(replicator.run)
            for key, write in zip([b"a", b"b", b"c", b"bad"], writes):
                write.owed[PEER] = 1
                assert replicator.send([b"TKV.REPL.PUT", key, b"clock"], write)
                if key == b"a":
                    await trio.testing.wait_all_tasks_blocked()  # the first goes alone
            await trio.testing.wait_all_tasks_blocked()
            assert [len(call) for call in peer.calls] == [1]
            peer.release.set()
            await trio.testing.wait_all_tasks_blocked()
            assert [len(call) for call in peer.calls] == [1, 3]
            nursery.cancel_scope.cancel()
    assert [write.counter.outcome for write in writes] == [Outcome.SUCCESS] * 3 + [Outcome.PENDING]
    assert [write.remote_acks(ME) for write in writes] == [1, 1, 1, 0]
    assert len(progress) == 4


async def test_a_full_queue_refuses_and_a_link_failure_fails_the_batch() -> None:
    peer = FakePeer()
    replicator = PeerReplicator(PEER, peer.request_many, capacity=2, senders=1)
    progress: list[int] = []
    batch = WriteBatch()
    writes = [_write(batch, progress) for _ in range(3)]
    assert replicator.send([b"TKV.REPL.PUT", b"a", b"c"], writes[0])
    assert replicator.send([b"TKV.REPL.PUT", b"b", b"c"], writes[1])
    assert not replicator.send([b"TKV.REPL.PUT", b"c", b"c"], writes[2])
    assert replicator.queued == 2
    peer.fail = True
    peer.release.set()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            for write in writes[:2]:
                write.owed[PEER] = 1
            nursery.start_soon(replicator.run)
            while len(progress) < 2:
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    assert [dict(write.counter.replies).get(PEER) is not None for write in writes] == [True, True, False]
    assert writes[0].failed == {PEER} and writes[0].remote_acks(ME) == 0


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
