"""The command table: commands as data, Redis style, typed and checked when built.

A ``CommandSpec`` is the single source of truth for a command: its name, its
arity (Redis' convention: the count includes the command name, and ``-N``
means "at least N"), a one-line summary, the handler, and what the engine
acts on. Lookup, the arity check, the lock, MULTI queueing, refusals and the
``STATS`` counter are decided from the spec in one place (``store.engine``),
never inside handlers. Every field is keyword-only; a spec is checked when it
is built, so a wrong table fails at import, not at run time.

Rules this module keeps:

* What the engine acts on is typed, never a string it looks up: ``lock``
  (``Lock.READ``/``WRITE``/``NONE``: the store lock the command runs under;
  NONE for SAVE, which waits for a compaction that needs the lock),
  ``in_multi`` (``InMulti.QUEUE``/``RUN``/``REFUSE``: queued inside MULTI,
  run at once like MULTI/EXEC/WATCH, or refused like SAVE), ``reads_stats``,
  ``switches_protocol``, ``may_slice`` and ``counter``. The engine reads
  booleans precomputed from them (``is_write``, ``no_lock``,
  ``runs_in_multi``...).
* ``flags`` are Redis' display flags only (what COMMAND INFO shows, in any
  order) and each must be one of ``REDIS_FLAGS``; ``categories`` are extra
  ACL categories beyond the implied ones, each in ``ACL_CATEGORIES``. A
  misspelled flag raises ``ValueError`` at import. Three display flags are
  also behaviour, read by the engine as booleans derived here so the two
  cannot disagree: ``no_auth`` (``needs_auth``), ``denyoom`` (``denies_oom``)
  and ``fast`` (``is_fast``, the latency monitor's event).
* Display flags and typed fields agree: ``write`` needs ``Lock.WRITE``,
  ``readonly`` forbids it, and ``no_multi`` is shown exactly when
  ``in_multi`` is ``REFUSE``.
* Subcommands (``commands.container``) declare their own lock, checked the
  same way; ``CommandSpec.lock_for(args)`` is the lock a request runs under
  (CONFIG GET: read, FUNCTION FLUSH: write; a bare container call, an unknown
  subcommand or HELP: the container's own). Only the lock is per subcommand:
  the engine's other decisions (auth, denyoom, MULTI) read the container's
  spec, and a queued subcommand runs inside EXEC's write lock.
* ``since`` is the Redis version that introduced the command (COMMAND DOCS),
  written in the spec and nowhere else; it must be given, and is None only
  where COMMAND DOCS shows none (the line protocol's commands; SAVE, BGSAVE,
  BGREWRITEAOF and LASTSAVE, whose pinned output has none).
* One arity rule, ``arity_accepts``; the engine's hot loop inlines it.

A ``CommandTable`` is one protocol's set of commands plus that protocol's
wording for "unknown command" and "wrong number of arguments". It may also
carry a hidden spec for HTTP requests sent to the port (``commands.security``):
found under ``post`` and ``host:`` and for request-line-shaped failures, but
not listed in ``specs`` (so COMMAND does not show it, as in Redis); and a
hidden ``fallback`` spec run for every unknown name instead of the
unknown-command error (the cluster bus's table closes such connections).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol, get_args

from ..protocol.replies import Error


class Lock(enum.Enum):
    """The store lock a command runs under."""

    READ = "read"
    WRITE = "write"
    # No store lock: the command waits for something that takes it (SAVE).
    NONE = "none"


# Plain names for the hot loop: ``Lock.WRITE`` is an attribute lookup on the
# enum class, several times slower than a module global.
WRITE_LOCK = Lock.WRITE
NO_LOCK = Lock.NONE


class InMulti(enum.Enum):
    """What a command does when sent inside MULTI."""

    QUEUE = "queue"  # queued for EXEC, answered QUEUED
    RUN = "run"  # runs at once (MULTI, EXEC, DISCARD, WATCH, QUIT, RESET)
    REFUSE = "refuse"  # refused, and EXEC aborts (Redis' no_multi: SAVE, SHUTDOWN)


# Redis 7's command flags, in the order COMMAND INFO lists them.
REDIS_FLAGS = (
    "write readonly denyoom module admin pubsub noscript blocking loading stale skip_monitor skip_slowlog "
    "asking fast no_auth may_replicate sentinel only_sentinel no_mandatory_keys protected no_async_loading "
    "no_multi movablekeys allow_busy"
).split()
# Redis 7's ACL categories, in the order COMMAND INFO lists them.
ACL_CATEGORIES = (
    "keyspace read write set sortedset list hash string bitmap hyperloglog geo stream pubsub admin fast slow "
    "blocking dangerous connection transaction scripting"
).split()
# Redis' command groups (COMMAND DOCS ``group``).
Group = Literal[
    "generic", "string", "list", "set", "sorted-set", "hash", "pubsub", "transactions", "connection",
    "server", "scripting", "hyperloglog", "cluster", "sentinel", "geo", "stream", "bitmap",
]
# The STATS counter a command moves.
Counter = Literal["gets", "sets", "dels"]
KeyPositions = tuple[int, int, int]
# Key positions for COMMAND INFO (Redis' first key, last key, step).
NO_KEYS: KeyPositions = (0, 0, 0)
ONE_KEY: KeyPositions = (1, 1, 1)
ALL_KEYS: KeyPositions = (1, -1, 1)

_KNOWN_FLAGS = frozenset(REDIS_FLAGS)
_KNOWN_CATEGORIES = frozenset(ACL_CATEGORIES)
_GROUPS = frozenset(get_args(Group))
_COUNTERS = frozenset(get_args(Counter))
_VERSION = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+")

Handler = Callable[..., object]


def arity_accepts(arity: int, argc: int) -> bool:
    """Redis' arity rule: exactly ``arity`` arguments, or at least ``-arity``."""
    return argc == arity if arity >= 0 else argc >= -arity


