"""MEMORY USAGE: an estimate of what one key costs (Redis' memory command,
its USAGE and HELP subcommands only).

Redis answers the allocator's size of the key, the value and the dict
entry; trio_kv answers the key's length, the value's share of STATS
``bytes`` (``Keyspace.value_size``: a string's length, a hash's fields and
values) and ``ENTRY_OVERHEAD_BYTES`` for the table entry: an estimate, not
a measurement (Python objects cost more; see the README's memory figures).
Redis' own tests read it only under jemalloc, which trio_kv does not report.
"""

from __future__ import annotations

from ..protocol.replies import Error
from .arguments import NOT_AN_INTEGER, SYNTAX_ERROR, parse_int64
from .container import Container, Subcommand
from .session import Session
from .table import CommandSpec, Lock

# The hash table's cell and the key and value objects' headers, roughly.
ENTRY_OVERHEAD_BYTES = 96


def memory_usage(session: Session, args: list[bytes]) -> int | Error | None:
    """``MEMORY USAGE key [SAMPLES count]`` (SAMPLES is checked, then unused:
    the size is exact)."""
    j = 3
    while j < len(args):
        if args[j].lower() == b"samples" and j + 1 < len(args):
            samples = parse_int64(args[j + 1])
            if samples is None:
                return NOT_AN_INTEGER
            if samples < 0:
                return SYNTAX_ERROR
            j += 2
        else:
            return SYNTAX_ERROR
    key = args[2]
    size = session.keyspace.value_size(key)
    if size is None:
        return None
    return len(key) + size + ENTRY_OVERHEAD_BYTES


MEMORY = Container(
    "memory",
    [
        Subcommand(
            name="usage", arity=-3, lock=Lock.READ, flags=("readonly",), usage="USAGE <key> [SAMPLES <count>]",
            since="4.0.0", handler=memory_usage, summary="Estimate the memory usage of a key.",
        ),
    ],
)

SPECS: list[CommandSpec] = [
    CommandSpec(
        name="memory", arity=-2, lock=Lock.READ, since="4.0.0", group="server", handler=MEMORY,
        summary="A container for memory diagnostics commands",
    ),
]
