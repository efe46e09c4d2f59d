"""harness/history/siblings.py on hand-made histories."""

from __future__ import annotations

from harness.history.model import FAIL, UNKNOWN
from harness.history.siblings import check_siblings

from ..history_ops import history, r, w


def test_siblings_up_to_the_number_of_writers() -> None:
    ops = [w("a", "x", "1", 0, 3), w("b", "x", "2", 1, 4), r("c", "x", ["1", "2"], 5, 6)]
    verdict = check_siblings(history(*ops, finals={"x": ["2", "1"]}))
    assert verdict.valid, verdict.report()
    assert verdict.counts["max_siblings"] == 2 and verdict.counts["with_siblings"] == 2


def test_more_siblings_than_writers() -> None:
    ops = [w("a", "x", "1", 0, 1), w("a", "x", "2", 2, 3), w("b", "x", "3", 2, 3)]
    verdict = check_siblings(history(*ops, r("c", "x", ["1", "2", "3"], 4, 5)))
    assert not verdict.valid and "3 siblings but only 2 writers" in verdict.problems[0]
    # The writers are counted when the read completes, not at the end of the run.
    later_writer = [w("a", "x", "1", 0, 1), w("a", "x", "2", 2, 3), r("c", "x", ["1", "2"], 4, 5), w("b", "x", "3", 6, 7)]
    assert not check_siblings(history(*later_writer)).valid


def test_two_siblings_from_one_process_are_counted_and_optionally_refused() -> None:
    ops = [w("a", "x", "1", 0, 1), w("a", "x", "2", 2, 3), w("b", "x", "3", 2, 3), r("c", "x", ["1", "2"], 4, 5)]
    verdict = check_siblings(history(*ops))
    assert verdict.valid and verdict.counts["same_process_siblings"] == 1
    assert not check_siblings(history(*ops), one_per_process=True).valid


def test_invented_misplaced_failed_and_future_values() -> None:
    assert not check_siblings(history(w("a", "x", "1", 0, 1), r("b", "x", ["1", "9"], 2, 3))).valid
    assert not check_siblings(history(w("a", "y", "1", 0, 1), r("b", "x", "1", 2, 3))).valid
    assert not check_siblings(history(w("a", "x", "1", 0, 1, FAIL), r("b", "x", "1", 2, 3))).valid
    assert not check_siblings(history(r("b", "x", "1", 0, 1), w("a", "x", "1", 2, 3))).valid
    assert not check_siblings(history(w("a", "x", "1", 0, 1), finals={"x": ["2"]})).valid
    # An unknown write may well be shown.
    assert check_siblings(history(w("a", "x", "1", 0, 1, UNKNOWN), r("b", "x", ["1"], 2, 3))).valid


def test_a_value_shown_twice() -> None:
    verdict = check_siblings(history(w("a", "x", "1", 0, 1), r("b", "x", ["1", "1"], 2, 3)))
    assert not verdict.valid and "shown twice" in verdict.problems[0]