def check_declaration(
    name: str, lock: object, flags: tuple[str, ...], categories: tuple[str, ...], since: str | None
) -> None:
    """The checks a command and a subcommand share; raises ValueError."""
    if not isinstance(lock, Lock):
        raise ValueError(f"{name}: lock must be a Lock, not {lock!r}")
    if not isinstance(flags, tuple) or not isinstance(categories, tuple):
        raise ValueError(f"{name}: flags and categories are tuples of names")
    unknown = [flag for flag in flags if flag not in _KNOWN_FLAGS]
    if unknown:
        raise ValueError(f"{name}: unknown Redis flag(s) {unknown} (known: {' '.join(REDIS_FLAGS)})")
    unknown = [category for category in categories if category not in _KNOWN_CATEGORIES]
    if unknown:
        raise ValueError(f"{name}: unknown ACL categor(y/ies) {unknown}")
    if len(set(flags)) != len(flags):
        raise ValueError(f"{name}: a flag is listed twice in {flags}")
    if "write" in flags and lock is not Lock.WRITE:
        raise ValueError(f"{name}: has Redis' write flag but not the write lock")
    if "readonly" in flags and lock is Lock.WRITE:
        raise ValueError(f"{name}: has Redis' readonly flag but the write lock")
    if since is not None and not _VERSION.fullmatch(since):
        raise ValueError(f"{name}: since must be a version like 2.6.0, not {since!r}")


