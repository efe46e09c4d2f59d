"""The line protocol's commands: what `nc` and `socat` users type.

Each handler takes the connection's ``Session`` and the request tokens
(``args[0]`` is the command name) and returns a reply value, never bytes:
``OK``/``NOT_FOUND``/``PONG`` (a ``SimpleString``), a ``Labelled`` line
(``VALUE``, ``TTL``), a ``Listing`` (KEYS), ``Fields`` (STATS), a ``Table``
(LATENCY), or an ``Error`` whose message is the text after ``ERROR``;
``protocol.text`` alone turns them into bytes. Handlers do no IO and take no
locks: the engine holds the lock each spec declares.

Replies (see README, "Text protocol"):

    SET key value [EX seconds | PX milliseconds]   -> OK
    GET key                -> VALUE <value> | NOT_FOUND
    DEL key                -> OK | NOT_FOUND
    TTL key                -> TTL <ms left> | TTL -1 | NOT_FOUND
    KEYS [prefix]          -> KEYS <n>, then n lines with one key each
    STATS                  -> gets:N sets:N dels:N errors:N keys:N bytes:N
    LATENCY                -> <command> count:N p50_us:N p95_us:N p99_us:N ..., END
    PING                   -> PONG
    QUIT                   -> OK, then the server closes the connection
    AUTH [user] password   -> OK | ERROR WRONGPASS ... (user: only "default")

While a password is set (``--requirepass``), a connection runs only AUTH and
QUIT until it has authenticated; anything else is ``ERROR NOAUTH ...``
(commands.auth has the rules, the engine the check).

An HTTP request (``POST ...``, ``Host: ...``, ``GET / HTTP/1.1``) closes the
connection without a reply (``commands.security``).

Values and keys in replies go through ``protocol.text.escape_value`` when
encoded, so a reply is always one line.
"""

from __future__ import annotations

from ..protocol.integers import parse_integer
from ..protocol.replies import NO_REPLY, OK, PONG, Error, SimpleString
from ..protocol.text import NOT_FOUND, Fields, Labelled, Listing, Table, display_order
from .ordered import RANGE_SPEC
from .ordered_range import RangeSlices, prefix_end
from .auth import DEFAULT_USER, TEXT_NO_PASSWORD_CONFIGURED, TEXT_WRONGPASS, check_credentials, redact
from .security import security_warning_spec
from .session import Session
from .slicing import KeysSlices
from .table import ONE_KEY, CommandSpec, CommandTable, Lock

# Longest expiry accepted: Redis' limit, so times stay representable in ms.
MAX_EXPIRE_MS = (1 << 62) // 1000

INVALID_EXPIRE = Error("invalid expire time")


def _parse_expiry_amount(token: bytes) -> int | None:
    """1 to 19 ASCII digits, leading zeros allowed, more than 0 (the caller
    bounds the value by MAX_EXPIRE_MS)."""
    return parse_integer(token, minus=False, leading_zeros=True, max_bytes=19, minimum=1, maximum=None)


def _check_sizes(session: Session, key: bytes, value: bytes | None = None) -> Error | None:
    config = session.config
    if len(key) > config.max_key_bytes:
        return Error(f"key too long (max {config.max_key_bytes} bytes)")
    if value is not None and len(value) > config.max_value_bytes:
        return Error(f"value too long (max {config.max_value_bytes} bytes)")
    return None


def cmd_set(session: Session, args: list[bytes]) -> SimpleString | Error:
    key, value = args[1], args[2]
    problem = _check_sizes(session, key, value)
    if problem is not None:
        return problem
    expire_at_ms = None
    if len(args) == 5:
        unit = args[3].upper()
        if unit not in (b"EX", b"PX"):
            return Error("syntax error")
        amount = _parse_expiry_amount(args[4])
        if amount is None:
            return INVALID_EXPIRE
        ttl_ms = amount * 1000 if unit == b"EX" else amount
        if ttl_ms > MAX_EXPIRE_MS:
            return INVALID_EXPIRE
        expire_at_ms = session.keyspace.now_ms() + ttl_ms
    elif len(args) != 3:
        return Error("wrong number of arguments for 'set'")
    session.keyspace.set(key, value, expire_at_ms)
    return OK


def cmd_get(session: Session, args: list[bytes]) -> Labelled | SimpleString:
    value = session.keyspace.get(args[1])
    if value is None:
        return NOT_FOUND
    return Labelled(b"VALUE", value)


def cmd_del(session: Session, args: list[bytes]) -> SimpleString:
    key = args[1]
    if session.keyspace.delete(key):
        return OK
    # Cluster mode: a live sibling behind a tombstone is deleted too (RESP's DEL rule, store/versions.py).
    versions = session.store.versions
    return OK if versions is not None and versions.delete_hidden(key) else NOT_FOUND


def cmd_ttl(session: Session, args: list[bytes]) -> Labelled | SimpleString:
    ttl_ms = session.keyspace.ttl_ms(args[1])
    if ttl_ms is None:
        return NOT_FOUND
    return Labelled(b"TTL", ttl_ms)


