"""``server/cluster/write_acks.py``: a write and its batch leave no
reference cycle behind (the cyclic collector never has to free them), and
a write decided after its batch is gone wakes nobody."""

from __future__ import annotations

import gc

from trio_kv.cluster.quorum import AckCounter, Level, Operation, Outcome, plan_request
from trio_kv.cluster.ring import Member
from trio_kv.server.cluster.write_acks import LastWrite, Write, WriteBatch

ME, PEER, OTHER = Member("10.0.0.1", 7001), Member("10.0.0.2", 7001), Member("10.0.0.3", 7001)


def _write(batch: WriteBatch) -> Write:
    """A QUORUM write of a 3-member list, acked here already (as the coordinator makes it)."""
    plan = plan_request((ME, PEER, OTHER), ME, {ME, PEER, OTHER}, Level.QUORUM, Operation.WRITE,
                        write_quorum=2, read_quorum=2)
    counter = AckCounter(plan)
    counter.take_sends()
    counter.ok(ME)
    write = Write(counter, lambda: None, batch)
    write.owed = {PEER: 1, OTHER: 1}
    return write


def test_writes_and_their_batches_leave_no_reference_cycles() -> None:
    gc.collect()
    gc.disable()
    try:
        kept = []
        for _ in range(100):
            batch = WriteBatch()
            write = _write(batch)
            write.answered(PEER, True)
            assert batch.decided.is_set()
            kept.append(LastWrite(batch.writes))  # what a connection keeps for WAIT
            del batch, write
        kept.clear()
        garbage = gc.collect()
    finally:
        gc.enable()
    assert garbage == 0


def test_a_write_decided_after_its_batch_is_gone_still_counts_for_wait() -> None:
    batch = WriteBatch()
    write = _write(batch)
    last = LastWrite(batch.writes)
    del batch
    write.answered(PEER, True)
    write.answered(OTHER, True)
    assert write.counter.outcome is Outcome.SUCCESS
    assert last.replicas(ME) == 2
