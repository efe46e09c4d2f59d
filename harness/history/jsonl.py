"""Histories as JSON lines: one object per line, so a failing run can be saved,
read by a person (``grep '"key": "k7"'``) and replayed through the checkers.

Each line has a ``type``: ``meta`` (free-form facts about the run, first),
``op`` (an ``Op``'s fields by name), ``final`` (a ``FinalRead``) or ``fault``
(a ``FaultEvent``). ``op_line(op)`` is the exact line a report quotes.
Loading rejects unknown types, fields and outcomes, so a truncated or foreign
file is an error rather than a silently smaller history.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from .model import KINDS, OUTCOMES, FaultEvent, FinalRead, History, Op

_TYPES = {"op": Op, "final": FinalRead, "fault": FaultEvent}


class HistoryFormatError(ValueError):
    pass


def _line(kind: str, record: object) -> str:
    fields = dataclasses.asdict(record)  # type: ignore[call-overload]
    return json.dumps({"type": kind, **fields}, sort_keys=False, separators=(", ", ": "))


def op_line(op: Op) -> str:
    return _line("op", op)


def history_lines(history: History) -> Iterator[str]:
    yield json.dumps({"type": "meta", **history.meta}, sort_keys=True)
    for fault in history.faults:
        yield _line("fault", fault)
    for op in sorted(history.ops, key=lambda op: op.index):
        yield _line("op", op)
    for final in history.finals:
        yield _line("final", final)


def dump_history(history: History, path: str | Path) -> None:
    with open(path, "w", encoding="utf-8") as file:
        for line in history_lines(history):
            file.write(line + "\n")


def parse_history(lines: Iterable[str]) -> History:
    history = History()
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
            kind = record.pop("type")
        except (ValueError, KeyError, AttributeError) as error:
            raise HistoryFormatError(f"line {number}: not a history record: {error}") from None
        if kind == "meta":
            history.meta.update(record)
            continue
        cls = _TYPES.get(kind)
        if cls is None:
            raise HistoryFormatError(f"line {number}: unknown record type {kind!r}")
        try:
            item = cls(**record)
        except TypeError as error:
            raise HistoryFormatError(f"line {number}: {error}") from None
        if isinstance(item, Op):
            if item.outcome not in OUTCOMES or item.kind not in KINDS:
                raise HistoryFormatError(f"line {number}: bad kind or outcome in {raw.strip()}")
            history.ops.append(item)
        elif isinstance(item, FinalRead):
            history.finals.append(item)
        else:
            history.faults.append(item)
    indexes = [op.index for op in history.ops]
    if len(set(indexes)) != len(indexes):
        raise HistoryFormatError("two operations share an index")
    return history


def load_history(path: str | Path) -> History:
    with open(path, encoding="utf-8") as file:
        return parse_history(file)
