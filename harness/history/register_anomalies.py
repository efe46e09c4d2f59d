"""Definite register anomalies, found without a search: each one alone makes
a key's history non-linearizable, and each is decided in O(n log n).

What it finds, per key (``fail`` operations never happened; unknown writes
and deletes may have happened at any time after their invocation):

* **invented**: an ok read saw a value no non-failed write of this key wrote;
* **future read**: an ok read saw the value of a write invoked only after
  the read was answered;
* **stale read**: an ok read saw the value of write ``W`` although an ok
  write or delete ``X`` was invoked after ``W`` was acknowledged and
  acknowledged before the read was invoked (``X`` replaced ``W``, and ``W``
  cannot come back: values are unique);
* **vanished write**: an ok read saw nothing although an ok write was
  acknowledged before it was invoked, and no delete (ok or unknown) could
  lie between the two.

The linearizability checker runs this first: a search proving that no order
exists must exhaust every order of the key's prefix, which on a contended key
takes long; these common cases (a lost write, a stale replica) are reported
at once, with the operations that prove them. What it cannot find: anything
that needs the search (an order contradicted only by several operations
together, delete counts, unknown writes).
"""

from __future__ import annotations

import bisect
import itertools

from .jsonl import op_line
from .model import DELETE, FAIL, OK, READ, WRITE, Op, effect_end_s

_INFINITY = float("inf")


def _read_value(op: Op) -> str | None:
    result = op.result
    if isinstance(result, list):
        return result[0] if len(result) == 1 else None
    return result if isinstance(result, str) else None


def register_anomalies(ops: list[Op]) -> list[str]:
    """Problems (each quoting the operations that prove it) in one key's operations."""
    reads = [op for op in ops if op.kind == READ and op.outcome == OK and not (isinstance(op.result, list) and len(op.result) > 1)]
    if not reads:
        return []
    writes = {op.value: op for op in ops if op.kind == WRITE and op.outcome != FAIL}
    # Acknowledged overwrites by invocation, with the earliest acknowledgement from each on.
    overwrites = sorted((op.invoke_s, op.complete_s) for op in ops if op.kind != READ and op.outcome == OK and op.complete_s is not None)
    invokes = [invoke for invoke, _complete in overwrites]
    earliest_ack_from = [_INFINITY] * (len(overwrites) + 1)
    for index in range(len(overwrites) - 1, -1, -1):
        earliest_ack_from[index] = min(earliest_ack_from[index + 1], overwrites[index][1])
    # Acknowledged writes by acknowledgement, with the latest invocation up to each.
    acked = sorted((op.complete_s, op.invoke_s, op.index) for op in ops if op.kind == WRITE and op.outcome == OK and op.complete_s is not None)
    acked_times = [complete for complete, _invoke, _index in acked]
    latest_invoked = list(itertools.accumulate(acked, lambda best, item: max(best, item, key=lambda w: w[1])))
    by_index = {op.index: op for op in ops}
    deletes = sorted((op.invoke_s, effect_end_s(op)) for op in ops if op.kind == DELETE and op.outcome != FAIL)
    delete_invokes = [invoke for invoke, _end in deletes]
    latest_delete_end = list(itertools.accumulate((end for _invoke, end in deletes), max, initial=-_INFINITY))
    problems = []
    for read in reads:
        read_end_s = read.complete_s if read.complete_s is not None else _INFINITY
        value = _read_value(read)
        if value is not None:
            source = writes.get(value)
            if source is None:
                problems.append(f"invented: the read saw a value never (successfully) written to this key\n{op_line(read)}")
            elif source.invoke_s > read_end_s:
                problems.append(f"future read: the write was invoked after the read was answered\n{op_line(read)}\n{op_line(source)}")
            elif source.outcome == OK and source.complete_s is not None:
                # An overwrite invoked after the source was acknowledged, acknowledged before the read began?
                first = bisect.bisect_right(invokes, source.complete_s)
                if earliest_ack_from[first] < read.invoke_s:
                    replacing = _replacing(ops, source, read)
                    problems.append(
                        "stale read: the value was replaced by an acknowledged operation between the write and the read\n"
                        + "\n".join([op_line(read), op_line(source), op_line(replacing)])
                    )
            continue
        before = bisect.bisect_left(acked_times, read.invoke_s)
        if before == 0:
            continue
        write = by_index[latest_invoked[before - 1][2]]
        between = latest_delete_end[bisect.bisect_right(delete_invokes, read_end_s)]
        if between < write.invoke_s:
            problems.append(
                "vanished write: the read saw nothing after an acknowledged write, and no delete could lie between\n"
                + "\n".join([op_line(read), op_line(write)])
            )
    return problems


def _replacing(ops: list[Op], source: Op, read: Op) -> Op:
    assert source.complete_s is not None
    return next(
        op for op in ops
        if op.kind != READ and op.outcome == OK and op.complete_s is not None
        and op.invoke_s > source.complete_s and op.complete_s < read.invoke_s
    )
