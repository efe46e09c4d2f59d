"""harness/history/survival.py on hand-made histories: present, superseded
(and by what), lost, unverified, union and every-node views."""

from __future__ import annotations

from harness.history.model import FAIL, UNKNOWN, FinalRead, History
from harness.history.survival import EVERY, check_survival

from ..history_ops import d, history, r, w


def test_present_as_the_value_or_a_sibling() -> None:
    verdict = check_survival(history(w("a", "x", "1", 0, 1), finals={"x": ["1"]}))
    assert verdict.valid and verdict.counts["present"] == 1
    siblings = history(w("a", "x", "1", 0, 3), w("b", "x", "2", 1, 4), finals={"x": ["2", "1"]})
    verdict = check_survival(siblings)
    assert verdict.valid and verdict.counts["present"] == 2


def test_lost_when_the_key_is_empty_and_nothing_deleted_it() -> None:
    verdict = check_survival(history(w("a", "x", "1", 0, 1), r("b", "x", "1", 2, 3), finals={"x": []}))
    assert not verdict.valid and verdict.counts["lost"] == 1
    assert '"value": "1"' in verdict.problems[0] and "final read on n1: []" in verdict.problems[0]


def test_superseded_by_a_later_write_that_is_present() -> None:
    verdict = check_survival(history(w("a", "x", "1", 0, 1), w("b", "x", "2", 2, 3), finals={"x": ["2"]}))
    assert verdict.valid and verdict.counts == {**verdict.counts, "present": 1, "superseded": 1, "lost": 0}


def test_a_write_acknowledged_before_this_one_started_cannot_supersede_it() -> None:
    verdict = check_survival(history(w("a", "x", "1", 0, 1), w("b", "x", "2", 2, 3), finals={"x": ["1"]}))
    assert not verdict.valid and verdict.counts["lost"] == 1
    assert '"value": "2"' in verdict.problems[0].splitlines()[1]


def test_concurrent_writes_may_supersede_each_other_either_way() -> None:
    ops = [w("a", "x", "1", 0, 3), w("b", "x", "2", 1, 4)]
    assert check_survival(history(*ops, finals={"x": ["1"]})).valid
    assert check_survival(history(*ops, finals={"x": ["2"]})).valid
    # Touching intervals are concurrent too.
    assert check_survival(history(w("a", "x", "1", 0, 2), w("b", "x", "2", 2, 3), finals={"x": ["1"]})).valid


def test_an_unknown_write_supersedes_from_its_invocation_on_if_it_is_there() -> None:
    # Invoked after 1 was acknowledged, answered with a timeout, yet present: it replaced 1.
    ops = [w("a", "x", "1", 0, 1), w("b", "x", "2", 2, 3, UNKNOWN)]
    assert check_survival(history(*ops, finals={"x": ["2"]})).valid
    # An unknown write that left no trace explains nothing: 1 is lost.
    assert not check_survival(history(*ops, finals={"x": []})).valid
    # Invoked before 1 but unknown: it may still have applied after 1.
    early = [w("b", "x", "2", 0, 0.5, UNKNOWN), w("a", "x", "1", 1, 2)]
    assert check_survival(history(*early, finals={"x": ["2"]})).valid


def test_a_failed_write_supersedes_nothing() -> None:
    ops = [w("a", "x", "1", 0, 1), w("b", "x", "2", 2, 3, FAIL)]
    assert not check_survival(history(*ops, finals={"x": ["2"]})).valid


def test_deletes_supersede_unless_they_were_answered_before_the_write() -> None:
    assert check_survival(history(w("a", "x", "1", 0, 1), d("b", "x", 2, 3), finals={"x": []})).valid
    assert check_survival(history(w("a", "x", "1", 0, 1), d("b", "x", 2, 3, UNKNOWN), finals={"x": []})).valid
    assert not check_survival(history(d("b", "x", 0, 1), w("a", "x", "1", 2, 3), finals={"x": []})).valid
    assert not check_survival(history(w("a", "x", "1", 0, 1), d("b", "x", 2, 3, FAIL), finals={"x": []})).valid


def test_unacknowledged_writes_are_not_checked() -> None:
    verdict = check_survival(history(w("a", "x", "1", 0, 1, UNKNOWN), w("b", "y", "2", 0, 1, FAIL), finals={"x": [], "y": []}))
    assert verdict.valid and verdict.counts["acknowledged"] == 0


def test_an_unread_key_is_unverified_not_survived() -> None:
    verdict = check_survival(history(w("a", "x", "1", 0, 1)))
    assert not verdict.valid and verdict.counts["unverified"] == 1
    unreadable = History(ops=history(w("a", "x", "1", 0, 1)).ops, finals=[FinalRead("n1", "x", None, "refused")])
    assert not check_survival(unreadable).valid


def test_union_of_nodes_versus_every_node() -> None:
    ops = history(w("a", "x", "1", 0, 1)).ops
    finals = [FinalRead("n1", "x", ["1"]), FinalRead("n2", "x", []), FinalRead("n3", "x", None, "down")]
    assert check_survival(History(ops=ops, finals=finals)).valid
    verdict = check_survival(History(ops=ops, finals=finals), mode=EVERY)
    assert not verdict.valid and verdict.counts["lost"] == 1 and verdict.counts["unverified"] == 1
    assert "lost write (final state on n2)" in "\n".join(verdict.problems)


def test_repeated_values_make_the_history_undecidable() -> None:
    verdict = check_survival(history(w("a", "x", "1", 0, 1), w("b", "x", "1", 2, 3), finals={"x": ["1"]}))
    assert not verdict.valid and "more than once" in verdict.problems[0]
