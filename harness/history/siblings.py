"""Sibling bounds: a key never shows more siblings than it had writers.

What it checks, for every observation of a key's values (an ok read: one
value from GET or several from TKV.SIBLINGS; and every readable final read):

1. every value shown was written to *this* key by a write that did or may
   have taken effect (ok or unknown) and was invoked before the observation
   completed: no invented, misplaced, failed or future values;
2. no value is shown twice;
3. the number of siblings never exceeds the number of writers of the key:
   the distinct client processes with a write (ok or unknown) to the key
   invoked before the observation completed. That is DVVSet's bound
   ("siblings never exceed the number of concurrent writers", Preguica et
   al.): a write replaces every version its context has seen, so each
   writer leaves at most its latest concurrent version.

``counts`` also gives ``max_siblings`` and ``same_process_siblings`` (an
observation holding two siblings from one process: a later write of a client
that did not supersede its own earlier one, which a plain SET coordinated by a
node that missed the earlier write can produce); ``one_per_process=True``
makes the latter a violation too, for runs where each client's writes always
reach a coordinator that saw its previous ones.

What it cannot check. Real concurrency: clients cannot see write contexts,
so two real-time-ordered writes shown as siblings are not a violation by
themselves (the coordinator of the later one may not have seen the earlier);
whether a sibling *should* have been resolved (the session and survival
checkers judge staleness and loss); deletes (tombstones are not shown).
"""

from __future__ import annotations

from collections import Counter

from .jsonl import op_line
from .model import OK, READ, WRITE, History, Op
from .verdict import Verdict


def _observations(history: History) -> list[tuple[str, str, list[str], float, str]]:
    """(key, who, values shown, completion time, the line to quote) for every observation."""
    observations = []
    for op in history.ops:
        if op.kind == READ and op.outcome == OK:
            complete_s = op.complete_s if op.complete_s is not None else float("inf")
            observations.append((op.key, op.process, op.observed(), complete_s, op_line(op)))
    for final in history.finals:
        if final.values is not None:
            shown = f"final read on {final.node} of {final.key!r}: {final.values}"
            observations.append((final.key, f"final@{final.node}", list(final.values), float("inf"), shown))
    return observations


def check_siblings(history: History, one_per_process: bool = False) -> Verdict:
    verdict = Verdict("siblings", valid=True)
    writes: dict[str, Op] = {
        op.value: op for op in history.ops if op.kind == WRITE and op.value is not None and op.may_take_effect()
    }
    writes_by_key: dict[str, list[Op]] = {}
    for op in writes.values():
        writes_by_key.setdefault(op.key, []).append(op)
    counts = Counter({"observations": 0, "with_siblings": 0, "max_siblings": 0, "same_process_siblings": 0})
    for key, _who, values, complete_s, line in _observations(history):
        counts["observations"] += 1
        counts["max_siblings"] = max(counts["max_siblings"], len(values))
        if len(values) > 1:
            counts["with_siblings"] += 1
        problems = []
        if len(set(values)) != len(values):
            problems.append("a value is shown twice")
        sources = []
        for value in values:
            source = writes.get(value)
            if source is None or source.key != key:
                problems.append(f"value {value!r} was never (successfully) written to {key!r}")
            elif source.invoke_s > complete_s:
                problems.append(f"value {value!r} was written only after this read completed")
            else:
                sources.append(source)
        writers = {op.process for op in writes_by_key.get(key, []) if op.invoke_s <= complete_s}
        if len(values) > max(1, len(writers)):
            problems.append(f"{len(values)} siblings but only {len(writers)} writers of {key!r}: {sorted(writers)}")
        per_process = Counter(source.process for source in sources)
        if any(times > 1 for times in per_process.values()):
            counts["same_process_siblings"] += 1
            if one_per_process:
                problems.append(f"siblings from one process: {dict(per_process)}")
        if problems:
            sibling_lines = [op_line(source) for source in sources]
            verdict.problems.append("; ".join(problems) + "\n" + "\n".join([line, *sibling_lines]))
    verdict.counts = dict(counts)
    verdict.valid = not verdict.problems
    return verdict
