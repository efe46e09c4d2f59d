"""Container commands: a command whose second argument picks a subcommand
(``CLIENT ID``, ``CONFIG GET``), as Redis 7 models them.

A ``Container`` is itself the handler of its ``CommandSpec``. It owns a
table of ``Subcommand`` entries, each with its own arity (Redis' convention,
counted over the whole request: ``CLIENT ID`` is 2), lock, flags and summary,
and dispatches to them with Redis' wording for the two failures:

* ``ERR unknown subcommand 'FOO'. Try CLIENT HELP.``
* ``ERR wrong number of arguments for 'client|id' command``

Every container answers ``HELP`` from the same table, and ``COMMAND INFO`` /
``COMMAND DOCS`` list the subcommands from it, so a subcommand is written
down once. While a subcommand runs, ``session.last_command`` names it
(``client|list``), as Redis' ``CLIENT LIST`` shows in ``cmd=``.

A subcommand is checked as a command is (``table.check_declaration``): known
Redis flags only, and a lock that agrees with them. The engine runs it under
its own lock (``CommandSpec.lock_for``), not the container's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..protocol.replies import Error, SimpleString
from .session import Session
from .table import Lock, arity_accepts, check_declaration

Handler = Callable[[Session, list[bytes]], object]

# Redis truncates the echoed subcommand name in its error to 128 characters.
MAX_ECHOED_NAME_CHARS = 128


@dataclass(frozen=True, slots=True, kw_only=True)
class Subcommand:
    name: str
    arity: int
    # The store lock it runs under (the container's own lock covers only a
    # bare call and the failures).
    lock: Lock
    # Redis' display flags (``admin``, ``loading``...) and extra ACL
    # categories (``dangerous``), as in ``CommandSpec``.
    flags: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    # The HELP line: ``GET <pattern>``.
    usage: str
    summary: str
    handler: Handler
    # The Redis version that introduced it (COMMAND DOCS ``since``).
    since: str

    def __post_init__(self) -> None:
        check_declaration(self.name, self.lock, self.flags, self.categories, self.since)

    def arity_ok(self, argc: int) -> bool:
        return arity_accepts(self.arity, argc)


class Container:
    """The handler of a container command; callable like any handler."""

    def __init__(self, name: str, subcommands: list[Subcommand], *, bare: Handler | None = None) -> None:
        self.name = name
        help_entry = Subcommand(
            name="help", arity=2, lock=Lock.READ, flags=("loading", "stale"), usage="HELP",
            summary="Prints this help.", handler=self._help, since="5.0.0",
        )
        self.subcommands: dict[str, Subcommand] = {}
        for entry in [*subcommands, help_entry]:
            if entry.name in self.subcommands:
                raise ValueError(f"subcommand {name}|{entry.name} defined twice")
            self.subcommands[entry.name] = entry
        # What the command does without a subcommand (COMMAND lists every
        # command); None when the spec's arity already rejects that.
        self._bare = bare

    def __call__(self, session: Session, args: list[bytes]) -> object:
        if len(args) < 2 and self._bare is not None:
            return self._bare(session, args)
        sent_name = args[1].decode("utf-8", "replace")
        entry = self.subcommands.get(sent_name.lower())
        if entry is None:
            return Error(
                f"ERR unknown subcommand '{sent_name[:MAX_ECHOED_NAME_CHARS]}'. Try {self.name.upper()} HELP."
            )
        full_name = f"{self.name}|{entry.name}"
        if not entry.arity_ok(len(args)):
            return Error(f"ERR wrong number of arguments for '{full_name}' command")
        session.last_command = full_name
        return entry.handler(session, args)

    def _help(self, session: Session, args: list[bytes]) -> list[SimpleString] | Error:
        lines = [f"{self.name.upper()} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"]
        for entry in self.subcommands.values():
            lines.append(entry.usage)
            lines.append("    " + entry.summary)
        return [SimpleString(line) for line in lines]
