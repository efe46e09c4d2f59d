"""harness/history/agreement.py: replicas agree when every node shows the same values of every key."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from harness.history.agreement import check_agreement, disagreeing_keys
from harness.history.model import FinalRead

NODES = ["n1@ONE", "n2@ONE", "n3@ONE"]


def finals(per_node: dict[str, list[str] | None], key: str = "k") -> list[FinalRead]:
    return [FinalRead(node, key, values) for node, values in per_node.items()]


def test_the_same_values_in_any_order_agree() -> None:
    verdict = check_agreement(finals({"n1": ["a", "b"], "n2": ["b", "a"], "n3": ["a", "b"]})
                              + finals({"n1": [], "n2": [], "n3": []}, key="gone"))
    assert verdict.valid and verdict.counts == {"keys": 2, "agreeing": 2, "disagreeing": 0}


def test_a_missing_sibling_or_value_disagrees() -> None:
    verdict = check_agreement(finals({"n1": ["a", "b"], "n2": ["a"], "n3": ["a", "b"]}))
    assert not verdict.valid and verdict.counts["disagreeing"] == 1
    assert "n2: ['a']" in verdict.problems[0]
    assert not check_agreement(finals({"n1": ["a"], "n2": [], "n3": ["a"]})).valid


def test_an_unreadable_node_is_not_agreement() -> None:
    verdict = check_agreement(finals({"n1": ["a"], "n2": None, "n3": ["a"]}))
    assert not verdict.valid and "n2: unreadable" in verdict.problems[0]


@given(st.lists(st.sets(st.sampled_from("abc")), min_size=len(NODES), max_size=len(NODES)))
def test_disagreement_is_exactly_unequal_value_sets(views: list[set[str]]) -> None:
    reads = [FinalRead(node, "k", sorted(values, reverse=True)) for node, values in zip(NODES, views, strict=True)]
    assert bool(disagreeing_keys(reads)) == (len({frozenset(values) for values in views}) > 1)
