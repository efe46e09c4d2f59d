"""Running the checkers on a history: which ones, and one combined result.

``CHECKERS`` names them. ``default_checks`` picks all four for a history of
one node and leaves out linearizability for a cluster (it promises none:
design/cluster.md), where the survival, sibling and session checkers apply.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .linearizable import check_linearizable
from .model import History
from .sessions import check_sessions
from .siblings import check_siblings
from .survival import check_survival
from .verdict import Verdict

CHECKERS: dict[str, Callable[[History], Verdict]] = {
    "survival": check_survival,
    "linearizable": check_linearizable,
    "siblings": check_siblings,
    "sessions": check_sessions,
}


def history_nodes(history: History) -> list[str]:
    nodes = history.meta.get("nodes")
    if isinstance(nodes, list):
        return [str(node) for node in nodes]
    return sorted({op.node for op in history.ops if op.node is not None})


def default_checks(history: History) -> list[str]:
    if len(history_nodes(history)) <= 1:
        return list(CHECKERS)
    return ["survival", "siblings", "sessions"]


def run_checks(history: History, names: Sequence[str] | None = None) -> list[Verdict]:
    chosen = list(names) if names else default_checks(history)
    unknown = [name for name in chosen if name not in CHECKERS]
    if unknown:
        raise ValueError(f"unknown checkers {unknown}; known: {sorted(CHECKERS)}")
    return [CHECKERS[name](history) for name in chosen]
