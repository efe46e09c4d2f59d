"""Redis hash commands: HSET, HGET and the rest of the family.

Behaviour and error wording follow Redis 7.0 (``t_hash.c``), checked reply
for reply against a real redis-server 7.0 (tests/integration/
test_hashes_vs_redis.py). The value is ``HashValue`` (commands/hash_value.py:
a dict of bytes, why in its docstring); every change goes through
``Keyspace.update`` with a ``HashUpdate``, so this module never checks a
key's type: the keyspace raises ``WrongType`` (commands/values.py).

Rules kept here:

* Argument errors come first, in Redis' order (argument count, numbers),
  then the key's type, so a failed command changes nothing. A hash is never
  empty: the keyspace deletes a key whose last field went.
* HINCRBY / HINCRBYFLOAT are logged as the field's new value (absolute), as
  Redis propagates HINCRBYFLOAT; integers parse like ``string2ll``, floats
  like ``string2ld`` and are computed as 80-bit long doubles (strings.py).
* Limits: the key as ``check_key``, each field and each value as
  ``check_value_size`` (``config.max_value_bytes``).
* HSCAN answers the whole hash in one reply with cursor 0 (as Redis does
  for a small, listpack-encoded hash): correct for any cursor, one reply
  as large as the hash.
* Counters (``STATS``): reads count as ``gets``, writes as ``sets``, HDEL
  as ``dels``. Keyspace hits/misses move for every read lookup (a key of
  the wrong type is a hit, as in Redis).
"""

from __future__ import annotations

import random
from fractions import Fraction

from ..protocol.glob import compile_glob
from ..protocol.replies import OK, Error, Map
from .arguments import (
    INT64_MAX,
    INT64_MIN,
    NOT_A_FLOAT,
    NOT_AN_INTEGER,
    OVERFLOW,
    SYNTAX_ERROR,
    check_key,
    check_value_size,
    count_lookup,
    parse_int64,
)
from .hash_value import HashUpdate, HashValue
from .keys import parse_scan_cursor, parse_scan_options
from .long_double import format_long_double, parse_long_double, round_long_double
from .session import Session
from .table import ONE_KEY, CommandSpec, Lock
from .values import WrongType

HASH_VALUE_NOT_INTEGER = Error("ERR hash value is not an integer")
HASH_VALUE_NOT_FLOAT = Error("ERR hash value is not a float")
NAN_OR_INFINITY = Error("ERR value is NaN or Infinity")
WOULD_BE_NAN_OR_INFINITY = Error("ERR increment would produce NaN or Infinity")
LONG_MAX = INT64_MAX


def _read(session: Session, key: bytes) -> dict[bytes, bytes] | None:
    """The fields of the hash at ``key`` (read only), None if absent; a
    lookup as Redis' lookupKeyRead counts it (a wrong type is a hit)."""
    try:
        value = session.keyspace.get_typed(key, HashValue)
    except WrongType:
        count_lookup(session, True)
        raise
    count_lookup(session, value is not None)
    return None if value is None else value.fields


def _fields_for_write(session: Session, key: bytes) -> dict[bytes, bytes]:
    """The hash's fields before a write (empty if absent); no hit counted
    (Redis' lookupKeyWrite). ``WrongType`` if the key holds something else."""
    value = session.keyspace.get_typed(key, HashValue)
    return {} if value is None else value.fields


def _check_sizes(session: Session, key: bytes, items: list[bytes]) -> Error | None:
    problem = check_key(session, key)
    if problem is not None:
        return problem
    for item in items:
        problem = check_value_size(session, len(item))
        if problem is not None:
            return problem
    return None


def _wrong_arity(args: list[bytes]) -> Error:
    return Error(f"ERR wrong number of arguments for '{args[0].decode('utf-8', 'replace').lower()}' command")


# --- writes ---------------------------------------------------------------------


def _set_pairs(session: Session, args: list[bytes]) -> int | Error:
    """HSET / HMSET: the number of fields added."""
    if len(args) % 2:
        return _wrong_arity(args)
    key = args[1]
    problem = _check_sizes(session, key, args[2:])
    if problem is not None:
        return problem
    fields = _fields_for_write(session, key)
    pairs = [(args[i], args[i + 1]) for i in range(2, len(args), 2)]
    added = len({field for field, _ in pairs if field not in fields})
    session.keyspace.update(key, HashUpdate(pairs))
    return added


def cmd_hset(session: Session, args: list[bytes]) -> int | Error:
    return _set_pairs(session, args)


def cmd_hmset(session: Session, args: list[bytes]) -> object:
    added = _set_pairs(session, args)
    return added if isinstance(added, Error) else OK


def cmd_hsetnx(session: Session, args: list[bytes]) -> int | Error:
    key, field, item = args[1], args[2], args[3]
    problem = _check_sizes(session, key, [field, item])
    if problem is not None:
        return problem
    if field in _fields_for_write(session, key):
        return 0
    session.keyspace.update(key, HashUpdate([(field, item)]))
    return 1


