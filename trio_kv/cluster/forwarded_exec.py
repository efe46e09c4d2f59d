"""A whole transaction forwarded over the bus as one request, without IO.

A client's MULTI ... EXEC whose keys (one slot) this node does not
replicate is queued here as usual; at EXEC the coordinator sends it whole
to the slot's first live member as one bus request (one request, so it is
never split across the peer's batches)::

    TKV.FORWARD.EXEC wire level nwatched [key clock]... [argc arg...]...

* ``wire`` and ``level`` as ``TKV.FORWARD``'s (the client's wire and RESP
  version, its levels).
* ``watched``: the client's WATCHed keys that this node does not
  replicate, each with the clock (``TKV.REPL.GET``) the receiving node
  held of it when the client watched it: ``b""`` for none, else ``b"c"``
  and the packed clock. The receiver watches them and reads their clocks
  in one hop; any that differ make EXEC answer a null array (WATCH's
  conflict), else the transaction runs with those watches still in force.
* the queued commands, each as its argument count then its arguments.

The reply is EXEC's. Malformed requests: ``ValueError`` from ``decode``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

FORWARD_EXEC = b"tkv.forward.exec"


@dataclass(frozen=True)
class ForwardedExec:
    # The client's wire field (``forwarding.forward_label``) and levels (``Levels.encode``).
    wire: bytes
    level: bytes
    # (key, clock when watched or None) for each watched key the sender does not replicate.
    watched: tuple[tuple[bytes, bytes | None], ...]
    # MULTI's queue, in order.
    commands: tuple[tuple[bytes, ...], ...]

    def encode(self) -> list[bytes]:
        out = [FORWARD_EXEC, self.wire, self.level, b"%d" % len(self.watched)]
        for key, clock in self.watched:
            out += [key, b"" if clock is None else b"c" + clock]
        for command in self.commands:
            out.append(b"%d" % len(command))
            out += command
        return out


def decode(args: Sequence[bytes]) -> ForwardedExec:
    """``ForwardedExec.encode``'s request back (``args[0]`` is the name)."""
    if len(args) < 4:
        raise ValueError("TKV.FORWARD.EXEC needs wire, level and a watched count")
    position = 4
    watched: list[tuple[bytes, bytes | None]] = []
    for _ in range(_count(args[3])):
        if position + 2 > len(args):
            raise ValueError("a watched key without its clock")
        key, clock = args[position], args[position + 1]
        if clock and clock[:1] != b"c":
            raise ValueError("a watched clock must be empty or start with 'c'")
        watched.append((key, clock[1:] if clock else None))
        position += 2
    commands: list[tuple[bytes, ...]] = []
    while position < len(args):
        count = _count(args[position])
        if count < 1 or position + 1 + count > len(args):
            raise ValueError("a queued command's argument count is out of range")
        commands.append(tuple(args[position + 1 : position + 1 + count]))
        position += 1 + count
    return ForwardedExec(args[1], args[2], tuple(watched), tuple(commands))


def _count(field: bytes) -> int:
    if not field.isdigit() or len(field) > 9:
        raise ValueError(f"bad count {field[:16]!r}")
    return int(field)


__all__ = ["FORWARD_EXEC", "ForwardedExec", "decode"]
