"""Replica agreement: after a heal and repair, every replica holds the same values of every key.

The input is the final reads of each node's *own* replica (``FinalRead``s
labelled per node: ``read_final_state(..., consistency="ONE")``, which in a
3-node cluster with N=3 reads the coordinator's copy only, with no read
repair). A key agrees when every node could be read and every node shows the
same set of values (the same siblings, or absent on all). A node that could
not be read is a disagreement: silence is not agreement.

``counts``: ``keys``, ``agreeing``, ``disagreeing``. What it cannot check:
tombstones and causal contexts (two nodes showing the same values with
different clocks agree here; anti-entropy's roots compare those).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from .model import FinalRead
from .verdict import Verdict


def disagreeing_keys(finals: Sequence[FinalRead]) -> dict[str, dict[str, list[str] | None]]:
    """key -> {node: values (None: unreadable)} for every key the nodes do not agree on."""
    by_key: dict[str, dict[str, list[str] | None]] = {}
    for final in finals:
        by_key.setdefault(final.key, {})[final.node] = None if final.values is None else sorted(final.values)
    disagreeing = {}
    for key, views in by_key.items():
        shown = list(views.values())
        if any(values is None for values in shown) or any(values != shown[0] for values in shown[1:]):
            disagreeing[key] = views
    return disagreeing


def check_agreement(finals: Sequence[FinalRead]) -> Verdict:
    verdict = Verdict("agreement", valid=True)
    keys = {final.key for final in finals}
    disagreeing = disagreeing_keys(finals)
    verdict.counts = dict(Counter({"keys": len(keys), "agreeing": len(keys) - len(disagreeing),
                                   "disagreeing": len(disagreeing)}))
    for key, views in sorted(disagreeing.items()):
        verdict.problems.append(f"replicas disagree on {key!r}: " + "; ".join(
            f"{node}: {'unreadable' if values is None else values}" for node, values in sorted(views.items())))
    verdict.valid = not verdict.problems
    return verdict
