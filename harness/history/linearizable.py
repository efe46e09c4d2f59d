"""Per-key linearizability of a register (Wing & Gong's search with Lowe's cache).

What it checks. Each key is a register holding one value or nothing. A
history is linearizable when every key's operations can be put in one order
that (1) respects real time: an operation answered before another was
invoked comes first, (2) places each operation at one instant inside its own
interval, and (3) replays on a sequential register giving every ok
operation its recorded answer: a read sees the last write's value (None
after a delete or at the start), a delete answers 1 when it removed a value
and 0 when the key was absent (checked when the result was recorded). Keys
are independent (linearizability is compositional: Herlihy & Wing), so each
key is searched alone, which keeps ~10k operations over ~50 keys fast.

Outcomes: ``fail`` operations never happened and are dropped; ``unknown``
writes and deletes may take effect at any instant after their invocation or
never (their return is placed after everything, Knossos' and Porcupine's
treatment of indeterminate operations); unknown reads saw nothing and are
dropped. ``include_finals`` adds each readable ``FinalRead`` as a read
invoked after every recorded operation (an unknown write may still come
after it: that is "never").

The search (Wing & Gong 1993, with Lowe 2017's memoisation, as in
Porcupine): walk the time-ordered call/return entries; at a call, try to
linearize that operation now (apply it to the register; on success remove
its call and return from the list and restart from the head); at a return
whose operation is still unlinearized, undo the most recent choice and try
the next call. A (set of linearized operations, register value) pair already
explored is never explored again, which turns the exponential search into
one that is polynomial in practice for few concurrent clients.

What it cannot check. Anything across keys (MULTI, MSET, RENAME); values
other than whole-value SET/GET/DEL (INCR, APPEND); reads that return several
siblings (the register model has one value: such reads are reported, use the
sibling and session checkers for cluster histories). Real time is the
recording client's monotonic clock, so all clients must share one machine
(or one process). A search that exceeds ``deadline_s`` leaves its key
undecided and the verdict invalid rather than guessed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .jsonl import op_line
from .model import DELETE, FAIL, OK, READ, UNKNOWN, WRITE, History, Op
from .verdict import Verdict

_INFINITY = float("inf")
# Sentinel register value for "a read whose siblings a register cannot explain".
_NOT_A_REGISTER = object()


@dataclass
class KeyResult:
    key: str
    linearizable: bool | None  # None: undecided (deadline, or a non-register read)
    operations: int
    explored: int
    # When not linearizable: the operation no order could place, and the longest order found.
    stuck: Op | None = None
    longest: list[Op] | None = None
    state_before_stuck: object = None
    reason: str = ""


def _read_value(op: Op) -> object:
    result = op.result
    if isinstance(result, list):
        if len(result) > 1:
            return _NOT_A_REGISTER
        return result[0] if result else None
    return result


def _step(state: object, op: Op) -> tuple[bool, object]:
    """Apply ``op`` to the register ``state``: (its answer matches, the new state)."""
    if op.kind == WRITE:
        return True, op.value
    if op.kind == DELETE:
        if op.outcome == OK and isinstance(op.result, int) and op.result != (0 if state is None else 1):
            return False, state
        return True, None
    return state == _read_value(op), state


def _relevant(ops: list[Op]) -> list[Op]:
    return [op for op in ops if op.outcome != FAIL and not (op.kind == READ and op.outcome == UNKNOWN)]


def check_key(key: str, ops: list[Op], deadline: float = _INFINITY) -> KeyResult:
    """Search one key's operations (already filtered, finals included) for a linearization."""
    ops = _relevant(ops)
    count = len(ops)
    if any(op.kind == READ and _read_value(op) is _NOT_A_REGISTER for op in ops):
        return KeyResult(key, None, count, 0, reason="a read returned several siblings: not a register")
    # Entries 1..2n: (time, 0 for call / 1 for return, op position); entry 0 is the list head.
    raw = []
    for position, op in enumerate(ops):
        end_s = op.complete_s if op.outcome == OK and op.complete_s is not None else _INFINITY
        raw.append((op.invoke_s, 0, position))
        raw.append((end_s, 1, position))
    # Calls before returns at equal times: touching intervals are concurrent.
    raw.sort()
    size = len(raw) + 1
    is_call = [False] * size
    entry_op = [0] * size
    match = [0] * size
    call_entry = [0] * count
    for entry, (_time, kind, position) in enumerate(raw, 1):
        entry_op[entry] = position
        if kind == 0:
            is_call[entry] = True
            call_entry[position] = entry
        else:
            match[entry] = call_entry[position]
            match[call_entry[position]] = entry
    nxt = list(range(1, size)) + [0]  # 0 ends the list (the head is never a successor)
    prv = [0] + list(range(0, size - 1))

    state: object = None
    linearized = 0
    seen: set[tuple[int, object]] = set()
    calls: list[tuple[int, object]] = []
    best_depth, best_stuck, best_order, best_state = -1, None, [], None
    explored = 0
    entry = nxt[0]
    while nxt[0] != 0:
        explored += 1
        if explored & 0xFFF == 0 and time.monotonic() > deadline:
            return KeyResult(key, None, count, explored, reason="deadline passed")
        position = entry_op[entry]
        if is_call[entry]:
            matches, new_state = _step(state, ops[position])
            if matches:
                new_linearized = linearized | (1 << position)
                if (new_linearized, new_state) not in seen:
                    seen.add((new_linearized, new_state))
                    calls.append((entry, state))
                    state, linearized = new_state, new_linearized
                    # Lift the call and its return out of the list.
                    ret = match[entry]
                    nxt[prv[entry]], prv[nxt[entry]] = nxt[entry], prv[entry]
                    nxt[prv[ret]] = nxt[ret]
                    if nxt[ret]:
                        prv[nxt[ret]] = prv[ret]
                    entry = nxt[0]
                    continue
            entry = nxt[entry]
            continue
        # A return whose operation no order so far could place: backtrack.
        if len(calls) > best_depth:
            best_depth, best_stuck, best_state = len(calls), position, state
            best_order = [entry_op[call] for call, _state in calls]
        if not calls:
            return KeyResult(
                key, False, count, explored, ops[best_stuck], [ops[p] for p in best_order], best_state
            )
        entry, state = calls.pop()
        linearized &= ~(1 << entry_op[entry])
        ret = match[entry]
        # Put the return back, then the call (the reverse of the lift).
        nxt[prv[ret]] = ret
        if nxt[ret]:
            prv[nxt[ret]] = ret
        nxt[prv[entry]] = entry
        prv[nxt[entry]] = entry
        entry = nxt[entry]
    return KeyResult(key, True, count, explored)


