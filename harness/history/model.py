"""What a history is: the operations clients issued, the final reads, the faults.

An ``Op`` is one request of one client (a *process*: one connection doing one
request at a time) on one key: ``write`` (SET of a value unique to the
history), ``read`` (GET, or TKV.SIBLINGS: several values) or ``delete``
(DEL). It carries its invocation and completion times (``time.monotonic``
seconds, relative to the recorder's origin) and one of three outcomes:

* ``ok``: the server acknowledged it; a read's ``result`` is what it saw.
* ``fail``: a definite error reply that promises the operation did not apply
  (a syntax error, WRONGTYPE, a refused connection before anything was sent).
  A failed operation is as if it never happened.
* ``unknown``: the client cannot know (a timeout, a reset connection, a
  server killed mid-request, NOREPLICAS). An unknown write or delete may take
  effect at any moment after its invocation, even after ``complete_s`` (a
  request still in flight inside a cluster), or never. An unknown read saw
  nothing.

Real-time order (``precedes``): ``a`` precedes ``b`` when ``a`` was answered
(ok or fail) strictly before ``b`` was invoked. Equal times are concurrent.
Unknown operations precede nothing: their effect has no end.

A ``FinalRead`` is the state of one key on one node (or a QUORUM/ALL read,
``node="quorum"``) read after the run: the values present (none: absent; several:
siblings), or ``values=None`` when the node could not be read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

OK = "ok"
FAIL = "fail"
UNKNOWN = "unknown"
OUTCOMES = (OK, FAIL, UNKNOWN)

WRITE = "write"
READ = "read"
DELETE = "delete"
KINDS = (WRITE, READ, DELETE)

# A read's result: None (absent), one value (GET), or the siblings (TKV.SIBLINGS).
ReadResult = str | list[str] | None


@dataclass(frozen=True, slots=True)
class Op:
    # Position in the history, in invocation order: how reports name an operation.
    index: int
    # The client: one connection, one request at a time.
    process: str
    kind: str
    key: str
    # The value a write wrote (unique in the history); None for reads and deletes.
    value: str | None
    invoke_s: float
    # When the reply (or the error) came; None if the run ended first.
    complete_s: float | None
    outcome: str
    # A read's ReadResult; a delete's reply (keys removed); None otherwise.
    result: ReadResult | int = None
    # The error text of a fail or unknown outcome.
    error: str | None = None
    # The node address the request went to ("host:port").
    node: str | None = None

    def may_take_effect(self) -> bool:
        """A write or delete that did, or may have, changed the key."""
        return self.kind != READ and self.outcome != FAIL

    def observed(self) -> list[str]:
        """The values an ok read saw (empty: absent, or not an ok read)."""
        if self.kind != READ or self.outcome != OK or self.result is None:
            return []
        if isinstance(self.result, list):
            return list(self.result)
        assert isinstance(self.result, str), self.result
        return [self.result]


def precedes(a: Op, b: Op) -> bool:
    """``a`` was answered strictly before ``b`` was invoked (real time)."""
    return a.outcome != UNKNOWN and a.complete_s is not None and a.complete_s < b.invoke_s


def effect_end_s(op: Op) -> float:
    """The latest time ``op`` may take effect: its completion, or never-ending when unknown."""
    if op.outcome == UNKNOWN or op.complete_s is None:
        return float("inf")
    return op.complete_s


@dataclass(frozen=True, slots=True)
class FinalRead:
    node: str
    key: str
    # The values present: [] absent, several siblings; None: the node could not be read.
    values: list[str] | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class FaultEvent:
    # What was done ("kill -9 127.0.0.1:7001", "restart ...").
    name: str
    start_s: float
    end_s: float
    error: str | None = None


@dataclass
class History:
    ops: list[Op] = field(default_factory=list)
    finals: list[FinalRead] = field(default_factory=list)
    faults: list[FaultEvent] = field(default_factory=list)
    # Free-form facts about the run (nodes, seed, flags), kept in the JSON lines.
    meta: dict[str, object] = field(default_factory=dict)

    def by_key(self) -> dict[str, list[Op]]:
        """The operations of each key, in invocation order."""
        keys: dict[str, list[Op]] = {}
        for op in sorted(self.ops, key=lambda op: op.index):
            keys.setdefault(op.key, []).append(op)
        return keys

    def finals_by_key(self) -> dict[str, list[FinalRead]]:
        keys: dict[str, list[FinalRead]] = {}
        for final in self.finals:
            keys.setdefault(final.key, []).append(final)
        return keys

    def keys(self) -> list[str]:
        return sorted({op.key for op in self.ops} | {final.key for final in self.finals})
