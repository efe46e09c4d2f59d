"""The command tables the coordinator's own jobs run in: the replica
table for local repairs (``INTERNAL``), and a client table extended with
a clock read (``with_clock``).

The clock read runs in the same hop (and lock hold) as the read after it,
so the clock and the value read are of one state. Its name is random per
process and exists only in the copies ``with_clock`` makes, which only
the coordinator's jobs use: a client cannot name it.
"""

from __future__ import annotations

import copy
import secrets

from ...commands.peer import repl
from ...commands.session import Session
from ...commands.table import CommandSpec, CommandTable, InMulti, Lock
from ...protocol.replies import Error

INTERNAL = CommandTable(
    repl.SPECS,
    unknown_command=lambda args: Error("ERR unknown command"),
    wrong_arity=lambda spec: Error("ERR wrong number of arguments"),
)

CLOCK_NAME = b"tkv.clock-" + secrets.token_hex(8).encode()


def _cmd_clock(session: Session, args: list[bytes]) -> object:
    versions = session.store.versions
    return None if versions is None else versions.clock_of(args[1])


_CLOCK_SPEC = CommandSpec(
    name=CLOCK_NAME.decode(), arity=2, lock=Lock.READ, flags=("no_auth",), in_multi=InMulti.RUN, since=None,
    group="cluster", handler=_cmd_clock, summary="The coordinator's clock read (internal)",
)
_WITH_CLOCK: dict[int, CommandTable] = {}


def with_clock(table: CommandTable) -> CommandTable:
    """``table`` plus the clock read (one copy per table, kept)."""
    extended = _WITH_CLOCK.get(id(table))
    if extended is None:
        extended = copy.copy(table)
        extended.specs = {**table.specs, _CLOCK_SPEC.name: _CLOCK_SPEC}
        extended.by_name = {**table.by_name, CLOCK_NAME: _CLOCK_SPEC}
        _WITH_CLOCK[id(table)] = extended
    return extended