def _with_finals(history: History) -> dict[str, list[Op]]:
    keys = history.by_key()
    if not history.finals:
        return keys
    after_s = max((op.complete_s or op.invoke_s for op in history.ops), default=0.0) + 1.0
    next_index = max((op.index for op in history.ops), default=-1) + 1
    for final in history.finals:
        if final.values is None:
            continue
        result: str | list[str] | None = final.values[0] if len(final.values) == 1 else (final.values or None)
        read = Op(next_index, f"final@{final.node}", READ, final.key, None, after_s, after_s, OK, result,
                  node=final.node)
        next_index += 1
        keys.setdefault(final.key, []).append(read)
    return keys


def _not_linearizable_report(result: KeyResult, ops: list[Op]) -> str:
    assert result.stuck is not None and result.longest is not None
    stuck = result.stuck
    end = stuck.complete_s if stuck.complete_s is not None else _INFINITY
    lines = [
        f"key {result.key!r} is not linearizable ({result.operations} operations, {result.explored} steps searched).",
        f"No order places this operation (register value just before it: {result.state_before_stuck!r}):",
        op_line(stuck),
        f"the longest order found ({len(result.longest)} operations) ends with:",
        *(op_line(op) for op in result.longest[-6:]),
        "operations overlapping it in time:",
    ]
    overlapping = [
        op for op in ops
        if op is not stuck and op.invoke_s <= end and (op.complete_s is None or op.complete_s >= stuck.invoke_s)
        and op.outcome != FAIL
    ]
    lines.extend(op_line(op) for op in overlapping[:10])
    return "\n".join(lines)


def check_linearizable(history: History, include_finals: bool = True, timeout_s: float | None = None) -> Verdict:
    """Every key's operations (and final reads) linearizable as a register."""
    started = time.monotonic()
    deadline = _INFINITY if timeout_s is None else started + timeout_s
    verdict = Verdict("linearizable", valid=True)
    keys = _with_finals(history) if include_finals else history.by_key()
    counts = {"keys": 0, "operations": 0, "not_linearizable": 0, "undecided": 0, "steps": 0}
    for key, ops in sorted(keys.items()):
        result = check_key(key, ops, deadline)
        counts["keys"] += 1
        counts["operations"] += result.operations
        counts["steps"] += result.explored
        if result.linearizable is None:
            counts["undecided"] += 1
            verdict.problems.append(f"key {key!r} undecided: {result.reason}")
        elif not result.linearizable:
            counts["not_linearizable"] += 1
            verdict.problems.append(_not_linearizable_report(result, ops))
    verdict.counts = counts
    verdict.valid = not verdict.problems
    verdict.notes.append(f"searched in {time.monotonic() - started:.3f} s")
    return verdict
