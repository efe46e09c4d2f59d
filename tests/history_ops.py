"""Hand-made histories for the checker tests (harness/history), written compactly.

``history(w("a", "x", "1", 0, 1), r("b", "x", "1", 2, 3), finals={"x": ["1"]})``:
operations get their index from their position; times are plain numbers.
"""

from __future__ import annotations

from harness.history.model import DELETE, OK, READ, WRITE, FinalRead, History, Op


def w(process: str, key: str, value: str, invoke: float, complete: float | None, outcome: str = OK) -> Op:
    return Op(-1, process, WRITE, key, value, invoke, complete, outcome)


def r(process: str, key: str, result, invoke: float, complete: float | None, outcome: str = OK) -> Op:
    return Op(-1, process, READ, key, None, invoke, complete, outcome, result if outcome == OK else None)


def d(process: str, key: str, invoke: float, complete: float | None, outcome: str = OK, result=None) -> Op:
    return Op(-1, process, DELETE, key, None, invoke, complete, outcome, result)


def history(*ops: Op, finals: dict[str, list[str] | None] | None = None, node: str = "n1") -> History:
    indexed = [
        Op(index, op.process, op.kind, op.key, op.value, op.invoke_s, op.complete_s, op.outcome, op.result, op.error)
        for index, op in enumerate(ops)
    ]
    final_reads = [FinalRead(node, key, values) for key, values in (finals or {}).items()]
    return History(ops=indexed, finals=final_reads)