def cmd_hdel(session: Session, args: list[bytes]) -> int:
    key = args[1]
    fields = _fields_for_write(session, key)
    if not fields:
        return 0
    deleted = [field for field in dict.fromkeys(args[2:]) if field in fields]
    if deleted:
        session.keyspace.update(key, HashUpdate(deleted=deleted))
    return len(deleted)


def cmd_hincrby(session: Session, args: list[bytes]) -> int | Error:
    key, field = args[1], args[2]
    delta = parse_int64(args[3])
    if delta is None:
        return NOT_AN_INTEGER
    problem = _check_sizes(session, key, [field])
    if problem is not None:
        return problem
    old = _fields_for_write(session, key).get(field)
    current = 0 if old is None else parse_int64(old)
    if current is None:
        return HASH_VALUE_NOT_INTEGER
    result = current + delta
    if not INT64_MIN <= result <= INT64_MAX:
        return OVERFLOW
    session.keyspace.update(key, HashUpdate([(field, b"%d" % result)]))
    return result


def cmd_hincrbyfloat(session: Session, args: list[bytes]) -> bytes | Error:
    key, field = args[1], args[2]
    delta = parse_long_double(args[3])
    if delta is None:
        return NOT_A_FLOAT
    if isinstance(delta, float):
        return NAN_OR_INFINITY
    problem = _check_sizes(session, key, [field])
    if problem is not None:
        return problem
    old = _fields_for_write(session, key).get(field)
    current = Fraction(0) if old is None else parse_long_double(old)
    if current is None:
        return HASH_VALUE_NOT_FLOAT
    if isinstance(current, float):
        return WOULD_BE_NAN_OR_INFINITY  # a stored inf plus anything finite is inf
    result = round_long_double(current + delta)
    if result is None:
        return WOULD_BE_NAN_OR_INFINITY
    text = format_long_double(result)
    session.keyspace.update(key, HashUpdate([(field, text)]))
    return text


# --- reads ------------------------------------------------------------------------


def cmd_hget(session: Session, args: list[bytes]) -> bytes | None:
    fields = _read(session, args[1])
    return None if fields is None else fields.get(args[2])


def cmd_hmget(session: Session, args: list[bytes]) -> list[bytes | None]:
    fields = _read(session, args[1])
    if fields is None:
        return [None] * (len(args) - 2)
    get = fields.get
    return [get(field) for field in args[2:]]


def cmd_hlen(session: Session, args: list[bytes]) -> int:
    fields = _read(session, args[1])
    return 0 if fields is None else len(fields)


def cmd_hstrlen(session: Session, args: list[bytes]) -> int:
    fields = _read(session, args[1])
    item = None if fields is None else fields.get(args[2])
    return 0 if item is None else len(item)


def cmd_hexists(session: Session, args: list[bytes]) -> int:
    fields = _read(session, args[1])
    return int(fields is not None and args[2] in fields)


def cmd_hkeys(session: Session, args: list[bytes]) -> list[bytes]:
    fields = _read(session, args[1])
    return [] if fields is None else list(fields)


def cmd_hvals(session: Session, args: list[bytes]) -> list[bytes]:
    fields = _read(session, args[1])
    return [] if fields is None else list(fields.values())


def cmd_hgetall(session: Session, args: list[bytes]) -> Map:
    fields = _read(session, args[1])
    return Map([] if fields is None else list(fields.items()))


def cmd_hrandfield(session: Session, args: list[bytes]) -> object:
    """Redis' hrandfieldCommand: one field, or COUNT distinct fields (a
    negative COUNT: that many, repeats allowed), WITHVALUES in pairs (RESP3:
    an array of [field, value] arrays)."""
    if len(args) == 2:
        fields = _read(session, args[1])
        if not fields:
            return None
        return random.choice(list(fields))
    count = parse_int64(args[2])
    if count is None:
        return NOT_AN_INTEGER
    if count < -LONG_MAX:
        return Error(f"ERR value is out of range, value must between {-LONG_MAX} and {LONG_MAX}")
    with_values = False
    if len(args) > 4 or (len(args) == 4 and args[3].lower() != b"withvalues"):
        return SYNTAX_ERROR
    if len(args) == 4:
        with_values = True
        if not -LONG_MAX // 2 <= count <= LONG_MAX // 2:
            return Error("ERR value is out of range")
    fields = _read(session, args[1])
    if not fields or count == 0:
        return []
    items = list(fields.items())
    if count < 0:
        chosen = random.choices(items, k=-count)
    elif count >= len(items):
        chosen = items
    else:
        chosen = random.sample(items, count)
    if not with_values:
        return [field for field, _ in chosen]
    if session.protocol == 3:
        return [[field, item] for field, item in chosen]
    return [part for pair in chosen for part in pair]


