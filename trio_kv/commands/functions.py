"""FUNCTION: Redis 7's function library, answered as a server whose library is
empty and that has no scripting engine.

Scripting is out of trio_kv's scope, but clients and tools (Redis' own test
suite runs ``FUNCTION FLUSH`` before every unit; client libraries call
``FUNCTION LIST``) ask about the library. Every answer is what redis-server
7.0 answers with no libraries loaded, and is true here:

* ``FUNCTION FLUSH [ASYNC|SYNC]`` -> ``+OK`` (there is nothing to delete).
* ``FUNCTION LIST [LIBRARYNAME <pattern>] [WITHCODE]`` -> an empty array,
  after Redis' argument checks and wording.
* ``FUNCTION STATS`` -> ``running_script`` null and ``engines`` empty: no
  engine is available (redis-server lists ``LUA`` here).
* ``FUNCTION KILL`` -> ``-NOTBUSY``: no function ever runs.
* ``FUNCTION DELETE <library>`` -> ``-ERR Library not found``.
* ``FUNCTION LOAD [REPLACE] <code>`` -> the error Redis gives for code
  whose engine it does not have: ``-ERR Engine 'lua' not found`` (or
  ``-ERR Missing library metadata`` when the code has no ``#!`` line).

``FUNCTION DUMP`` and ``FUNCTION RESTORE`` are not offered (``unknown
subcommand``): their payload carries library code, which no engine here
could run (the key-level DUMP/RESTORE, commands/dump_restore.py, is
offered).
"""

from __future__ import annotations

import re

from ..protocol.replies import OK, Error, Map
from .container import Container, Subcommand
from .session import Session
from .table import CommandSpec, Lock

FLUSH_MODES = (b"async", b"sync")
LIBRARY_NAME = re.compile(rb"[A-Za-z0-9_]+")


def function_flush(session: Session, args: list[bytes]) -> object:
    if len(args) > 3:
        return Error("ERR unknown subcommand or wrong number of arguments for 'flush'. Try FUNCTION HELP.")
    if len(args) == 3 and args[2].lower() not in FLUSH_MODES:
        return Error("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
    return OK


def function_list(session: Session, args: list[bytes]) -> object:
    # Redis' functionListCommand: each option at most once, LIBRARYNAME takes a pattern.
    with_code = False
    pattern_given = False
    index = 2
    while index < len(args):
        option = args[index]
        if option.lower() == b"withcode" and not with_code:
            with_code = True
            index += 1
            continue
        if option.lower() == b"libraryname" and not pattern_given:
            if index + 1 >= len(args):
                return Error("ERR library name argument was not given")
            pattern_given = True
            index += 2
            continue
        return Error(f"ERR Unknown argument {option.decode('utf-8', 'replace')}")
    return []  # no library matches any pattern


def function_stats(session: Session, args: list[bytes]) -> Map:
    return Map([(b"running_script", None), (b"engines", Map([]))])


def function_kill(session: Session, args: list[bytes]) -> Error:
    return Error("NOTBUSY No scripts in execution right now.")


def function_delete(session: Session, args: list[bytes]) -> Error:
    return Error("ERR Library not found")


def _metadata_error(code: bytes) -> str:
    """Why Redis' functionExtractLibMetaData and engine lookup refuse ``code``
    on a server without engines: every well-formed library ends at the
    engine lookup."""
    if not code.startswith(b"#!"):
        return "Missing library metadata"
    shebang, newline, _body = code.partition(b"\n")
    parts = shebang.split()
    if not newline or not parts:
        return "Invalid library metadata"
    engine = parts[0][2:]
    name: bytes | None = None
    for part in parts[1:]:
        if part[:5].lower() == b"name=":
            if name is not None:
                return "Invalid metadata value, name argument was given multiple times"
            name = part[5:]
            continue
        return f"Invalid metadata value given: {part.decode('utf-8', 'replace')}"
    if name is None:
        return "Library name was not given"
    if not LIBRARY_NAME.fullmatch(name):
        return (
            "Library names can only contain letters, numbers, or underscores(_) "
            "and must be at least one character long"
        )
    return f"Engine '{engine.decode('utf-8', 'replace')}' not found"


def function_load(session: Session, args: list[bytes]) -> Error:
    for option in args[2:-1]:
        if option.lower() != b"replace":
            return Error(f"ERR Unknown option given: {option.decode('utf-8', 'replace')}")
    return Error("ERR " + _metadata_error(args[-1]))


FUNCTION = Container(
    "function",
    [
        Subcommand(
            name="load", arity=-3, lock=Lock.WRITE, flags=("write", "denyoom", "noscript"),
            usage="LOAD [REPLACE] <FUNCTION CODE>", since="7.0.0", handler=function_load,
            summary="Create a new library (refused: this server has no scripting engine).",
        ),
        Subcommand(
            name="delete", arity=3, lock=Lock.WRITE, flags=("write", "noscript"), usage="DELETE <LIBRARY NAME>",
            since="7.0.0", handler=function_delete, summary="Delete the given library (there are none).",
        ),
        Subcommand(
            name="list", arity=-2, lock=Lock.READ, flags=("noscript",),
            usage="LIST [LIBRARYNAME PATTERN] [WITHCODE]", since="7.0.0", handler=function_list,
            summary="Return information on all the libraries (always none).",
        ),
        Subcommand(
            name="stats", arity=2, lock=Lock.READ, flags=("noscript", "allow_busy"), usage="STATS", since="7.0.0",
            handler=function_stats, summary="Return the running function (none) and the available engines (none).",
        ),
        Subcommand(
            name="kill", arity=2, lock=Lock.READ, flags=("noscript", "allow_busy"), usage="KILL", since="7.0.0",
            handler=function_kill, summary="Kill the current running function (there never is one).",
        ),
        Subcommand(
            name="flush", arity=-2, lock=Lock.WRITE, flags=("write", "noscript"), usage="FLUSH [ASYNC|SYNC]",
            since="7.0.0", handler=function_flush, summary="Delete all the libraries (there are none).",
        ),
    ],
)

SPECS: list[CommandSpec] = [
    CommandSpec(
        name="function", arity=-2, lock=Lock.READ, since="7.0.0", group="scripting", handler=FUNCTION,
        summary="A container for function commands.",
    ),
]
