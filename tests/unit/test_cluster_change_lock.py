"""The ring-change lock (trio_kv/server/cluster/change_lock.py): a
compare-and-set on the member's epoch, one change at a time, expiring,
moot once the member adopts a later epoch; a locked member refuses another
change's ring of the next epoch."""

from __future__ import annotations

from trio_kv.server.cluster.change_lock import ChangeLock


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _lock(epoch: list[int]) -> tuple[ChangeLock, _Clock]:
    clock = _Clock()
    return ChangeLock(lambda: epoch[0], clock), clock


def test_one_change_holds_a_member_and_another_is_refused_until_it_is_released() -> None:
    lock, _clock = _lock([4])
    assert lock.acquire(4, "a", 30) is None
    assert lock.acquire(4, "a", 30) is None  # the same change again
    refused = lock.acquire(4, "b", 30)
    assert refused is not None and "another ring change holds this node" in refused
    assert lock.holds("a", 4) and not lock.holds("b", 4)
    assert not lock.release("b") and lock.release("a")
    assert lock.acquire(4, "b", 30) is None


def test_the_lock_is_a_compare_and_set_on_the_epoch() -> None:
    lock, _clock = _lock([4])
    refused = lock.acquire(3, "a", 30)
    assert refused == "this node is at ring epoch 4, not 3 (the ring changed: look again)"
    assert not lock.holds("a", 3)


def test_a_lock_expires_and_is_moot_once_a_later_epoch_is_adopted() -> None:
    epoch = [4]
    lock, clock = _lock(epoch)
    assert lock.acquire(4, "a", 30) is None
    clock.now += 31
    assert not lock.holds("a", 4) and lock.acquire(4, "b", 30) is None
    epoch[0] = 5
    assert not lock.holds("b", 5) and lock.acquire(5, "c", 30) is None


def test_a_locked_member_adopts_only_its_changes_ring_of_the_next_epoch() -> None:
    lock, clock = _lock([4])
    assert lock.refuses(5, "b") is None  # not locked: any newer ring
    assert lock.acquire(4, "a", 30) is None
    assert lock.refuses(5, "a") is None
    assert lock.refuses(5, "b") is not None
    assert lock.refuses(5, None) is None  # a FINISH: not a change
    assert lock.refuses(6, "b") is None  # a later epoch: the lock's change is over
    clock.now += 31
    assert lock.refuses(5, "b") is None