def cmd_hscan(session: Session, args: list[bytes]) -> object:
    """Redis' hscanCommand on a small hash: everything, cursor 0."""
    if parse_scan_cursor(args[2]) is None:
        return Error("ERR invalid cursor")
    fields = _read(session, args[1])
    if fields is None:
        return [b"0", []]
    options = parse_scan_options(args, 3, type_allowed=False)
    if isinstance(options, Error):
        return options
    _count, pattern, _type_name = options
    matches = None if pattern is None else compile_glob(pattern).matches
    found = [part for field, item in fields.items() if matches is None or matches(field) for part in (field, item)]
    return [b"0", found]


# Flags, key positions and since as Redis 7.0's COMMAND INFO / DOCS; summaries as COMMAND DOCS.
SPECS: list[CommandSpec] = [
    CommandSpec(
        name="hset", arity=-4, lock=Lock.WRITE, flags=("write", "denyoom", "fast"), keys=ONE_KEY, counter="sets",
        since="2.0.0", group="hash", handler=cmd_hset, summary="Set the string value of a hash field",
    ),
    CommandSpec(
        name="hsetnx", arity=4, lock=Lock.WRITE, flags=("write", "denyoom", "fast"), keys=ONE_KEY, counter="sets",
        since="2.0.0", group="hash", handler=cmd_hsetnx,
        summary="Set the value of a hash field, only if the field does not exist",
    ),
    CommandSpec(
        name="hget", arity=3, lock=Lock.READ, flags=("readonly", "fast"), keys=ONE_KEY, counter="gets",
        since="2.0.0", group="hash", handler=cmd_hget, summary="Get the value of a hash field",
    ),
    CommandSpec(
        name="hmset", arity=-4, lock=Lock.WRITE, flags=("write", "denyoom", "fast"), keys=ONE_KEY, counter="sets",
        since="2.0.0", group="hash", handler=cmd_hmset, summary="Set multiple hash fields to multiple values",
    ),
    CommandSpec(
        name="hmget", arity=-3, lock=Lock.READ, flags=("readonly", "fast"), keys=ONE_KEY, counter="gets",
        since="2.0.0", group="hash", handler=cmd_hmget, summary="Get the values of all the given hash fields",
    ),
    CommandSpec(
        name="hincrby", arity=4, lock=Lock.WRITE, flags=("write", "denyoom", "fast"), keys=ONE_KEY, counter="sets",
        since="2.0.0", group="hash", handler=cmd_hincrby,
        summary="Increment the integer value of a hash field by the given number",
    ),
    CommandSpec(
        name="hincrbyfloat", arity=4, lock=Lock.WRITE, flags=("write", "denyoom", "fast"), keys=ONE_KEY, counter="sets",
        since="2.6.0", group="hash", handler=cmd_hincrbyfloat,
        summary="Increment the float value of a hash field by the given amount",
    ),
    CommandSpec(
        name="hdel", arity=-3, lock=Lock.WRITE, flags=("write", "fast"), keys=ONE_KEY, counter="dels",
        since="2.0.0", group="hash", handler=cmd_hdel, summary="Delete one or more hash fields",
    ),
    CommandSpec(
        name="hlen", arity=2, lock=Lock.READ, flags=("readonly", "fast"), keys=ONE_KEY, counter="gets",
        since="2.0.0", group="hash", handler=cmd_hlen, summary="Get the number of fields in a hash",
    ),
    CommandSpec(
        name="hstrlen", arity=3, lock=Lock.READ, flags=("readonly", "fast"), keys=ONE_KEY, counter="gets",
        since="3.2.0", group="hash", handler=cmd_hstrlen, summary="Get the length of the value of a hash field",
    ),
    CommandSpec(
        name="hkeys", arity=2, lock=Lock.READ, flags=("readonly",), keys=ONE_KEY, counter="gets",
        since="2.0.0", group="hash", handler=cmd_hkeys, summary="Get all the fields in a hash",
    ),
    CommandSpec(
        name="hvals", arity=2, lock=Lock.READ, flags=("readonly",), keys=ONE_KEY, counter="gets",
        since="2.0.0", group="hash", handler=cmd_hvals, summary="Get all the values in a hash",
    ),
    CommandSpec(
        name="hgetall", arity=2, lock=Lock.READ, flags=("readonly",), keys=ONE_KEY, counter="gets",
        since="2.0.0", group="hash", handler=cmd_hgetall, summary="Get all the fields and values in a hash",
    ),
    CommandSpec(
        name="hexists", arity=3, lock=Lock.READ, flags=("readonly", "fast"), keys=ONE_KEY, counter="gets",
        since="2.0.0", group="hash", handler=cmd_hexists, summary="Determine if a hash field exists",
    ),
    CommandSpec(
        name="hrandfield", arity=-2, lock=Lock.READ, flags=("readonly",), keys=ONE_KEY, counter="gets",
        since="6.2.0", group="hash", handler=cmd_hrandfield, summary="Get one or multiple random fields from a hash",
    ),
    CommandSpec(
        name="hscan", arity=-3, lock=Lock.READ, flags=("readonly",), keys=ONE_KEY, counter="gets",
        since="2.8.0", group="hash", handler=cmd_hscan,
        summary="Incrementally iterate hash fields and associated values",
    ),
]
