"""The command table: commands as data, Redis style.

A ``CommandSpec`` is the single source of truth for a command: its name, its
arity (Redis' convention: the count includes the command name, and ``-N``
means "at least N"), its flags, a one-line summary and the handler. Lookup,
the arity check, which lock a command takes (``write`` flag: the write lock,
otherwise the read lock) and which ``STATS`` counter it moves are decided
from the table in one place (``store.engine``), never inside handlers.

A ``CommandTable`` is one protocol's set of commands plus that protocol's
wording for "unknown command" and "wrong number of arguments". It may also
carry a hidden spec for HTTP requests sent to the port (``commands.security``):
found under ``post`` and ``host:`` and for request-line-shaped failures, but
not listed in ``specs`` (so COMMAND does not show it, as in Redis).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..protocol.replies import Error


def looks_like_http_request_line(args: list[bytes]) -> bool:
    """``METHOD target HTTP/x.y``: three tokens, an upper-case method, a version."""
    return (
        len(args) == 3 and args[0].isalpha() and args[0].isupper()
        and len(args[2]) == 8 and args[2][:5] == b"HTTP/" and args[2][5:6].isdigit()
        and args[2][6:7] == b"." and args[2][7:8].isdigit()
    )


Handler = Callable[..., object]


@dataclass(frozen=True, slots=True)
class CommandSpec:
    name: str
    arity: int
    flags: frozenset[str]
    summary: str
    handler: Handler
    # Which STATS counter the command moves: "gets", "sets", "dels" or None.
    counter: str | None = None
    group: str = "generic"
    # Key positions for COMMAND INFO (Redis' first key, last key, step).
    first_key: int = 0
    last_key: int = 0
    key_step: int = 0
    is_write: bool = field(init=False)
    # "nolock": the engine holds no store lock while it runs (SAVE waits for
    # a compaction that needs the lock).
    no_lock: bool = field(init=False)
    # "stats": the command reads (or resets) the counters, so the engine
    # records the commands before it first (it batches the counting of runs
    # of one command; see store.engine.run_batch).
    reads_stats: bool = field(init=False)
    # "protocol": may switch the connection between RESP2 and RESP3 (HELLO,
    # RESET); the engine notes where, for the encoder.
    switches_protocol: bool = field(init=False)
    # A container (CLIENT, CONFIG...): the subcommand it ran names the
    # statistics (``client|id``, read from ``session.last_command``).
    has_subcommands: bool = field(init=False)
    # May change the session's CLIENT REPLY mode (CLIENT, or EXEC running a
    # queued CLIENT REPLY): the engine re-reads the mode after it.
    may_change_reply_mode: bool = field(init=False)
    # "sliced": the handler may return a commands.slicing.Sliced object
    # (KEYS, SCAN, FLUSHALL); the engine checks replies only for these.
    may_slice: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "is_write", "write" in self.flags)
        object.__setattr__(self, "no_lock", "nolock" in self.flags)
        object.__setattr__(self, "reads_stats", "stats" in self.flags)
        object.__setattr__(self, "switches_protocol", "protocol" in self.flags)
        object.__setattr__(self, "has_subcommands", hasattr(self.handler, "subcommands"))
        object.__setattr__(self, "may_change_reply_mode", self.has_subcommands or self.name == "exec")
        object.__setattr__(self, "may_slice", "sliced" in self.flags)

    def arity_ok(self, argc: int) -> bool:
        arity = self.arity
        return argc == arity if arity >= 0 else argc >= -arity


class CommandTable:
    def __init__(
        self,
        specs: Iterable[CommandSpec],
        unknown_command: Callable[[list[bytes]], Error],
        wrong_arity: Callable[[CommandSpec], Error],
        http_request: CommandSpec | None = None,
    ) -> None:
        self.specs: dict[str, CommandSpec] = {}
        # Lower-case name bytes -> spec; the engine's hot loop reads it directly.
        self.by_name: dict[bytes, CommandSpec] = {}
        for spec in specs:
            if spec.name in self.specs:
                raise ValueError(f"command {spec.name!r} defined twice")
            self.specs[spec.name] = spec
            self.by_name[spec.name.encode()] = spec
        self._unknown_command = unknown_command
        self._wrong_arity = wrong_arity
        self._http_request = http_request
        if http_request is not None:
            self.by_name[b"post"] = self.by_name[b"host:"] = http_request

    def __len__(self) -> int:
        return len(self.specs)

    def get(self, name: str) -> CommandSpec | None:
        return self.specs.get(name.lower())

    def resolve(self, args: list[bytes]) -> CommandSpec | Error:
        """The spec for a request, or the error reply if the name is unknown or
        the argument count is wrong (or the HTTP-request spec when such a
        failing request is an HTTP request line, ``GET / HTTP/1.1``)."""
        spec = self.by_name.get(args[0].lower())
        if spec is None or not spec.arity_ok(len(args)):
            if self._http_request is not None and looks_like_http_request_line(args):
                return self._http_request
        if spec is None:
            return self._unknown_command(args)
        if not spec.arity_ok(len(args)):
            return self._wrong_arity(spec)
        return spec
