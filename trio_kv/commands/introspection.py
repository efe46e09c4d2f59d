"""COMMAND: the command table served to clients, in Redis 7's shapes.

Everything is derived from the ``CommandSpec`` entries of the Redis table
(``commands.redis.REDIS_COMMANDS``) and the subcommand tables of container
commands (``commands.container``), so nothing here repeats the table:

* ``COMMAND`` / ``COMMAND INFO [name ...]``: per command ``[name, arity,
  [flags], first key, last key, step, [@categories], [tips], [key specs],
  [subcommands]]``. Flags are the spec's flags that Redis knows (trio_kv's
  own, like ``multi-control``, are not shown), in Redis' order. ACL
  categories are derived as Redis' ``setImplicitACLCategories`` does (write,
  read, admin+dangerous, fast or slow...) plus the group's category
  (``string`` -> ``@string``) plus any flag spelled ``@category`` in the
  spec. Key specs are Redis 7.0's for the same command (``KEY_SPECS``:
  flags, first key, last key, step, copied from redis-server's COMMAND
  INFO), else one range spec built from first/last/step, flagged ``RW
  update`` for write commands and ``RO access`` otherwise. Tips from
  ``TIPS`` (Redis 7.0's, for the commands that have any).
* ``COMMAND DOCS [name ...]``: name -> {summary, since, group} (and
  subcommands). ``since`` comes from ``SINCE`` (Redis' values) and is left
  out for a command not listed there.
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
from ..protocol.replies import Error, Map, SimpleString
from .connection import SYNTAX_ERROR
from .container import Container, Subcommand, subcommand
from .session import Session
from .table import CommandSpec

# Redis' command flags, in the order COMMAND INFO lists them.
REDIS_FLAG_ORDER = (
    "write readonly denyoom module admin pubsub noscript blocking loading stale skip_monitor skip_slowlog "
    "asking fast no_auth may_replicate sentinel only_sentinel no_mandatory_keys protected no_async_loading "
    "no_multi movablekeys allow_busy"
).split()
# Redis' ACL categories, in the order COMMAND INFO lists them.
ACL_CATEGORY_ORDER = (
    "keyspace read write set sortedset list hash string bitmap hyperloglog geo stream pubsub admin fast slow "
    "blocking dangerous connection transaction scripting"
).split()
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
# The Redis version that introduced each command (Redis' commands/*.json).
SINCE = {
    "append": "2.0.0", "auth": "1.0.0", "client": "2.4.0", "cluster": "3.0.0", "command": "2.8.13",
    "config": "2.0.0", "function": "7.0.0", "memory": "4.0.0",
    "copy": "6.2.0", "dbsize": "1.0.0", "decr": "1.0.0", "decrby": "1.0.0", "del": "1.0.0",
    "discard": "2.0.0", "echo": "1.0.0", "exec": "1.2.0", "exists": "1.0.0", "expire": "1.0.0",
    "expireat": "1.2.0", "expiretime": "7.0.0", "flushall": "1.0.0", "flushdb": "1.0.0", "get": "1.0.0",
    "getdel": "6.2.0", "getex": "6.2.0", "getrange": "2.4.0", "getset": "1.0.0", "hello": "6.0.0",
    "incr": "1.0.0", "incrby": "1.0.0", "incrbyfloat": "2.6.0", "info": "1.0.0", "keys": "1.0.0",
    "latency": "2.8.13", "lcs": "7.0.0", "mget": "1.0.0", "move": "1.0.0", "mset": "1.0.1",
    "msetnx": "1.0.1", "multi": "1.2.0", "object": "2.2.3", "persist": "2.2.0", "pexpire": "2.6.0",
    "pexpireat": "2.6.0", "pexpiretime": "7.0.0", "ping": "1.0.0", "psetex": "2.6.0", "pttl": "2.6.0",
    "quit": "1.0.0", "randomkey": "1.0.0", "rename": "1.0.0", "renamenx": "1.0.0", "reset": "6.2.0",
    "scan": "2.8.0", "select": "1.0.0", "set": "1.0.0", "setex": "2.0.0", "setnx": "1.0.0",
    "setrange": "2.2.0", "shutdown": "1.0.0", "slowlog": "2.2.12", "strlen": "2.2.0", "substr": "1.0.0",
    "swapdb": "4.0.0", "time": "2.6.0", "touch": "3.2.1", "ttl": "1.0.0", "type": "1.0.0",
    "unlink": "4.0.0", "unwatch": "2.2.0", "watch": "2.2.0",
    "hset": "2.0.0", "hsetnx": "2.0.0", "hget": "2.0.0", "hmset": "2.0.0", "hmget": "2.0.0", "hincrby": "2.0.0",
    "hincrbyfloat": "2.6.0", "hdel": "2.0.0", "hlen": "2.0.0", "hstrlen": "3.2.0", "hkeys": "2.0.0",
    "hvals": "2.0.0", "hgetall": "2.0.0", "hexists": "2.0.0", "hrandfield": "6.2.0", "hscan": "2.8.0",
}
# Redis 7.0's command tips, for the commands that have any.
TIPS = {
    "hgetall": ("nondeterministic_output_order",), "hkeys": ("nondeterministic_output_order",),
    "hvals": ("nondeterministic_output_order",), "hrandfield": ("nondeterministic_output",),
    "hscan": ("nondeterministic_output",),
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


def redis_flags(flags: frozenset[str]) -> list[SimpleString]:
    return [SimpleString(flag) for flag in REDIS_FLAG_ORDER if flag in flags]


def acl_categories(flags: frozenset[str], group: str) -> list[SimpleString]:
    categories = {flag[1:] for flag in flags if flag.startswith("@")}
    if group in GROUP_CATEGORY:
        categories.add(GROUP_CATEGORY[group])
    for flag, added in IMPLIED_CATEGORIES.items():
        if flag in flags:
            categories.update(added)
    if "readonly" in flags and "scripting" not in categories:
        categories.add("read")
    if "fast" not in categories:
        categories.add("slow")
    return [SimpleString("@" + category) for category in ACL_CATEGORY_ORDER if category in categories]


def key_specs(spec: CommandSpec) -> list[Map]:
    return [
        Map(
            [
                (b"flags", [SimpleString(flag) for flag in flags]),
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
        redis_flags(entry.flags),
        0,
        0,
        0,
        acl_categories(entry.flags, spec.group),
        [],
        [],
        [],
    ]


def command_info(spec: CommandSpec) -> list[object]:
    return [
        spec.name.encode(),
        spec.arity,
        redis_flags(spec.flags),
        spec.first_key,
        spec.last_key,
        spec.key_step,
        acl_categories(spec.flags, spec.group),
        [tip.encode() for tip in TIPS.get(spec.name, ())],
        key_specs(spec),
        [subcommand_info(spec, entry) for entry in _subcommands(spec)],
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


def _docs(summary: str, since: str, group: str, subcommands: list[tuple[bytes, Map]] | None = None) -> Map:
    pairs: list[tuple[object, object]] = [(b"summary", summary.encode())]
    if since:
        pairs.append((b"since", since.encode()))
    pairs.append((b"group", group.encode()))
    if subcommands:
        pairs.append((b"subcommands", Map(subcommands)))
    return Map(pairs)


def _spec_docs(spec: CommandSpec) -> Map:
    subcommands = [
        (f"{spec.name}|{entry.name}".encode(), _docs(entry.summary, entry.since, spec.group))
        for entry in _subcommands(spec)
    ]
    return _docs(spec.summary, SINCE.get(spec.name, ""), spec.group, subcommands)


def command_docs(session: Session, args: list[bytes]) -> Map:
    if len(args) == 2:
        return Map([(spec.name.encode(), _spec_docs(spec)) for spec in _table().specs.values()])
    pairs = []
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
            if wanted in acl_categories(spec.flags if entry is None else entry.flags, spec.group)
        ]
    return SYNTAX_ERROR


def _keys_and_flags(args: list[bytes]) -> list[tuple[bytes, tuple[str, ...]]] | Error:
    """The keys of the command in ``args[2:]`` with their key spec flags, or
    Redis' error for COMMAND GETKEYS / GETKEYSANDFLAGS."""
    command = args[2:]
    spec = _table().get(command[0].decode("utf-8", "replace"))
    if spec is None:
        return Error("ERR Invalid command specified")
    if not spec.arity_ok(len(command)):
        return Error("ERR Invalid number of arguments specified for command")
    found: list[tuple[bytes, tuple[str, ...]]] = []
    for flags, first_key, last_key, step in _key_specs_of(spec):
        if first_key >= len(command):
            continue
        last = first_key + last_key if last_key >= 0 else len(command) + last_key
        found.extend((key, flags) for key in command[first_key : last + 1 : step or 1])
    if not found:
        return Error("ERR The command has no key arguments")
    if spec.name == "set":
        # Redis' setGetKeys: SET overwrites, or reads too when given GET.
        with_get = any(arg.lower() == b"get" for arg in command[3:])
        found = [(found[0][0], _RW_ACCESS_UPDATE if with_get else ("OW", "update"))]
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
    return [[key, [SimpleString(flag) for flag in flags]] for key, flags in found]


