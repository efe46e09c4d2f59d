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
never (Knossos' and Porcupine's treatment of indeterminate operations:
they have no return to respect); unknown reads saw nothing and are dropped. ``include_finals`` adds each readable ``FinalRead`` as a read
invoked after every recorded operation (an unknown write may still come
after it: that is "never").

The search (Wing & Gong 1993, with Lowe 2017's memoisation, as in
Porcupine): build the order one operation at a time, choosing among the
operations invoked before the earliest pending return (nothing else may come
next); when no choice works, undo the latest one and try its next
alternative. A (set of linearized operations, register value) pair already
explored is never explored again. Definite anomalies (a stale read, a
vanished write: register_anomalies.py) are looked for first, since proving
that no order exists takes the search long on a contended key.
Register-specific rules, each argued in
``_Search``'s docstring, cut the choices without losing an order: a read that
matches the register is placed at once and never taken back; unknown writes
and deletes are placed only right before an operation that needs them
(Lowe's just-in-time idea); writes nobody can tell happened go with the next
overwrite (lazily: ``_Search``). Measured on this machine (2 shared cores):
10,000 operations of 4 clients over 50 keys in about 0.05 s; a real node
under 16 clients all on one key (each request concurrent with the other 15),
with a kill -9: 8,000 operations in about 5 s.

What it cannot check. Anything across keys (MULTI, MSET, RENAME); values
other than whole-value SET/GET/DEL (INCR, APPEND); reads that return several
siblings (the register model has one value: such reads are reported, use the
sibling and session checkers for cluster histories). Real time is the
recording client's monotonic clock, so all clients must share one machine
(or one process). The search is exponential in the worst case: many
clients hammering one key (every request concurrent with a dozen others)
can exceed ``timeout_s``, which leaves the key undecided and the verdict
invalid rather than guessed; spread the workload over more keys.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .jsonl import op_line
from .model import DELETE, FAIL, OK, READ, UNKNOWN, WRITE, History, Op
from .register_anomalies import register_anomalies
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
    # Definite anomalies found before any search (register_anomalies.py).
    anomalies: list[str] | None = None


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
    """The operations the search needs: no failed ones, no unknown reads, and no
    unknown write that nothing could depend on (see ``_needed``)."""
    kept = [op for op in ops if op.outcome != FAIL and not (op.kind == READ and op.outcome == UNKNOWN)]
    observed = {value for op in kept if op.kind == READ for value in op.observed()}
    counted_deletes = [op for op in kept if op.kind == DELETE and op.outcome == OK and op.result == 1]
    return [op for op in kept if _needed(op, observed, counted_deletes)]


def _needed(op: Op, observed: set[str], counted_deletes: list[Op]) -> bool:
    """An unknown write whose value no read saw can be linearized "never" in
    any linearization (every operation right after it overwrites it, or it is
    last), unless a delete answering 1 could come after it and need it: so it
    is dropped, which keeps runs with many crashed requests cheap to search."""
    if op.kind != WRITE or op.outcome != UNKNOWN or op.value in observed:
        return True
    return any(delete.complete_s is None or delete.complete_s >= op.invoke_s for delete in counted_deletes)


def _end(op: Op) -> float:
    return op.complete_s if op.complete_s is not None else _INFINITY


class _Search:
    """The search over one key's operations: the entry list, the register, the cache.

    Entries are numbered in time order (1..); entry 0 is the head of a doubly
    linked list from which linearized operations are lifted (and put back on
    backtracking, in reverse order: dancing links). Certain operations (ok)
    have a call and a return entry; uncertain ones (unknown writes and
    deletes) only a call: nothing forces them, so they are linearized just in
    time, right before an operation that needs them (Lowe's just-in-time
    linearization, specialised to a register): before a read of their value
    (a write), a read of nothing or a delete answering 0 (a delete), a delete
    answering 1 (any write). Placed anywhere else, an uncertain operation is
    overwritten before anyone sees it, the same as "never": so only those
    placements are searched, which keeps crashed requests from multiplying
    the search.

    A read placed where it matched the register is never taken back to try
    it later: a read changes nothing, and since it could be placed now every
    operation that must precede it already is, so any order that places it
    later stays valid with the read moved here. Backtracking skips over it.

    An *anonymous* write (certain, and no read saw its value) is placed
    lazily. In a valid order it is followed directly by an overwrite (a read
    would have seen it; a delete answering 0 would not): another write, a
    delete, an uncertain helper. So when an overwrite is placed, every
    anonymous write callable then becomes *covered*: it may be taken to
    have been placed right before that overwrite, and is only ticked off
    (no effect on the register) when its return comes up, or placed alone
    then (its value in the register) if it is needed right there. A delete
    answering 1 to an empty register may instead use any callable anonymous
    write, covered or not, as the value it removed. The covered set is part
    of the cache key. On a contended key most writes are anonymous, and
    their orders disappear from the search.
    """

    def __init__(self, ops: list[Op]) -> None:
        self.ops = ops
        self.uncertain = [op.outcome == UNKNOWN for op in ops]
        raw = []
        for position, op in enumerate(ops):
            raw.append((op.invoke_s, 0, position))
            if not self.uncertain[position]:
                raw.append((op.complete_s if op.complete_s is not None else _INFINITY, 1, position))
        # Calls before returns at equal times: touching intervals are concurrent.
        raw.sort()
        size = len(raw) + 1
        self.is_call = [False] * size
        self.entry_op = [0] * size
        self.match = [0] * size
        self.call_entry = [0] * len(ops)
        for entry, (_time, kind, position) in enumerate(raw, 1):
            self.entry_op[entry] = position
            if kind == 0:
                self.is_call[entry] = True
                self.call_entry[position] = entry
            else:
                self.match[entry] = self.call_entry[position]
                self.match[self.call_entry[position]] = entry
        # 0 ends the list; prv[0] is scratch (written, never read).
        self.nxt = list(range(1, size)) + [0]
        self.prv = [0] + list(range(0, size - 1))
        self.unknown_write_by_value = {
            op.value: position for position, op in enumerate(ops) if self.uncertain[position] and op.kind == WRITE
        }
        self.unknown_writes = [p for p, op in enumerate(ops) if self.uncertain[p] and op.kind == WRITE]
        self.unknown_deletes = [p for p, op in enumerate(ops) if self.uncertain[p] and op.kind == DELETE]
        self.observed = {value for op in ops if op.kind == READ for value in op.observed()}
        # Certain writes whose value no read saw (see above).
        self.anonymous = [
            not self.uncertain[p] and op.kind == WRITE and op.value not in self.observed for p, op in enumerate(ops)
        ]
        # Anonymous writes that were callable when an overwrite was placed: each may be
        # taken to have been placed right before it, so it needs no place of its own.
        self.covered = 0
        self.certain_left = self.uncertain.count(False)
        self.state: object = None
        self.linearized = 0

    def _first_return(self, entry: int) -> int:
        while entry and self.is_call[entry]:
            entry = self.nxt[entry]
        return entry or len(self.is_call)

    def _eligible(self, positions: list[int], limit: int) -> list[int]:
        """Uncertain operations that may be linearized now: not yet, and invoked before the first pending return."""
        return [p for p in positions if self.call_entry[p] < limit and not self.linearized >> p & 1]

    def _one_delete(self, limit: int) -> list[tuple[int, object]]:
        """An uncertain delete to place now. One is enough: they all set the
        register to nothing, and one that may be placed now may be placed at
        any later point too, so which one is used never matters."""
        for p in self.unknown_deletes:
            if self.call_entry[p] < limit and not self.linearized >> p & 1:
                return [(p, None)]
        return []

    def _writes_for_a_delete(self, limit: int) -> list[tuple[int, object]]:
        """Uncertain writes to place before a delete that answered 1: every one
        whose value some read saw (using it here changes what is left for that
        read), and one of those nobody saw (interchangeable, like deletes)."""
        found, spare = [], []
        for p in self._eligible(self.unknown_writes, limit):
            (found if self.ops[p].value in self.observed else spare).append((p, None))
        return found + spare[:1]

    def options(self, entry: int) -> list[tuple[int, object]]:
        """Ways to linearize the certain operation at ``entry`` now: (helper position or -1, new state)."""
        op = self.ops[self.entry_op[entry]]
        state = self.state
        found = []
        matches, new_state = _step(state, op)
        if matches:
            found.append((-1, new_state))
            return found
        limit = self._first_return(entry)
        if op.kind == READ:
            wanted = _read_value(op)
            if wanted is None:
                found.extend(self._one_delete(limit))
            else:
                helper = self.unknown_write_by_value.get(wanted)  # type: ignore[arg-type]
                if helper is not None and self._eligible([helper], limit):
                    found.append((helper, wanted))
        elif op.kind == DELETE and op.result == 0 and state is not None:
            found.extend(self._one_delete(limit))
        elif op.kind == DELETE and op.result == 1 and state is None:
            found.extend(self._writes_for_a_delete(limit))
        return found

    def lift(self, entry: int) -> None:
        nxt, prv = self.nxt, self.prv
        nxt[prv[entry]] = nxt[entry]
        prv[nxt[entry]] = prv[entry]

    def unlift(self, entry: int) -> None:
        nxt, prv = self.nxt, self.prv
        nxt[prv[entry]] = entry
        prv[nxt[entry]] = entry


# (entry placed, operations placed right before it, register after, anonymous writes it covers)
Choice = tuple[int, tuple[int, ...], object, int]


def _choices(search: _Search) -> tuple[list[Choice], int]:
    """What may be linearized next, best guess first, for the operations
    invoked before the first pending return; and that return entry (what
    blocks when nothing works)."""
    window = []
    entry = search.nxt[0]
    while entry and search.is_call[entry]:
        if not search.uncertain[search.entry_op[entry]]:
            window.append(entry)
        entry = search.nxt[entry]
    blocking = entry
    ops, state = search.ops, search.state
    wanted = set()
    for call in window:
        op = ops[search.entry_op[call]]
        if op.kind == READ:
            value = _read_value(op)
            if value == state:
                # A read that matches now is placed now, and only so (see ``_Search``).
                return [(call, (), state, 0)], blocking
            wanted.add(value)
    blocking_position = search.entry_op[blocking] if blocking else -1
    anonymous = [search.entry_op[call] for call in window if search.anonymous[search.entry_op[call]]]
    callable_mask = 0
    for position in anonymous:
        callable_mask |= 1 << position
    first, rest = [], []
    for call in window:
        position = search.entry_op[call]
        op = ops[position]
        if search.anonymous[position]:
            if position == blocking_position:
                # Its return is next: tick it off if covered, or place it alone now.
                if search.covered >> position & 1:
                    first.append((call, (), state, 0))
                rest.append((call, (), op.value, callable_mask))
            continue
        if op.kind == DELETE and op.result == 1 and state is None:
            # An anonymous write as the value this delete removed.
            first.extend((call, (maker,), None, callable_mask) for maker in anonymous)
        for helper, new_state in search.options(call):
            overwrite = helper >= 0 or op.kind == WRITE or (op.kind == DELETE and op.result != 0)
            choice = (call, (helper,) if helper >= 0 else (), new_state, callable_mask if overwrite else 0)
            # Most promising: what a waiting read needs, a read made possible by a helper.
            promising = helper >= 0 or (op.kind == WRITE and op.value in wanted) or (op.kind == DELETE and None in wanted)
            (first if promising else rest).append(choice)
    return first + rest, blocking


def check_key(key: str, ops: list[Op], deadline: float = _INFINITY, anomalies_first: bool = True) -> KeyResult:
    """Search one key's operations (final reads included) for a linearization."""
    if any(op.kind == READ and op.outcome == OK and _read_value(op) is _NOT_A_REGISTER for op in ops):
        return KeyResult(key, None, len(ops), 0, reason="a read returned several siblings: not a register")
    anomalies = register_anomalies(ops) if anomalies_first else []
    if anomalies:
        return KeyResult(key, False, len(ops), 0, anomalies=anomalies)
    ops = _relevant(ops)
    count = len(ops)
    search = _Search(ops)
    seen: set[tuple[int, object, int]] = set()
    # Each frame: (the choices there, the one taken, the register and covered set before it).
    frames: list[tuple[list[Choice], int, object, int]] = []
    best_depth, best_stuck, best_order, best_state = -1, 0, [], None
    explored = 0

    def place(entry: int) -> None:
        """Lift an operation's call (and its return, if it has one) out of the list."""
        search.lift(entry)
        if search.match[entry]:
            search.lift(search.match[entry])
            search.certain_left -= 1

    def unplace(entry: int) -> None:
        if search.match[entry]:
            search.unlift(search.match[entry])
            search.certain_left += 1
        search.unlift(entry)

    def take(choices: list[Choice], first: int) -> bool:
        """Linearize the first choice from ``first`` on that leads somewhere new."""
        for index in range(first, len(choices)):
            entry, placed_before, new_state, covers = choices[index]
            linearized = search.linearized | (1 << search.entry_op[entry])
            for position in placed_before:
                linearized |= 1 << position
            covered = (search.covered | covers) & ~linearized
            if (linearized, new_state, covered) in seen:
                continue
            seen.add((linearized, new_state, covered))
            frames.append((choices, index, search.state, search.covered))
            for position in placed_before:
                place(search.call_entry[position])
            place(entry)
            search.state, search.linearized, search.covered = new_state, linearized, covered
            return True
        return False

    while search.certain_left:
        explored += 1
        if explored & 0x3FF == 0 and time.monotonic() > deadline:
            return KeyResult(key, None, count, explored, reason="deadline passed")
        choices, blocking = _choices(search)
        if take(choices, 0):
            continue
        # Nothing can be placed next: this order is dead. Record how far it got.
        if len(frames) > best_depth:
            best_depth, best_stuck, best_state = len(frames), search.entry_op[blocking], search.state
            best_order = []
            for frame_choices, index, _state, _covered in frames:
                frame_entry, placed_before, _new, _covers = frame_choices[index]
                best_order.extend(placed_before)
                best_order.append(search.entry_op[frame_entry])
        # Undo the latest choice and try the next one there; a read placed
        # where it matched was the only choice (see ``_Search``): undo further.
        while True:
            if not frames:
                return KeyResult(key, False, count, explored, ops[best_stuck], [ops[p] for p in best_order], best_state)
            choices, index, state, covered = frames.pop()
            entry, placed_before, _new_state, _covers = choices[index]
            unplace(entry)
            for position in reversed(placed_before):
                unplace(search.call_entry[position])
            search.linearized &= ~(1 << search.entry_op[entry])
            for position in placed_before:
                search.linearized &= ~(1 << position)
            search.state, search.covered = state, covered
            if take(choices, index + 1):
                break
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
    if result.anomalies:
        return f"key {result.key!r} is not linearizable:\n" + "\n".join(result.anomalies[:5])
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


def check_linearizable(
    history: History, include_finals: bool = True, timeout_s: float | None = None, anomalies_first: bool = True
) -> Verdict:
    """Every key's operations (and final reads) linearizable as a register.
    ``anomalies_first=False`` leaves every verdict to the search (the tests use it to test the search)."""
    started = time.monotonic()
    deadline = _INFINITY if timeout_s is None else started + timeout_s
    verdict = Verdict("linearizable", valid=True)
    keys = _with_finals(history) if include_finals else history.by_key()
    counts = {"keys": 0, "operations": 0, "not_linearizable": 0, "undecided": 0, "steps": 0}
    for key, ops in sorted(keys.items()):
        result = check_key(key, ops, deadline, anomalies_first)
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
