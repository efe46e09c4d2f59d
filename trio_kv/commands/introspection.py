"""COMMAND: the command table served to clients, in Redis 7's shapes.

Everything is derived from the ``CommandSpec`` entries of the Redis table
(``commands.redis.REDIS_COMMANDS``) and the subcommand tables of container
commands (``commands.container``), so nothing here repeats the table:

* ``COMMAND`` / ``COMMAND INFO [name ...]``: per command ``[name, arity,
  [flags], first key, last key, step, [@categories], [tips], [key specs],
  [subcommands]]``; in RESP3 the flags, categories, tips and key specs
  are sets (``~``), as Redis' addReplySetLen sends them, and so is an empty
  subcommand list (a non-empty one is an array); RESP2 has only arrays.
  Flags are the spec's display flags (``flags``, all
  Redis', checked by ``commands.table``), in Redis' order. ACL categories
  are derived as Redis' ``setImplicitACLCategories`` does (write, read,
  admin+dangerous, fast or slow...) plus the group's category (``string``
  -> ``@string``) plus the spec's extra ``categories``. Key specs are Redis 7.0's for the same command (``KEY_SPECS``:
  flags, first key, last key, step, copied from redis-server's COMMAND
  INFO), else one range spec built from first/last/step, flagged ``RW
  update`` for write commands and ``RO access`` otherwise. Tips from
  ``TIPS`` (Redis 7.0's, for the commands that have any).
* ``COMMAND DOCS [name ...]``: name -> {summary, since, group} (and
  subcommands). ``since`` is the spec's (Redis' values), left out where it
  is None.
* ``COMMAND COUNT``, ``COMMAND LIST [FILTERBY ACLCAT c | PATTERN p | MODULE
  m]``, ``COMMAND GETKEYS command [arg ...]``, ``COMMAND GETKEYSANDFLAGS
  command [arg ...]`` (each key with its key spec's flags; SET's are ``OW
  update``, or ``RW access update`` with GET, as Redis' setGetKeys),
  ``COMMAND HELP``.

The table is imported inside the handlers: ``commands.redis`` imports this
module to build the table.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..protocol.glob import glob_match
from ..protocol.replies import Error, Map, Set, SimpleString
from .connection import SYNTAX_ERROR
from .container import Container, Subcommand
from .session import Session
from .table import ACL_CATEGORIES, REDIS_FLAGS, CommandSpec, Lock, arity_accepts

GROUP_CATEGORY = {
    "generic": "keyspace",
    "string": "string",
    "list": "list",
    "set": "set",
    "sorted-set": "sortedset",
    "hash": "hash",
    "pubsub": "pubsub",
    "transactions": "transaction",
    "connection": "connection",
    "scripting": "scripting",
    "hyperloglog": "hyperloglog",
    "geo": "geo",
    "stream": "stream",
    "bitmap": "bitmap",
}
# Categories a flag implies (Redis' setImplicitACLCategories); not fast is slow.
IMPLIED_CATEGORIES = {
    "write": ("write",),
    "admin": ("admin", "dangerous"),
    "pubsub": ("pubsub",),
    "fast": ("fast",),
    "blocking": ("blocking",),
}
# Redis 7.0's command tips, for the commands that have any.
TIPS = {
    "hgetall": ("nondeterministic_output_order",), "hkeys": ("nondeterministic_output_order",),
    "hvals": ("nondeterministic_output_order",), "hrandfield": ("nondeterministic_output",),
    "hscan": ("nondeterministic_output",), "dump": ("nondeterministic_output",),
    "wait": ("request_policy:all_shards", "response_policy:agg_min"),
}

# Redis 7.0's key specs for the commands trio_kv has keys for: name ->
# [(flags, begin index, last key (relative to begin; -1: the last argument),
# key step)]. From redis-server 7.0.15's COMMAND INFO.
_RO_ACCESS = ("RO", "access")
_RW_ACCESS_UPDATE = ("RW", "access", "update")
_RW_UPDATE = ("RW", "update")
KEY_SPECS: dict[str, list[tuple[tuple[str, ...], int, int, int]]] = {
    "get": [(_RO_ACCESS, 1, 0, 1)],
    "set": [(("RW", "access", "update", "variable_flags"), 1, 0, 1)],
    "setnx": [(("OW", "insert"), 1, 0, 1)],
    "setex": [(("OW", "update"), 1, 0, 1)],
    "psetex": [(("OW", "update"), 1, 0, 1)],
    "getset": [(_RW_ACCESS_UPDATE, 1, 0, 1)],
    "getdel": [(("RW", "access", "delete"), 1, 0, 1)],
    "getex": [(_RW_ACCESS_UPDATE, 1, 0, 1)],
    "mget": [(_RO_ACCESS, 1, -1, 1)],
    "mset": [(("OW", "update"), 1, -1, 2)],
    "msetnx": [(("OW", "insert"), 1, -1, 2)],
    "incr": [(_RW_ACCESS_UPDATE, 1, 0, 1)],
    "decr": [(_RW_ACCESS_UPDATE, 1, 0, 1)],
    "incrby": [(_RW_ACCESS_UPDATE, 1, 0, 1)],
    "decrby": [(_RW_ACCESS_UPDATE, 1, 0, 1)],
    "incrbyfloat": [(_RW_ACCESS_UPDATE, 1, 0, 1)],
    "append": [(("RW", "insert"), 1, 0, 1)],
    "strlen": [(("RO",), 1, 0, 1)],
    "getrange": [(_RO_ACCESS, 1, 0, 1)],
    "substr": [(_RO_ACCESS, 1, 0, 1)],
    "setrange": [(_RW_UPDATE, 1, 0, 1)],
    "del": [(("RM", "delete"), 1, -1, 1)],
    "unlink": [(("RM", "delete"), 1, -1, 1)],
    "exists": [(("RO",), 1, -1, 1)],
    "expire": [(_RW_UPDATE, 1, 0, 1)],
    "pexpire": [(_RW_UPDATE, 1, 0, 1)],
    "expireat": [(_RW_UPDATE, 1, 0, 1)],
    "pexpireat": [(_RW_UPDATE, 1, 0, 1)],
    "expiretime": [(_RO_ACCESS, 1, 0, 1)],
    "pexpiretime": [(_RO_ACCESS, 1, 0, 1)],
    "ttl": [(_RO_ACCESS, 1, 0, 1)],
    "pttl": [(_RO_ACCESS, 1, 0, 1)],
    "persist": [(_RW_UPDATE, 1, 0, 1)],
    "type": [(("RO",), 1, 0, 1)],
    "rename": [(("RW", "access", "delete"), 1, 0, 1), (("OW", "update"), 2, 0, 1)],
    "renamenx": [(("RW", "access", "delete"), 1, 0, 1), (("OW", "insert"), 2, 0, 1)],
    "watch": [(("RO",), 1, -1, 1)],
    "dump": [(_RO_ACCESS, 1, 0, 1)],
    "restore": [(("OW", "update"), 1, 0, 1)],
    "hset": [(_RW_UPDATE, 1, 0, 1)],
    "hmset": [(_RW_UPDATE, 1, 0, 1)],
    "hsetnx": [(("RW", "insert"), 1, 0, 1)],
    "hget": [(_RO_ACCESS, 1, 0, 1)],
    "hmget": [(_RO_ACCESS, 1, 0, 1)],
    "hincrby": [(_RW_ACCESS_UPDATE, 1, 0, 1)],
    "hincrbyfloat": [(_RW_ACCESS_UPDATE, 1, 0, 1)],
    "hdel": [(("RW", "delete"), 1, 0, 1)],
    "hlen": [(("RO",), 1, 0, 1)],
    "hstrlen": [(("RO",), 1, 0, 1)],
    "hexists": [(("RO",), 1, 0, 1)],
    "hkeys": [(_RO_ACCESS, 1, 0, 1)],
    "hvals": [(_RO_ACCESS, 1, 0, 1)],
    "hgetall": [(_RO_ACCESS, 1, 0, 1)],
    "hrandfield": [(_RO_ACCESS, 1, 0, 1)],
    "hscan": [(_RO_ACCESS, 1, 0, 1)],
}


# Key specs of the subcommands that have keys (Redis 7.0's), for COMMAND
# GETKEYS only: COMMAND INFO lists subcommands without key specs.
SUBCOMMAND_KEY_SPECS: dict[str, list[tuple[tuple[str, ...], int, int, int]]] = {
    "memory|usage": [(("RO",), 2, 0, 1)],
    "object|encoding": [(("RO",), 2, 0, 1)],
    "object|freq": [(("RO",), 2, 0, 1)],
    "object|idletime": [(("RO",), 2, 0, 1)],
    "object|refcount": [(("RO",), 2, 0, 1)],
}


def _key_specs_of(spec: CommandSpec) -> list[tuple[tuple[str, ...], int, int, int]]:
    if spec.name in KEY_SPECS:
        return KEY_SPECS[spec.name]
    if spec.first_key <= 0:
        return []
    last_key = spec.last_key - spec.first_key if spec.last_key >= 0 else spec.last_key
    return [(("RW", "update") if spec.is_write else ("RO", "access"), spec.first_key, last_key, spec.key_step)]


def _table():
    from .redis import REDIS_COMMANDS  # import cycle: the table imports this module

    return REDIS_COMMANDS


def redis_flags(flags: tuple[str, ...]) -> list[SimpleString]:
    return [SimpleString(flag) for flag in REDIS_FLAGS if flag in flags]


def acl_categories(flags: tuple[str, ...], extra: tuple[str, ...], group: str) -> list[SimpleString]:
    categories = set(extra)
    # A generic command is @keyspace, except WAIT, which Redis files under
    # @connection instead.
    if group in GROUP_CATEGORY and not (group == "generic" and "connection" in extra):
        categories.add(GROUP_CATEGORY[group])
    for flag, added in IMPLIED_CATEGORIES.items():
        if flag in flags:
            categories.update(added)
    if "readonly" in flags and "scripting" not in categories:
        categories.add("read")
    if "fast" not in categories:
        categories.add("slow")
    return [SimpleString("@" + category) for category in ACL_CATEGORIES if category in categories]


def key_specs(spec: CommandSpec) -> list[Map]:
    return [
        Map(
            [
                (b"flags", Set([SimpleString(flag) for flag in flags])),
                (b"begin_search", Map([(b"type", b"index"), (b"spec", Map([(b"index", first_key)]))])),
                (
                    b"find_keys",
                    Map(
                        [
                            (b"type", b"range"),
                            (b"spec", Map([(b"lastkey", last_key), (b"keystep", step), (b"limit", 0)])),
                        ]
                    ),
                ),
            ]
        )
        for flags, first_key, last_key, step in _key_specs_of(spec)
    ]


def _subcommands(spec: CommandSpec) -> list[Subcommand]:
    handler = spec.handler
    return list(handler.subcommands.values()) if isinstance(handler, Container) else []


def subcommand_info(spec: CommandSpec, entry: Subcommand) -> list[object]:
    return [
        f"{spec.name}|{entry.name}".encode(),
        entry.arity,
        Set(redis_flags(entry.flags)),
        0,
        0,
        0,
        Set(acl_categories(entry.flags, entry.categories, spec.group)),
        Set([]),
        Set([]),
        Set([]),
    ]


def command_info(spec: CommandSpec) -> list[object]:
    return [
        spec.name.encode(),
        spec.arity,
        Set(redis_flags(spec.flags)),
        spec.first_key,
        spec.last_key,
        spec.key_step,
        Set(acl_categories(spec.flags, spec.categories, spec.group)),
        Set([tip.encode() for tip in TIPS.get(spec.name, ())]),
        Set(key_specs(spec)),
        # Redis' addReplyCommandSubCommands: an empty set, or an array.
        [subcommand_info(spec, entry) for entry in subcommands] if (subcommands := _subcommands(spec)) else Set([]),
    ]


def _lookup(name: bytes) -> tuple[CommandSpec, Subcommand | None] | None:
    """A command or ``container|subcommand`` by name, any case."""
    container_name, _, sub_name = name.decode("utf-8", "replace").lower().partition("|")
    spec = _table().get(container_name)
    if spec is None:
        return None
    if not sub_name:
        return spec, None
    for entry in _subcommands(spec):
        if entry.name == sub_name:
            return spec, entry
    return None


def _all_names() -> Iterator[tuple[str, CommandSpec, Subcommand | None]]:
    for spec in _table().specs.values():
        yield spec.name, spec, None
        for entry in _subcommands(spec):
            yield f"{spec.name}|{entry.name}", spec, entry


def cmd_command(session: Session, args: list[bytes]) -> list[object]:
    return [command_info(spec) for spec in _table().specs.values()]


def command_count(session: Session, args: list[bytes]) -> int:
    return len(_table())


def command_info_reply(session: Session, args: list[bytes]) -> list[object]:
    if len(args) == 2:
        return cmd_command(session, args)
    replies: list[object] = []
    for name in args[2:]:
        found = _lookup(name)
        if found is None:
            replies.append(None)
        else:
            spec, entry = found
            replies.append(command_info(spec) if entry is None else subcommand_info(spec, entry))
    return replies


def _docs(
    summary: str, since: str | None, group: str, subcommands: list[tuple[object, object]] | None = None
) -> Map:
    pairs: list[tuple[object, object]] = [(b"summary", summary.encode())]
    if since:
        pairs.append((b"since", since.encode()))
    pairs.append((b"group", group.encode()))
    if subcommands:
        pairs.append((b"subcommands", Map(subcommands)))
    return Map(pairs)


def _spec_docs(spec: CommandSpec) -> Map:
    subcommands: list[tuple[object, object]] = [
        (f"{spec.name}|{entry.name}".encode(), _docs(entry.summary, entry.since, spec.group))
        for entry in _subcommands(spec)
    ]
    return _docs(spec.summary, spec.since, spec.group, subcommands)


def command_docs(session: Session, args: list[bytes]) -> Map:
    if len(args) == 2:
        return Map([(spec.name.encode(), _spec_docs(spec)) for spec in _table().specs.values()])
    pairs: list[tuple[object, object]] = []
    for name in args[2:]:
        found = _lookup(name)
        if found is None:
            continue
        spec, entry = found
        if entry is None:
            pairs.append((spec.name.encode(), _spec_docs(spec)))
        else:
            pairs.append((f"{spec.name}|{entry.name}".encode(), _docs(entry.summary, entry.since, spec.group)))
    return Map(pairs)


def command_list(session: Session, args: list[bytes]) -> object:
    if len(args) == 2:
        return [name.encode() for name, _, _ in _all_names()]
    if len(args) != 5 or args[2].lower() != b"filterby":
        return SYNTAX_ERROR
    kind, value = args[3].lower(), args[4]
    if kind == b"module":
        return []
    if kind == b"pattern":
        return [name.encode() for name, _, _ in _all_names() if glob_match(value, name.encode(), nocase=True)]
    if kind == b"aclcat":
        wanted = SimpleString("@" + value.decode("utf-8", "replace").lower())
        return [
            name.encode()
            for name, spec, entry in _all_names()
            if wanted in (
                acl_categories(spec.flags, spec.categories, spec.group)
                if entry is None
                else acl_categories(entry.flags, entry.categories, spec.group)
            )
        ]
    return SYNTAX_ERROR


def _command_for_getkeys(command: list[bytes]) -> tuple[str, CommandSpec, Subcommand | None] | None:
    """Redis' ``lookupCommand`` for COMMAND GETKEYS: the command, or its
    subcommand when it has subcommands and one is named; None if unknown."""
    spec = _table().get(command[0].decode("utf-8", "replace"))
    if spec is None:
        return None
    if len(command) == 1 or not _subcommands(spec):
        return spec.name, spec, None
    sub_name = command[1].decode("utf-8", "replace").lower()
    for entry in _subcommands(spec):
        if entry.name == sub_name:
            return f"{spec.name}|{entry.name}", spec, entry
    return None


def _keys_and_flags(args: list[bytes]) -> list[tuple[bytes, tuple[str, ...]]] | Error:
    """The keys of the command in ``args[2:]`` with their key spec flags, or
    Redis' error for COMMAND GETKEYS / GETKEYSANDFLAGS, checked in the order
    of Redis 7.0's getKeysSubcommandImpl: the command is known, it has keys,
    the argument count fits its arity, then its key specs find the keys
    (getKeysUsingKeySpecs: a range that starts or ends past the arguments
    is an error, not a short list)."""
    command = args[2:]
    found_command = _command_for_getkeys(command)
    if found_command is None:
        return Error("ERR Invalid command specified")
    name, spec, entry = found_command
    specs = SUBCOMMAND_KEY_SPECS.get(name, []) if entry is not None else _key_specs_of(spec)
    if not specs:
        return Error("ERR The command has no key arguments")
    if not arity_accepts(spec.arity if entry is None else entry.arity, len(command)):
        return Error("ERR Invalid number of arguments specified for command")
    if name == "set":
        # Redis' setGetKeys (SET's key spec has variable flags): SET
        # overwrites, or reads too when given GET.
        with_get = any(arg.lower() == b"get" for arg in command[3:])
        return [(command[1], _RW_ACCESS_UPDATE if with_get else ("OW", "update"))]
    found: list[tuple[bytes, tuple[str, ...]]] = []
    for flags, first_key, last_key, step in specs:
        last = first_key + last_key if last_key >= 0 else len(command) + last_key
        if last >= len(command) or last < first_key or first_key >= len(command):
            return Error("ERR Invalid arguments specified for command")
        found.extend((key, flags) for key in command[first_key : last + 1 : step])
    return found


def command_getkeys(session: Session, args: list[bytes]) -> object:
    found = _keys_and_flags(args)
    if isinstance(found, Error):
        return found
    return [key for key, _flags in found]


def command_getkeysandflags(session: Session, args: list[bytes]) -> object:
    found = _keys_and_flags(args)
    if isinstance(found, Error):
        return found
    return [[key, Set([SimpleString(flag) for flag in flags])] for key, flags in found]



COMMAND = Container(
    "command",
    [
        Subcommand(
            name="count", arity=2, lock=Lock.READ, flags=("loading", "stale"), categories=("connection",),
            usage="COUNT", since="2.8.13", handler=command_count,
            summary="Return the total number of commands in this server.",
        ),
        Subcommand(
            name="list", arity=-2, lock=Lock.READ, flags=("loading", "stale"), categories=("connection",),
            usage="LIST [FILTERBY (MODULE <module-name>|ACLCAT <category>|PATTERN <pattern>)]", since="7.0.0",
            handler=command_list, summary="Return a list of all commands in this server.",
        ),
        Subcommand(
            name="info", arity=-2, lock=Lock.READ, flags=("loading", "stale"), categories=("connection",),
            usage="INFO [<command-name> ...]", since="2.8.13", handler=command_info_reply,
            summary="Return details about multiple commands (all if none given).",
        ),
        Subcommand(
            name="docs", arity=-2, lock=Lock.READ, flags=("loading", "stale"), categories=("connection",),
            usage="DOCS [<command-name> ...]", since="7.0.0", handler=command_docs,
            summary="Return documentation details about multiple commands (all if none given).",
        ),
        Subcommand(
            name="getkeys", arity=-4, lock=Lock.READ, flags=("loading", "stale"), categories=("connection",),
            usage="GETKEYS <full-command>", since="2.8.13", handler=command_getkeys,
            summary="Return the keys from a full Redis command.",
        ),
        Subcommand(
            name="getkeysandflags", arity=-4, lock=Lock.READ, flags=("loading", "stale"), categories=("connection",),
            usage="GETKEYSANDFLAGS <full-command>", since="7.0.0", handler=command_getkeysandflags,
            summary="Return the keys and the access flags from a full Redis command.",
        ),
    ],
    bare=cmd_command,
)

SPECS: list[CommandSpec] = [
    CommandSpec(
        name="command", arity=-1, lock=Lock.READ, flags=("loading", "stale"), categories=("connection",),
        since="2.8.13", group="server", handler=COMMAND, summary="Returns detailed information about all commands.",
    ),
]
