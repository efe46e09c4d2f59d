"""cluster.batch.plan_batch: where each request of a pipeline runs."""

from __future__ import annotations

from trio_kv.cluster.batch import LOCAL, plan_batch
from trio_kv.cluster.quorum import Forward, Moved
from trio_kv.cluster.ring import Member, claim
from trio_kv.cluster.slots import key_slot

MEMBERS = [Member(f"127.0.0.{i}", 7000) for i in (11, 12, 13)]
RING = claim(MEMBERS, replicas=2, partition_count=64)
ME = MEMBERS[0]
UP = frozenset(MEMBERS)


def key_of(args):
    return args[1] if len(args) > 1 and args[0].lower() in (b"get", b"set") else None


def mine_and_not_mine() -> tuple[bytes, bytes]:
    mine = other = None
    for i in range(10_000):
        key = b"k%d" % i
        members = RING.preference_list(key_slot(key))
        if ME in members and mine is None:
            mine = key
        if ME not in members and other is None:
            other = key
    assert mine is not None and other is not None
    return mine, other


def test_keys_route_local_or_forward_and_keyless_run_here() -> None:
    mine, other = mine_and_not_mine()
    requests = [[b"SET", mine, b"1"], [b"GET", other], [b"PING"]]
    (segment,) = plan_batch(requests, key_of, RING, ME, UP, redirect="none", whole_batch_local=False)
    assert segment.indexes == (0, 1, 2)
    first_live = RING.preference_list(key_slot(other))[0]
    assert segment.routes == (LOCAL, Forward(first_live), LOCAL)


def test_moved_with_redirect_moved() -> None:
    _, other = mine_and_not_mine()
    (segment,) = plan_batch([[b"GET", other]], key_of, RING, ME, UP, redirect="moved", whole_batch_local=False)
    assert isinstance(segment.routes[0], Moved) and segment.routes[0].slot == key_slot(other)


def test_barriers_cut_the_batch() -> None:
    mine, other = mine_and_not_mine()
    requests = [[b"SET", mine, b"1"], [b"WAIT", b"1", b"0"], [b"TKV.CONSISTENCY", b"ALL"], [b"GET", other]]
    segments = plan_batch(requests, key_of, RING, ME, UP, redirect="none", whole_batch_local=False)
    assert [(s.indexes, s.barrier_index) for s in segments] == [((0,), 1), ((), 2), ((3,), None)]


def test_session_commands_and_transactions_keep_the_batch_here_whole() -> None:
    _, other = mine_and_not_mine()
    for requests, whole in (([[b"MULTI"], [b"GET", other], [b"EXEC"]], False), ([[b"GET", other]], True)):
        (segment,) = plan_batch(requests, key_of, RING, ME, UP, redirect="none", whole_batch_local=whole)
        assert segment.routes == (LOCAL,) * len(requests)