def cmd_keys(session: Session, args: list[bytes]) -> KeysSlices | RangeSlices | Error:
    """Run in slices (commands/slicing.py); the walk stops once more than
    ``--max-keys-reply`` keys matched. With the sorted key index (on by
    default) the walk covers only the keys with the prefix
    (commands/ordered_range.py): O(log n + matches) instead of the whole
    table, and exact as RESP KEYS is (a walk longer than one slice reads a
    snapshot opened at the end of its first). Without the index, the
    table walk's guarantee: every key present for the whole call, once."""
    if len(args) > 2:
        return Error("wrong number of arguments for 'keys'")
    prefix = args[1] if len(args) == 2 else b""
    limit = session.config.max_keys_reply

    def reply(keys: list[bytes], cursor: int) -> Listing | Error:
        if cursor != 0 or len(keys) > limit:
            return Error(f"too many keys (more than {limit}); use a longer prefix or SCAN over RESP")
        return Listing(b"KEYS", display_order(keys))

    if session.store.sorted_index is not None:
        return RangeSlices(
            session.keyspace, prefix, prefix_end(prefix), high_inclusive=False, count=limit + 1,
            make_reply=lambda keys: reply(keys, 0), exact=True,  # type: ignore[arg-type]
        )
    starts = (lambda key: key.startswith(prefix)) if prefix else None
    return KeysSlices(session.keyspace, starts, max_keys=limit + 1, make_reply=reply)


def cmd_stats(session: Session, args: list[bytes]) -> Fields:
    counters = session.stats.counters()
    keyspace = session.keyspace
    return Fields(
        (
            ("gets", counters["gets"]),
            ("sets", counters["sets"]),
            ("dels", counters["dels"]),
            ("errors", counters["errors"]),
            ("keys", len(keyspace)),
            ("bytes", keyspace.value_bytes),
        )
    )


def cmd_latency(session: Session, args: list[bytes]) -> Table:
    return Table(
        tuple(
            Fields((("count", count), ("p50_us", p50), ("p95_us", p95), ("p99_us", p99)), word=name.encode())
            for name, count, p50, p95, p99 in session.stats.latency_summary()
        )
    )


def cmd_ping(session: Session, args: list[bytes]) -> SimpleString:
    return PONG


def cmd_quit(session: Session, args: list[bytes]) -> SimpleString:
    session.closing = True
    return OK


def cmd_auth(session: Session, args: list[bytes]) -> SimpleString | Error:
    request = list(args)
    redact(args, *range(1, len(args)))  # never in the slow log
    args = request
    if len(args) > 3:
        return Error("wrong number of arguments for 'auth'")
    if len(args) == 2 and session.store.requirepass is None:
        return TEXT_NO_PASSWORD_CONFIGURED
    username, password = (DEFAULT_USER, args[1]) if len(args) == 2 else (args[1], args[2])
    if not check_credentials(session.store, username, password):
        return TEXT_WRONGPASS
    session.authenticated = True
    return OK


# The line protocol's own commands: no COMMAND DOCS, so no ``since``. The
# key positions (``keys=ONE_KEY``) route a request in a cluster: a key this
# node does not replicate is forwarded, one it does is read at quorum.
TEXT_COMMANDS = CommandTable(
    [
        CommandSpec(
            name="set", keys=ONE_KEY, arity=-3, lock=Lock.WRITE, flags=("write", "denyoom"), counter="sets", since=None, group="generic",
            handler=cmd_set, summary="SET key value [EX seconds|PX milliseconds]: store a value",
        ),
        CommandSpec(
            name="get", keys=ONE_KEY, arity=2, lock=Lock.READ, flags=("readonly", "fast"), counter="gets", since=None,
            group="generic", handler=cmd_get, summary="GET key: the value, or NOT_FOUND",
        ),
        CommandSpec(
            name="del", keys=ONE_KEY, arity=2, lock=Lock.WRITE, flags=("write",), counter="dels", since=None, group="generic",
            handler=cmd_del, summary="DEL key: remove a key",
        ),
        CommandSpec(
            name="ttl", keys=ONE_KEY, arity=2, lock=Lock.READ, flags=("readonly", "fast"), since=None, group="generic",
            handler=cmd_ttl, summary="TTL key: milliseconds left, -1 without expiry",
        ),
        CommandSpec(
            name="keys", arity=-1, lock=Lock.READ, flags=("readonly",), may_slice=True, since=None,
            group="generic", handler=cmd_keys, summary="KEYS [prefix]: list keys, sorted",
        ),
        RANGE_SPEC,
        CommandSpec(
            name="stats", arity=1, lock=Lock.READ, flags=("readonly",), reads_stats=True, since=None,
            group="generic", handler=cmd_stats, summary="STATS: the six counters",
        ),
        CommandSpec(
            name="latency", arity=1, lock=Lock.READ, flags=("readonly",), reads_stats=True, since=None,
            group="generic", handler=cmd_latency, summary="LATENCY: per-command latency percentiles in us",
        ),
        CommandSpec(
            name="ping", arity=1, lock=Lock.READ, flags=("readonly", "fast"), since=None, group="generic",
            handler=cmd_ping, summary="PING: PONG",
        ),
        CommandSpec(
            name="quit", arity=1, lock=Lock.READ, flags=("readonly", "fast", "no_auth"), since=None,
            group="generic", handler=cmd_quit, summary="QUIT: OK, then close",
        ),
        CommandSpec(
            name="auth", arity=-2, lock=Lock.READ, flags=("readonly", "fast", "no_auth"), since=None,
            group="generic", handler=cmd_auth, summary="AUTH [user] password: log in (see --requirepass)",
        ),
    ],
    unknown_command=lambda args: Error("unknown command"),
    wrong_arity=lambda spec: Error(f"wrong number of arguments for '{spec.name}'"),
    # An HTTP request (POST, Host:, GET / HTTP/1.1): close without a reply.
    http_request=security_warning_spec("post", NO_REPLY),
)