class _LockedEntry(Protocol):
    """What ``CommandSpec`` reads of a subcommand (``container.Subcommand``)."""

    @property
    def lock(self) -> Lock: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandSpec:
    name: str
    arity: int
    summary: str
    handler: Handler
    group: Group
    # The Redis version that introduced it (COMMAND DOCS); None: none shown.
    since: str | None
    lock: Lock
    # Redis' display flags (COMMAND INFO) and extra ACL categories.
    flags: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    in_multi: InMulti = InMulti.QUEUE
    keys: KeyPositions = NO_KEYS
    counter: Counter | None = None
    # The command reads (or resets) the counters, so the engine records the
    # commands before it first (it batches the counting of runs of one
    # command; see store.engine.run_batch).
    reads_stats: bool = False
    # May switch the connection between RESP2 and RESP3 (HELLO, RESET); the
    # engine notes where, for the encoder.
    switches_protocol: bool = False
    # The handler may return a commands.slicing.Sliced object (KEYS, SCAN,
    # FLUSHALL); the engine checks replies only for these.
    may_slice: bool = False

    # Derived when built, for the engine's hot loop and COMMAND INFO.
    first_key: int = field(init=False)
    last_key: int = field(init=False)
    key_step: int = field(init=False)
    is_write: bool = field(init=False)
    no_lock: bool = field(init=False)
    needs_auth: bool = field(init=False)
    denies_oom: bool = field(init=False)
    is_fast: bool = field(init=False)
    # The key positions may name more than one key (MGET, MSET, RENAME,
    # WATCH...): cluster mode checks that they share a slot
    # (commands.slot_check) before the handler runs.
    several_keys: bool = field(init=False)
    runs_in_multi: bool = field(init=False)
    refused_in_multi: bool = field(init=False)
    # A container (CLIENT, CONFIG...): the subcommand it ran names the
    # statistics (``client|id``, read from ``session.last_command``), and
    # each subcommand has its own lock (``lock_for``).
    has_subcommands: bool = field(init=False)
    # May change the session's CLIENT REPLY mode (CLIENT, or EXEC running a
    # queued CLIENT REPLY): the engine re-reads the mode after it.
    may_change_reply_mode: bool = field(init=False)
    # Lower-case subcommand name bytes -> its lock (containers only).
    subcommand_locks: dict[bytes, Lock] | None = field(init=False, compare=False)

    def __post_init__(self) -> None:
        name = self.name
        check_declaration(name, self.lock, self.flags, self.categories, self.since)
        if not isinstance(self.in_multi, InMulti):
            raise ValueError(f"{name}: in_multi must be an InMulti, not {self.in_multi!r}")
        if ("no_multi" in self.flags) != (self.in_multi is InMulti.REFUSE):
            raise ValueError(f"{name}: Redis' no_multi flag is shown exactly for in_multi=InMulti.REFUSE")
        if self.group not in _GROUPS:
            raise ValueError(f"{name}: unknown group {self.group!r}")
        if self.counter is not None and self.counter not in _COUNTERS:
            raise ValueError(f"{name}: unknown counter {self.counter!r}")
        if len(self.keys) != 3:
            raise ValueError(f"{name}: keys is (first key, last key, step)")
        subcommands: Mapping[str, _LockedEntry] | None = getattr(self.handler, "subcommands", None)
        derived = {
            "first_key": self.keys[0],
            "last_key": self.keys[1],
            "key_step": self.keys[2],
            "is_write": self.lock is Lock.WRITE,
            "no_lock": self.lock is Lock.NONE,
            "needs_auth": "no_auth" not in self.flags,
            "denies_oom": "denyoom" in self.flags,
            "is_fast": "fast" in self.flags,
            "several_keys": self.keys[0] > 0 and (self.keys[1] < 0 or self.keys[1] > self.keys[0]),
            "runs_in_multi": self.in_multi is InMulti.RUN,
            "refused_in_multi": self.in_multi is InMulti.REFUSE,
            "has_subcommands": subcommands is not None,
            "may_change_reply_mode": subcommands is not None or name == "exec",
            "subcommand_locks": None
            if subcommands is None
            else {sub_name.encode(): entry.lock for sub_name, entry in subcommands.items()},
        }
        for attribute, value in derived.items():
            object.__setattr__(self, attribute, value)

    def arity_ok(self, argc: int) -> bool:
        return arity_accepts(self.arity, argc)

    def lock_for(self, args: list[bytes]) -> Lock:
        """The lock the request ``args`` runs under: its subcommand's for a
        container (an unknown one, answered with an error, takes the
        container's), else the spec's."""
        locks = self.subcommand_locks
        if locks is None or len(args) < 2:
            return self.lock
        return locks.get(args[1].lower(), self.lock)


class CommandTable:
    def __init__(
        self,
        specs: Iterable[CommandSpec],
        unknown_command: Callable[[list[bytes]], Error],
        wrong_arity: Callable[[CommandSpec], Error],
        http_request: CommandSpec | None = None,
        fallback: CommandSpec | None = None,
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
        # Runs for every request whose name the table does not know (the
        # cluster bus: refuse and close, commands.peer); None: the
        # unknown-command error.
        self._fallback = fallback
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
            return self._unknown_command(args) if self._fallback is None else self._fallback
        if not spec.arity_ok(len(args)):
            return self._wrong_arity(spec)
        return spec


def looks_like_http_request_line(args: list[bytes]) -> bool:
    """``METHOD target HTTP/x.y``: three tokens, an upper-case method, a version."""
    return (
        len(args) == 3 and args[0].isalpha() and args[0].isupper()
        and len(args[2]) == 8 and args[2][:5] == b"HTTP/" and args[2][5:6].isdigit()
        and args[2][6:7] == b"." and args[2][7:8].isdigit()
    )
