"""The recorder client threads write their operations into (thread-safe).

``invoke`` is called just before a request is sent and ``complete`` just after
its reply or error arrived, so each operation's [invoke, complete] interval
contains the instant the server applied it. Times are ``time.monotonic()``
seconds relative to the recorder's creation (one clock for every thread of
this process: the checkers compare times across clients). Operation indexes
are given at invocation, under the lock that also reads the clock, so index
order is invocation order.

An operation invoked but never completed (a client thread stuck or ended by
the run's end) appears in ``history()`` as ``unknown`` with no completion:
its write may have happened.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from .model import OK, UNKNOWN, FaultEvent, History, Op, ReadResult


@dataclass(frozen=True, slots=True)
class Pending:
    index: int
    process: str
    kind: str
    key: str
    value: str | None
    invoke_s: float
    node: str | None


class Recorder:
    def __init__(self) -> None:
        self._origin_s = time.monotonic()
        self._lock = threading.Lock()
        self._next_index = 0
        self._pending: dict[int, Pending] = {}
        self._ops: list[Op] = []
        self._faults: list[FaultEvent] = []

    def now_s(self) -> float:
        return time.monotonic() - self._origin_s

    def invoke(self, process: str, kind: str, key: str, value: str | None = None, node: str | None = None) -> Pending:
        with self._lock:
            pending = Pending(self._next_index, process, kind, key, value, self.now_s(), node)
            self._next_index += 1
            self._pending[pending.index] = pending
            return pending

    def complete(
        self, pending: Pending, outcome: str, result: ReadResult | int = None, error: str | None = None
    ) -> Op:
        with self._lock:
            complete_s = self.now_s()
            del self._pending[pending.index]
            op = Op(
                pending.index, pending.process, pending.kind, pending.key, pending.value,
                pending.invoke_s, complete_s, outcome, result if outcome == OK else None, error, pending.node,
            )
            self._ops.append(op)
            return op

    def fault(self, name: str, start_s: float, end_s: float, error: str | None = None) -> None:
        with self._lock:
            self._faults.append(FaultEvent(name, start_s, end_s, error))

    def history(self, meta: dict[str, object] | None = None) -> History:
        """What was recorded so far; operations still pending become unknown."""
        with self._lock:
            ops = list(self._ops)
            for pending in self._pending.values():
                ops.append(
                    Op(pending.index, pending.process, pending.kind, pending.key, pending.value,
                       pending.invoke_s, None, UNKNOWN, None, "never completed", pending.node)
                )
            ops.sort(key=lambda op: op.index)
            return History(ops=ops, faults=list(self._faults), meta=dict(meta or {}))
