"""Session guarantees per client: monotonic reads and read-your-writes.

A session is one client process (one connection, one request at a time), so
its operations are ordered by invocation. For each key, the session carries
a *floor*: the operations it knows happened.

* read-your-writes: the session's own acknowledged writes and deletes;
* monotonic reads: every write whose value one of its ok reads showed
  (all siblings of a TKV.SIBLINGS read).

Each later ok read of the key by the same session must show a state no older
than its floor. Write ``X`` *may supersede* ``F`` when ``X`` does not precede
``F`` in real time (``X`` was not answered before ``F`` was invoked: the
survival checker's rule). Then, with the values the read showed:

* a non-empty read passes when one of the shown values was written by a
  write that may supersede every floor operation (the floor's own value, shown
  again, counts: it does not precede itself). Older siblings alongside it
  are allowed;
* an empty read (absent) passes when the floor holds no write, or a delete
  (ok or unknown, invoked before the read completed) may supersede the
  floor's latest write.

Since "may supersede F" only depends on ``F``'s invocation time, the floor is
kept as its latest-invoked write and delete, so the check is linear.

What it cannot check. Absence as a floor (a read that saw nothing does not
raise the floor: a key that reappears with an old value after a session saw
it deleted passes); writes-follow-reads and monotonic writes (they need the
write contexts, which clients do not see); unknown writes never raise the
floor (nothing was promised); values no write produced are skipped here
(the sibling checker reports them). Real time is one machine's monotonic
clock.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from .jsonl import op_line
from .model import DELETE, OK, READ, WRITE, History, Op, effect_end_s
from .verdict import Verdict


@dataclass
class _Floor:
    write: Op | None = None
    delete: Op | None = None
    # Why the write is in the floor: "read-your-writes" or "monotonic reads".
    write_reason: str = ""

    def raise_write(self, op: Op, reason: str) -> None:
        if self.write is None or op.invoke_s > self.write.invoke_s:
            self.write, self.write_reason = op, reason

    def raise_delete(self, op: Op) -> None:
        if self.delete is None or op.invoke_s > self.delete.invoke_s:
            self.delete = op


def _violation(read: Op, floor: _Floor, shown: list[Op]) -> str | None:
    """Why ``read`` shows a state older than ``floor``, or None."""
    if shown:
        newest_end_s = max(effect_end_s(op) for op in shown)
        if floor.write is not None and newest_end_s < floor.write.invoke_s:
            return f"{floor.write_reason}: shows only values older than a write the session knew"
        if floor.delete is not None and newest_end_s < floor.delete.invoke_s:
            return "read-your-writes: shows a value older than the session's own delete"
    return None


def check_sessions(history: History) -> Verdict:
    verdict = Verdict("sessions", valid=True)
    writes: dict[str, Op] = {op.value: op for op in history.ops if op.kind == WRITE and op.value is not None}
    deletes: dict[str, list[Op]] = {}
    for op in history.ops:
        if op.kind == DELETE and op.may_take_effect():
            deletes.setdefault(op.key, []).append(op)
    sessions: dict[str, list[Op]] = {}
    for op in sorted(history.ops, key=lambda op: (op.invoke_s, op.index)):
        sessions.setdefault(op.process, []).append(op)
    counts = Counter({"sessions": len(sessions), "reads_checked": 0, "violations": 0})
    for ops in sessions.values():
        floors: dict[str, _Floor] = {}
        for op in ops:
            floor = floors.setdefault(op.key, _Floor())
            if op.outcome != OK:
                continue
            if op.kind == WRITE:
                floor.raise_write(op, "read-your-writes")
            elif op.kind == DELETE:
                floor.raise_delete(op)
            elif op.kind == READ:
                counts["reads_checked"] += 1
                shown = [writes[value] for value in op.observed() if value in writes and writes[value].key == op.key]
                problem = _violation(op, floor, shown)
                if problem is None and not op.observed() and floor.write is not None:
                    complete_s = op.complete_s if op.complete_s is not None else float("inf")
                    deleted = any(
                        effect_end_s(d) >= floor.write.invoke_s and d.invoke_s <= complete_s
                        for d in deletes.get(op.key, [])
                    )
                    if not deleted:
                        problem = f"{floor.write_reason}: the key is absent and no delete could have removed it"
                if problem is not None:
                    counts["violations"] += 1
                    known = [o for o in (floor.write, floor.delete) if o is not None]
                    verdict.problems.append(
                        "\n".join([f"session {op.process!r}: {problem}", op_line(op), "floor:", *map(op_line, known)])
                    )
                for source in shown:
                    floor.raise_write(source, "monotonic reads")
    verdict.counts = dict(counts)
    verdict.valid = not verdict.problems
    return verdict
