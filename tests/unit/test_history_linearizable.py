"""harness/history/linearizable.py on hand-made histories: the classic
linearizable and non-linearizable register cases, outcomes, deletes, final reads."""

from __future__ import annotations

from harness.history.linearizable import check_linearizable
from harness.history.model import FAIL, UNKNOWN

from ..history_ops import d, history, r, w


def valid(h, **options) -> bool:
    """The verdict, which the search alone (no anomaly pre-check) must reach too."""
    verdict = check_linearizable(h, **options)
    searched = check_linearizable(h, anomalies_first=False, **options)
    assert verdict.counts["undecided"] == 0 and searched.counts["undecided"] == 0, verdict.report()
    assert verdict.valid == searched.valid, (verdict.report(), searched.report())
    return verdict.valid


def test_sequential_write_then_read() -> None:
    assert valid(history(w("a", "x", "1", 0, 1), r("b", "x", "1", 2, 3)))


def test_read_of_a_never_written_key_sees_nothing() -> None:
    assert valid(history(r("a", "x", None, 0, 1)))
    assert not valid(history(r("a", "x", "1", 0, 1)))


def test_stale_read_after_a_newer_write_completed() -> None:
    # The classic stale read: 2 was acknowledged before the read started.
    h = history(w("a", "x", "1", 0, 1), w("a", "x", "2", 2, 3), r("b", "x", "1", 4, 5))
    for anomalies_first in (True, False):
        verdict = check_linearizable(h, anomalies_first=anomalies_first)
        assert not verdict.valid
        assert '"index": 2' in verdict.problems[0], verdict.report()


def test_read_concurrent_with_a_write_may_see_either_value() -> None:
    base = [w("a", "x", "1", 0, 1), w("a", "x", "2", 2, 6)]
    assert valid(history(*base, r("b", "x", "1", 3, 4)))
    assert valid(history(*base, r("b", "x", "2", 3, 4)))


def test_new_then_old_inversion_is_not_linearizable() -> None:
    # While 2 is being written, one read sees 2, then a later read sees 1 again.
    base = [w("a", "x", "1", 0, 1), w("a", "x", "2", 2, 10)]
    assert not valid(history(*base, r("b", "x", "2", 3, 4), r("c", "x", "1", 5, 6)))
    # Overlapping reads may see them in either order.
    assert valid(history(*base, r("b", "x", "2", 3, 6), r("c", "x", "1", 5, 7)))


def test_values_cannot_flip_back_between_two_concurrent_writes() -> None:
    writes = [w("a", "x", "1", 0, 10), w("b", "x", "2", 0, 10)]
    assert valid(history(*writes, r("c", "x", "1", 1, 2), r("c", "x", "2", 3, 4)))
    assert not valid(history(*writes, r("c", "x", "1", 1, 2), r("c", "x", "2", 3, 4), r("c", "x", "1", 5, 6)))


def test_future_read_sees_a_write_not_yet_invoked() -> None:
    assert not valid(history(r("b", "x", "1", 0, 1), w("a", "x", "1", 2, 3)))


def test_touching_intervals_are_concurrent() -> None:
    assert valid(history(w("a", "x", "1", 0, 2), r("b", "x", "1", 2, 3)))
    assert valid(history(r("b", "x", "1", 0, 2), w("a", "x", "1", 2, 3)))


def test_acknowledged_write_lost_by_the_server() -> None:
    assert not valid(history(w("a", "x", "1", 0, 1), r("b", "x", None, 2, 3)))


def test_failed_write_never_happened() -> None:
    assert valid(history(w("a", "x", "1", 0, 1, FAIL), r("b", "x", None, 2, 3)))
    assert not valid(history(w("a", "x", "1", 0, 1, FAIL), r("b", "x", "1", 2, 3)))


def test_unknown_write_may_take_effect_late_or_never() -> None:
    # Seen long after the client gave up on it: it may apply any time after invocation.
    assert valid(history(w("a", "x", "1", 0, 1, UNKNOWN), r("b", "x", None, 2, 3), r("b", "x", "1", 4, 5)))
    # Never seen: it never happened.
    assert valid(history(w("a", "x", "1", 0, 1, UNKNOWN), r("b", "x", None, 2, 3)))
    # But once seen, it cannot un-happen without a delete or another write.
    assert not valid(history(w("a", "x", "1", 0, 1, UNKNOWN), r("b", "x", "1", 2, 3), r("b", "x", None, 4, 5)))
    # Not before its invocation either.
    assert not valid(history(r("b", "x", "1", 0, 1), w("a", "x", "1", 2, 3, UNKNOWN)))


def test_unknown_reads_saw_nothing() -> None:
    assert valid(history(w("a", "x", "1", 0, 1), r("b", "x", None, 2, 3, UNKNOWN)))