_INTROSPECTION = "loading stale @connection"

COMMAND = Container(
    "command",
    [
        subcommand(
            "count", 2, _INTROSPECTION, "COUNT",
            "Return the total number of commands in this server.", command_count, "2.8.13",
        ),
        subcommand(
            "list", -2, _INTROSPECTION, "LIST [FILTERBY (MODULE <module-name>|ACLCAT <category>|PATTERN <pattern>)]",
            "Return a list of all commands in this server.", command_list, "7.0.0",
        ),
        subcommand(
            "info", -2, _INTROSPECTION, "INFO [<command-name> ...]",
            "Return details about multiple commands (all if none given).", command_info_reply, "2.8.13",
        ),
        subcommand(
            "docs", -2, _INTROSPECTION, "DOCS [<command-name> ...]",
            "Return documentation details about multiple commands (all if none given).", command_docs, "7.0.0",
        ),
        subcommand(
            "getkeys", -4, _INTROSPECTION, "GETKEYS <full-command>",
            "Return the keys from a full Redis command.", command_getkeys, "2.8.13",
        ),
        subcommand(
            "getkeysandflags", -4, _INTROSPECTION, "GETKEYSANDFLAGS <full-command>",
            "Return the keys and the access flags from a full Redis command.", command_getkeysandflags, "7.0.0",
        ),
    ],
    bare=cmd_command,
)

SPECS: list[CommandSpec] = [
    CommandSpec(
        "command", -1, frozenset({"loading", "stale", "@connection"}),
        "Returns detailed information about all commands.", COMMAND, group="server",
    ),
]
