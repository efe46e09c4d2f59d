"""Acknowledged-write survival: no write the server answered ``ok`` is lost.

What it checks. For every write ``W`` acknowledged ``ok``, the final state of
its key (``FinalRead``s taken after the run) must explain where ``W`` went:

* **present**: ``W``'s value is the key's value, or one of its siblings; or
* **superseded**: some other operation ``X`` on the same key could have
  replaced ``W`` *and* is accounted for by the final state, where

  - ``X`` could have replaced ``W`` when ``X`` is a write or delete that did or
    may have taken effect (ok or unknown, never fail) and ``X`` does not
    precede ``W`` in real time: ``X`` was not answered before ``W`` was
    invoked. A write acknowledged before ``W``'s invocation started cannot
    supersede it; one invoked after ``W`` was acknowledged can; concurrent
    ones (overlapping intervals) can, in either order; an unknown one can at
    any time after its invocation;
  - ``X`` is accounted for when ``X`` is a delete, or ``X``'s value is in the
    final state. A replacing write that is itself gone must have been replaced
    by something later still, which then replaced ``W`` too (the chain's last
    link is never earlier than its first), so requiring the last link to be
    visible loses nothing and catches "W was overwritten by a write that
    never happened (an unknown one) and the key is now empty".
* otherwise **lost**, reported with its history line, the final reads of its
  key and the key's other writes and deletes.

Which final state: ``mode="union"`` (default) takes the union of every
readable node's values for the key (the write survived somewhere: what a
QUORUM/ALL read or repair can bring back); ``mode="every"`` checks each node's
view separately (every replica has it: convergence). A key with an ``ok``
write and no readable final read is reported as unverified and the history is
invalid: silence is not survival.

What it cannot check. Acknowledged deletes (a resurrected key is not a lost
write); whether a present value *should* still be there (a stale value that
came back: the linearizability and session checkers see that); causality in
a cluster: "superseded" is decided from real time and the final state,
never from the write contexts clients cannot see, so a write wrongly dropped
by a concurrent one whose value is present passes. Values must be unique per
write (the workload makes them ``process:sequence``); a repeated value is
reported and makes the history invalid.
"""

from __future__ import annotations

from collections import Counter

from .jsonl import op_line
from .model import DELETE, OK, WRITE, FinalRead, History, Op, effect_end_s
from .verdict import Verdict

UNION = "union"
EVERY = "every"


def _views(finals: list[FinalRead], mode: str) -> list[tuple[str, set[str]]]:
    """(which node(s), the values present) for each view of a key to check against."""
    readable = [final for final in finals if final.values is not None]
    if not readable:
        return []
    if mode == UNION:
        values: set[str] = set()
        for final in readable:
            values.update(final.values or [])
        return [("+".join(sorted({final.node for final in readable})), values)]
    return [(final.node, set(final.values or [])) for final in readable]


def _latest_accounted_end_s(ops: list[Op], present: set[str]) -> float:
    """The latest time any operation accounted for by ``present`` may have taken effect."""
    latest = float("-inf")
    for op in ops:
        if not op.may_take_effect():
            continue
        if op.kind == DELETE or op.value in present:
            latest = max(latest, effect_end_s(op))
    return latest


def _lost_report(write: Op, node: str, ops: list[Op], finals: list[FinalRead]) -> str:
    lines = [f"lost write (final state on {node}):", op_line(write)]
    for final in finals:
        lines.append(f"final read on {final.node}: {final.values if final.values is not None else final.error}")
    others = [op for op in ops if op.kind != "read" and op.index != write.index]
    lines.append(f"other writes and deletes of {write.key!r} ({len(others)}):")
    lines.extend(op_line(op) for op in others[-8:])
    return "\n".join(lines)


def check_survival(history: History, mode: str = UNION) -> Verdict:
    if mode not in (UNION, EVERY):
        raise ValueError(f"mode must be {UNION!r} or {EVERY!r}")
    verdict = Verdict("survival", valid=True)
    counts = Counter({"acknowledged": 0, "present": 0, "superseded": 0, "lost": 0, "unverified": 0})
    written = Counter(op.value for op in history.ops if op.kind == WRITE)
    repeated = sorted(value for value, times in written.items() if value is not None and times > 1)
    if repeated:
        verdict.problems.append(f"values written more than once (undecidable): {repeated[:10]}")
    finals = history.finals_by_key()
    for key, ops in history.by_key().items():
        acknowledged = [op for op in ops if op.kind == WRITE and op.outcome == OK]
        if not acknowledged:
            continue
        counts["acknowledged"] += len(acknowledged)
        views = _views(finals.get(key, []), mode)
        if not views:
            counts["unverified"] += len(acknowledged)
            verdict.problems.append(f"key {key!r}: {len(acknowledged)} acknowledged writes, no readable final read")
            continue
        unreadable = [final.node for final in finals.get(key, []) if final.values is None]
        if mode == EVERY and unreadable:
            counts["unverified"] += len(acknowledged)
            verdict.problems.append(f"key {key!r}: nodes {unreadable} could not be read (mode=every)")
        for node, present in views:
            latest_s = _latest_accounted_end_s(ops, present)
            for write in acknowledged:
                if write.value in present:
                    counts["present"] += 1
                elif latest_s >= write.invoke_s:
                    counts["superseded"] += 1
                else:
                    counts["lost"] += 1
                    verdict.problems.append(_lost_report(write, node, ops, finals.get(key, [])))
    verdict.counts = dict(counts)
    verdict.valid = not verdict.problems
    if mode == EVERY:
        verdict.notes.append("present/superseded/lost count one per write per node")
    return verdict