def test_delete_and_its_count() -> None:
    assert valid(history(w("a", "x", "1", 0, 1), d("a", "x", 2, 3, result=1), r("b", "x", None, 4, 5)))
    assert not valid(history(w("a", "x", "1", 0, 1), d("a", "x", 2, 3, result=0)))
    assert not valid(history(d("a", "x", 0, 1, result=1)))
    # A delete concurrent with the write may count either way.
    assert valid(history(w("a", "x", "1", 0, 3), d("b", "x", 1, 2, result=0), r("b", "x", "1", 4, 5)))
    assert valid(history(w("a", "x", "1", 0, 3), d("b", "x", 1, 2, result=1), r("b", "x", None, 4, 5)))
    assert not valid(history(w("a", "x", "1", 0, 3), d("b", "x", 1, 2, result=1), r("b", "x", "1", 4, 5)))


def test_unknown_delete() -> None:
    assert valid(history(w("a", "x", "1", 0, 1), d("b", "x", 2, 3, UNKNOWN), r("c", "x", None, 4, 5)))
    assert valid(history(w("a", "x", "1", 0, 1), d("b", "x", 2, 3, UNKNOWN), r("c", "x", "1", 4, 5)))


def test_keys_are_independent() -> None:
    # Each key alone is fine; real time across keys imposes nothing on a register per key.
    h = history(w("a", "x", "1", 0, 1), w("a", "y", "2", 2, 3), r("b", "y", "2", 4, 5), r("b", "x", "1", 6, 7))
    assert valid(h)
    verdict = check_linearizable(history(w("a", "x", "1", 0, 1), w("a", "y", "2", 2, 3), r("b", "y", None, 4, 5)))
    assert verdict.counts["not_linearizable"] == 1 and "'y'" in verdict.problems[0]


def test_final_reads_are_reads_after_everything() -> None:
    ops = [w("a", "x", "1", 0, 1), w("a", "x", "2", 2, 3)]
    assert valid(history(*ops, finals={"x": ["2"]}))
    assert not valid(history(*ops, finals={"x": ["1"]}))
    assert valid(history(*ops, finals={"x": ["1"]}), include_finals=False)
    # An unknown write may be the last thing to happen, or never happen.
    unknown = [*ops, w("b", "x", "3", 2.5, 4, UNKNOWN)]
    assert valid(history(*unknown, finals={"x": ["3"]}))
    assert valid(history(*unknown, finals={"x": ["2"]}))
    assert not valid(history(*unknown, finals={"x": []}))


def test_sibling_reads_are_undecided_not_guessed() -> None:
    verdict = check_linearizable(history(w("a", "x", "1", 0, 1), r("b", "x", ["1", "2"], 2, 3)))
    assert not verdict.valid and verdict.counts["undecided"] == 1


def test_many_concurrent_unknown_writes_stay_tractable() -> None:
    # 14 unknown writes all in flight, then a read that saw one of them: the cache
    # keeps the search from trying all 14! orders.
    writes = [w(f"p{index}", "x", str(index), 0, 1, UNKNOWN) for index in range(14)]
    verdict = check_linearizable(history(*writes, r("q", "x", "7", 2, 3), r("q", "x", "7", 4, 5), r("q", "x", "13", 6, 7)))
    assert verdict.valid, verdict.report()
    assert verdict.counts["steps"] < 200_000


def test_an_unseen_write_can_still_be_what_a_delete_removed() -> None:
    # Found by the model property: the write of c0:3 is never read, yet the last
    # delete answering 1 needs it (after the delete answering 0). Placing it early,
    # with an earlier overwrite, would wrongly call this history not linearizable.
    h = history(
        w("c1", "k0", "c1:1", 1, 6), w("c0", "k0", "c0:2", 4, 10), r("c2", "k0", "c0:2", 8, 13.5),
        d("c0", "k0", 15, 20, result=1), w("c0", "k0", "c0:3", 18, 26.5), d("c1", "k0", 21, 27.5, result=0),
        d("c0", "k0", 28, 35, result=1), finals={"k0": []},
    )
    assert valid(h)


def test_unread_writes_are_placed_lazily() -> None:
    # Twelve concurrent writes nobody reads, then a read of a later write: valid,
    # and found without trying the twelve writes' orders.
    writes = [w(f"p{index}", "x", f"p{index}:1", 0, 10) for index in range(12)]
    h = history(*writes, w("q", "x", "q:1", 1, 10), r("q", "x", "q:1", 11, 12))
    verdict = check_linearizable(h)
    assert verdict.valid and verdict.counts["steps"] < 100, verdict.report()
    assert not valid(history(*writes, w("q", "x", "q:1", 1, 10), r("q", "x", "q:1", 11, 12), r("q", "x", "p3:1", 13, 14)))
