"""Redis string commands: GET, SET and friends, counters, ranges.

Behaviour and error wording follow Redis 7.0 (``t_string.c``, ``util.c``),
checked against a real redis-server 7.0. On a key holding another type
the keyspace's string accessors raise ``WrongType`` (the engine answers
WRONGTYPE, commands/values.py); SET and MSET replace any value, MGET
answers nil for it, as Redis does.

Rules kept here:

* Argument errors come before any change to the keyspace, in Redis' order
  (syntax, then numbers, then the key), so a failed command changed nothing.
* Integers are parsed like Redis' ``string2ll``: optional ``-``, no ``+``, no
  leading zeros or spaces, 64-bit signed range. Floats (INCRBYFLOAT) like
  ``string2ld``: C ``strtold`` syntax (decimal, hex, ``inf``), no spaces, no
  NaN. INCRBYFLOAT computes exactly as Redis on x86-64: values are rounded to
  80-bit long doubles (64-bit significand) and printed as ``%.17Lf`` with
  trailing zeros removed, so ``1e20`` + ``10.6`` is ``100000000000000000008``.
* Counters (``STATS``): commands that return a stored value count as
  ``gets`` (GET, MGET, GETEX, GETRANGE, SUBSTR, STRLEN), commands that store
  a value as ``sets`` (SET, SETNX, SETEX, PSETEX, GETSET, MSET, MSETNX,
  APPEND, SETRANGE, INCR..., INCRBYFLOAT), GETDEL as ``dels``.
* Keyspace hits/misses move for every read lookup Redis counts: GET, MGET
  (per key), GETSET, GETDEL, GETEX, SET ... GET, STRLEN, GETRANGE, SUBSTR.
* ``config.max_key_bytes`` / ``config.max_value_bytes`` bound what is stored
  (``ERR key too long ...`` / ``ERR value too long ...``); APPEND and SETRANGE
  also keep Redis' ``proto-max-bulk-len`` limit with its wording.
* Big values cost what the request costs: APPEND and SETRANGE write in place
  (``Keyspace.append`` / ``setrange``, amortized O(1) growth) and log the
  request's bytes, not the value; replies that return a value
  (GET, MGET, GETRANGE, GETDEL, GETEX, GETSET, SET ... GET) are
  ``Keyspace.get_view`` views, never copies, which no later write changes.
  STRLEN reads the length only; the counters copy a value only when it is
  short enough to be a number.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

from ..protocol.replies import OK, Error
from .arguments import (
    INT64_MAX,
    INT64_MAX_DIV_1000,
    INT64_MIN,
    NOT_A_FLOAT,
    NOT_AN_INTEGER,
    NOT_FINITE,
    OVERFLOW,
    SYNTAX_ERROR,
    TOO_BIG,
    check_key,
    check_value_size,
    count_lookup,
    invalid_expire_time,
    parse_int64,
)
from .long_double import format_long_double, parse_long_double, round_long_double
from .session import Session
from .table import ALL_KEYS, ONE_KEY, CommandSpec, Lock
from .values import WrongType

def _check_store(session: Session, key: bytes, value: bytes) -> Error | None:
    return check_key(session, key) or check_value_size(session, len(value))


def _check_grown_size(session: Session, offset: int, appended: int) -> Error | None:
    """Redis' checkStringLength, then our own value limit."""
    total = offset + appended
    if total > session.config.proto_max_bulk_len_bytes:
        return TOO_BIG
    return check_value_size(session, total)


# Longer values cannot be numbers (string2ll / string2ld refuse them first),
# so a counter never copies a big value to find that out.
_NUMBER_MAX_BYTES = 8 * 1024


def _lookup(session: Session, key: bytes) -> bytes | memoryview | None:
    """A read of ``key`` as Redis' lookupKeyRead: moves hits/misses. The
    value is not copied (``Keyspace.get_view``)."""
    value = session.keyspace.get_view(key)
    count_lookup(session, value is not None)
    return value


# --- SET / GETEX options (Redis' parseExtendedStringArgumentsOrReply) --------

_NX, _XX, _GET, _KEEPTTL, _PERSIST = 1, 2, 4, 8, 16
_EX, _PX, _EXAT, _PXAT = 32, 64, 128, 256
_ANY_EXPIRE = _EX | _PX | _EXAT | _PXAT
_EXPIRE_FLAGS = {b"EX": _EX, b"PX": _PX, b"EXAT": _EXAT, b"PXAT": _PXAT}


def _parse_extended(args: list[bytes], first: int, for_set: bool) -> tuple[int, bytes | None] | Error:
    """``(flags, expire token)`` from the options starting at ``args[first]``.
    As Redis: an option may repeat (the last expiry wins), NX/XX exclude each
    other, and KEEPTTL/PERSIST and the four expiry kinds exclude each other."""
    flags = 0
    expire = None
    j = first
    count = len(args)
    while j < count:
        option = args[j].upper()
        expire_flag = _EXPIRE_FLAGS.get(option)
        if for_set and option == b"NX" and not flags & _XX:
            flags |= _NX
        elif for_set and option == b"XX" and not flags & _NX:
            flags |= _XX
        elif for_set and option == b"GET":
            flags |= _GET
        elif for_set and option == b"KEEPTTL" and not flags & (_PERSIST | _ANY_EXPIRE):
            flags |= _KEEPTTL
        elif not for_set and option == b"PERSIST" and not flags & (_KEEPTTL | _ANY_EXPIRE):
            flags |= _PERSIST
        elif (
            expire_flag is not None
            and j + 1 < count
            and not flags & (_KEEPTTL | _PERSIST | (_ANY_EXPIRE & ~expire_flag))
        ):
            flags |= expire_flag
            expire = args[j + 1]
            j += 1
        else:
            return SYNTAX_ERROR
        j += 1
    return flags, expire


def _expire_at_ms(session: Session, token: bytes, flags: int, command: str) -> int | Error:
    """Redis' getExpireMillisecondsOrReply: the absolute expiry in ms."""
    amount = parse_int64(token)
    if amount is None:
        return NOT_AN_INTEGER
    seconds = flags & (_EX | _EXAT)
    if amount <= 0 or (seconds and amount > INT64_MAX_DIV_1000):
        return invalid_expire_time(command)
    at_ms = amount * 1000 if seconds else amount
    if flags & (_EX | _PX):
        at_ms += session.keyspace.now_ms()
    if at_ms > INT64_MAX:  # Redis sees the sum wrap negative
        return invalid_expire_time(command)
    return at_ms


# --- GET / SET family ---------------------------------------------------------


def _number_text(session: Session, key: bytes) -> bytes | None:
    """The value of ``key`` as ``bytes`` for a counter (None if absent); a
    value too long to be a number reads as ``b"-"``, which no parser accepts."""
    keyspace = session.keyspace
    length = keyspace.value_length(key)
    if length is None:
        return None
    if length > _NUMBER_MAX_BYTES:
        return b"-"
    return keyspace.get(key)


def cmd_get(session: Session, args: list[bytes]) -> bytes | memoryview | None:
    return _lookup(session, args[1])


def cmd_set(session: Session, args: list[bytes]) -> object:
    if len(args) == 3:
        # Plain SET key value, the common case: no options to parse.
        key, value = args[1], args[2]
        config = session.config
        if len(key) > config.max_key_bytes or len(value) > config.max_value_bytes:
            return _check_store(session, key, value)
        session.keyspace.set(key, value)
        return OK
    parsed = _parse_extended(args, 3, for_set=True)
    if isinstance(parsed, Error):
        return parsed
    flags, expire = parsed
    key, value = args[1], args[2]
    expire_at_ms: int | None = None
    if expire is not None:
        at_ms = _expire_at_ms(session, expire, flags, "set")
        if isinstance(at_ms, Error):
            return at_ms
        expire_at_ms = at_ms
    problem = _check_store(session, key, value)
    if problem is not None:
        return problem
    keyspace = session.keyspace
    old = None
    if flags & _GET:
        old = _lookup(session, key)
        found = old is not None
    else:
        found = keyspace.exists(key)
    if (flags & _NX and found) or (flags & _XX and not found):
        return old if flags & _GET else None
    keyspace.set(key, value, expire_at_ms, keep_ttl=bool(flags & _KEEPTTL))
    return old if flags & _GET else OK


def cmd_setnx(session: Session, args: list[bytes]) -> int | Error:
    key, value = args[1], args[2]
    problem = _check_store(session, key, value)
    if problem is not None:
        return problem
    if session.keyspace.exists(key):
        return 0
    session.keyspace.set(key, value)
    return 1


def _set_with_expiry(session: Session, args: list[bytes], unit_flag: int, command: str) -> object:
    key, value = args[1], args[3]
    expire_at_ms = _expire_at_ms(session, args[2], unit_flag, command)
    if isinstance(expire_at_ms, Error):
        return expire_at_ms
    problem = _check_store(session, key, value)
    if problem is not None:
        return problem
    session.keyspace.set(key, value, expire_at_ms)
    return OK


def cmd_setex(session: Session, args: list[bytes]) -> object:
    return _set_with_expiry(session, args, _EX, "setex")


def cmd_psetex(session: Session, args: list[bytes]) -> object:
    return _set_with_expiry(session, args, _PX, "psetex")


def cmd_getset(session: Session, args: list[bytes]) -> bytes | memoryview | None | Error:
    key, value = args[1], args[2]
    problem = _check_store(session, key, value)
    if problem is not None:
        return problem
    old = _lookup(session, key)
    session.keyspace.set(key, value)
    return old


def cmd_getdel(session: Session, args: list[bytes]) -> bytes | memoryview | None:
    value = session.keyspace.pop(args[1])
    count_lookup(session, value is not None)
    versions = session.store.versions
    if value is None and versions is not None:
        # Cluster mode: a live sibling behind a tombstone goes too (DEL's rule); the reply is GET's, nil.
        versions.delete_hidden(args[1])
    return value


def cmd_getex(session: Session, args: list[bytes]) -> object:
    parsed = _parse_extended(args, 2, for_set=False)
    if isinstance(parsed, Error):
        return parsed
    flags, expire = parsed
    key = args[1]
    # Redis looks the key up before it validates the expiry: a missing key
    # answers nil even with a bad expiry.
    value = _lookup(session, key)
    if value is None:
        return None
    keyspace = session.keyspace
    if expire is not None:
        expire_at_ms = _expire_at_ms(session, expire, flags, "getex")
        if isinstance(expire_at_ms, Error):
            return expire_at_ms
        keyspace.set_expire_at(key, expire_at_ms)  # a time already past deletes the key
    elif flags & _PERSIST:
        keyspace.persist(key)
    return value


def cmd_mget(session: Session, args: list[bytes]) -> list[bytes | memoryview | None]:
    get = session.keyspace.get_view
    try:
        values = [get(key) for key in args[1:]]
    except WrongType:
        # Redis' MGET answers nil for a key of another type, never WRONGTYPE.
        values = [_string_or_none(get, key) for key in args[1:]]
    misses = values.count(None)
    if misses:
        session.stats.add("keyspace_misses", misses)
    if misses < len(values):
        session.stats.add("keyspace_hits", len(values) - misses)
    return values


def _string_or_none(get: Callable[[bytes], bytes | memoryview | None], key: bytes) -> bytes | memoryview | None:
    try:
        return get(key)
    except WrongType:
        return None


def _check_pairs(session: Session, args: list[bytes]) -> Error | None:
    if len(args) % 2 == 0:
        return Error(f"ERR wrong number of arguments for '{args[0].decode('utf-8', 'replace').lower()}' command")
    for i in range(1, len(args), 2):
        problem = _check_store(session, args[i], args[i + 1])
        if problem is not None:
            return problem
    return None


def cmd_mset(session: Session, args: list[bytes]) -> object:
    problem = _check_pairs(session, args)
    if problem is not None:
        return problem
    set_value = session.keyspace.set
    for i in range(1, len(args), 2):
        set_value(args[i], args[i + 1])
    return OK


def cmd_msetnx(session: Session, args: list[bytes]) -> int | Error:
    problem = _check_pairs(session, args)
    if problem is not None:
        return problem
    keyspace = session.keyspace
    if any(keyspace.exists(args[i]) for i in range(1, len(args), 2)):
        return 0
    for i in range(1, len(args), 2):
        keyspace.set(args[i], args[i + 1])
    return 1


# --- counters -----------------------------------------------------------------


def _increment(session: Session, key: bytes, delta: int) -> int | Error:
    """Redis' incrDecrCommand; the key keeps its TTL."""
    problem = check_key(session, key)
    if problem is not None:
        return problem
    old = _number_text(session, key)
    current = 0 if old is None else parse_int64(old)
    if current is None:
        return NOT_AN_INTEGER
    result = current + delta
    if not INT64_MIN <= result <= INT64_MAX:
        return OVERFLOW
    session.keyspace.set(key, b"%d" % result, keep_ttl=True)
    return result


def cmd_incr(session: Session, args: list[bytes]) -> int | Error:
    return _increment(session, args[1], 1)


def cmd_decr(session: Session, args: list[bytes]) -> int | Error:
    return _increment(session, args[1], -1)


def cmd_incrby(session: Session, args: list[bytes]) -> int | Error:
    delta = parse_int64(args[2])
    if delta is None:
        return NOT_AN_INTEGER
    return _increment(session, args[1], delta)


def cmd_decrby(session: Session, args: list[bytes]) -> int | Error:
    delta = parse_int64(args[2])
    if delta is None:
        return NOT_AN_INTEGER
    if delta == INT64_MIN:
        return Error("ERR decrement would overflow")
    return _increment(session, args[1], -delta)


def cmd_incrbyfloat(session: Session, args: list[bytes]) -> bytes | Error:
    key = args[1]
    problem = check_key(session, key)
    if problem is not None:
        return problem
    old = _number_text(session, key)
    current = Fraction(0) if old is None else parse_long_double(old)
    if current is None:
        return NOT_A_FLOAT
    delta = parse_long_double(args[2])
    if delta is None:
        return NOT_A_FLOAT
    if isinstance(current, float) or isinstance(delta, float):
        return NOT_FINITE  # inf plus anything is inf or NaN
    result = round_long_double(current + delta)
    if result is None:
        return NOT_FINITE
    text = format_long_double(result)
    session.keyspace.set(key, text, keep_ttl=True)
    return text


# --- APPEND and ranges ----------------------------------------------------------


def cmd_append(session: Session, args: list[bytes]) -> int | Error:
    key, suffix = args[1], args[2]
    problem = check_key(session, key)
    if problem is not None:
        return problem
    keyspace = session.keyspace
    length = keyspace.value_length(key)
    if length is None:
        problem = check_value_size(session, len(suffix))
    else:
        problem = _check_grown_size(session, length, len(suffix))
    if problem is not None:
        return problem
    return keyspace.append(key, suffix)


def cmd_strlen(session: Session, args: list[bytes]) -> int:
    length = session.keyspace.value_length(args[1])
    count_lookup(session, length is not None)
    return 0 if length is None else length


# A GETRANGE answer shorter than this is copied: a view would keep the whole
# buffer of a grown value alive for a few bytes.
_RANGE_VIEW_MIN_BYTES = 64 * 1024


def cmd_getrange(session: Session, args: list[bytes]) -> bytes | memoryview | Error:
    start = parse_int64(args[2])
    end = parse_int64(args[3])
    if start is None or end is None:
        return NOT_AN_INTEGER
    value = _lookup(session, args[1])
    if value is None:
        return b""
    size = len(value)
    if start < 0 and end < 0 and start > end:
        return b""
    if start < 0:
        start = max(0, size + start)
    if end < 0:
        end = max(0, size + end)
    end = min(end, size - 1)
    if start > end or size == 0:
        return b""
    part = value[start : end + 1]
    if type(part) is memoryview and len(part) < _RANGE_VIEW_MIN_BYTES:
        return part.tobytes()
    return part


def cmd_setrange(session: Session, args: list[bytes]) -> int | Error:
    key, patch = args[1], args[3]
    offset = parse_int64(args[2])
    if offset is None:
        return NOT_AN_INTEGER
    if offset < 0:
        return Error("ERR offset is out of range")
    keyspace = session.keyspace
    length = keyspace.value_length(key)
    if not patch:
        # Nothing to write: Redis answers the current length, creating nothing.
        return 0 if length is None else length
    problem = check_key(session, key) or _check_grown_size(session, offset, len(patch))
    if problem is not None:
        return problem
    return keyspace.setrange(key, offset, patch)


# Flags and key positions as Redis 7.0's COMMAND INFO; summaries as COMMAND DOCS.
SPECS: list[CommandSpec] = [
    CommandSpec(
        name="get", arity=2, lock=Lock.READ, flags=("readonly", "fast"), keys=ONE_KEY, counter="gets", since="1.0.0",
        group="string", handler=cmd_get, summary="Get the value of a key",
    ),
    CommandSpec(
        name="set", arity=-3, lock=Lock.WRITE, flags=("write", "denyoom"), keys=ONE_KEY, counter="sets",
        since="1.0.0", group="string", handler=cmd_set, summary="Set the string value of a key",
    ),
    CommandSpec(
        name="setnx", arity=3, lock=Lock.WRITE, flags=("write", "denyoom", "fast"), keys=ONE_KEY, counter="sets",
        since="1.0.0", group="string", handler=cmd_setnx,
        summary="Set the value of a key, only if the key does not exist",
    ),
    CommandSpec(
        name="setex", arity=4, lock=Lock.WRITE, flags=("write", "denyoom"), keys=ONE_KEY, counter="sets",
        since="2.0.0", group="string", handler=cmd_setex, summary="Set the value and expiration of a key",
    ),
    CommandSpec(
        name="psetex", arity=4, lock=Lock.WRITE, flags=("write", "denyoom"), keys=ONE_KEY, counter="sets",
        since="2.6.0", group="string", handler=cmd_psetex,
        summary="Set the value and expiration in milliseconds of a key",
    ),
    CommandSpec(
        name="getset", arity=3, lock=Lock.WRITE, flags=("write", "denyoom", "fast"), keys=ONE_KEY, counter="sets",
        since="1.0.0", group="string", handler=cmd_getset,
        summary="Set the string value of a key and return its old value",
    ),
    CommandSpec(
        name="getdel", arity=2, lock=Lock.WRITE, flags=("write", "fast"), keys=ONE_KEY, counter="dels",
        since="6.2.0", group="string", handler=cmd_getdel, summary="Get the value of a key and delete the key",
    ),
    CommandSpec(
        name="getex", arity=-2, lock=Lock.WRITE, flags=("write", "fast"), keys=ONE_KEY, counter="gets",
        since="6.2.0", group="string", handler=cmd_getex,
        summary="Get the value of a key and optionally set its expiration",
    ),
    CommandSpec(
        name="mget", arity=-2, lock=Lock.READ, flags=("readonly", "fast"), keys=ALL_KEYS, counter="gets",
        since="1.0.0", group="string", handler=cmd_mget, summary="Get the values of all the given keys",
    ),
    CommandSpec(
        name="mset", arity=-3, lock=Lock.WRITE, flags=("write", "denyoom"), keys=(1, -1, 2), counter="sets",
        since="1.0.1", group="string", handler=cmd_mset, summary="Set multiple keys to multiple values",
    ),
    CommandSpec(
        name="msetnx", arity=-3, lock=Lock.WRITE, flags=("write", "denyoom"), keys=(1, -1, 2), counter="sets",
        since="1.0.1", group="string", handler=cmd_msetnx,
        summary="Set multiple keys to multiple values, only if none of the keys exist",
    ),
    CommandSpec(
        name="incr", arity=2, lock=Lock.WRITE, flags=("write", "denyoom", "fast"), keys=ONE_KEY, counter="sets",
        since="1.0.0", group="string", handler=cmd_incr, summary="Increment the integer value of a key by one",
    ),
    CommandSpec(
        name="decr", arity=2, lock=Lock.WRITE, flags=("write", "denyoom", "fast"), keys=ONE_KEY, counter="sets",
        since="1.0.0", group="string", handler=cmd_decr, summary="Decrement the integer value of a key by one",
    ),
    CommandSpec(
        name="incrby", arity=3, lock=Lock.WRITE, flags=("write", "denyoom", "fast"), keys=ONE_KEY, counter="sets",
        since="1.0.0", group="string", handler=cmd_incrby,
        summary="Increment the integer value of a key by the given amount",
    ),
    CommandSpec(
        name="decrby", arity=3, lock=Lock.WRITE, flags=("write", "denyoom", "fast"), keys=ONE_KEY, counter="sets",
        since="1.0.0", group="string", handler=cmd_decrby,
        summary="Decrement the integer value of a key by the given number",
    ),
    CommandSpec(
        name="incrbyfloat", arity=3, lock=Lock.WRITE, flags=("write", "denyoom", "fast"), keys=ONE_KEY,
        counter="sets", since="2.6.0", group="string", handler=cmd_incrbyfloat,
        summary="Increment the float value of a key by the given amount",
    ),
    CommandSpec(
        name="append", arity=3, lock=Lock.WRITE, flags=("write", "denyoom", "fast"), keys=ONE_KEY, counter="sets",
        since="2.0.0", group="string", handler=cmd_append, summary="Append a value to a key",
    ),
    CommandSpec(
        name="strlen", arity=2, lock=Lock.READ, flags=("readonly", "fast"), keys=ONE_KEY, counter="gets",
        since="2.2.0", group="string", handler=cmd_strlen, summary="Get the length of the value stored in a key",
    ),
    CommandSpec(
        name="getrange", arity=4, lock=Lock.READ, flags=("readonly",), keys=ONE_KEY, counter="gets", since="2.4.0",
        group="string", handler=cmd_getrange, summary="Get a substring of the string stored at a key",
    ),
    CommandSpec(
        name="substr", arity=4, lock=Lock.READ, flags=("readonly",), keys=ONE_KEY, counter="gets", since="1.0.0",
        group="string", handler=cmd_getrange, summary="Get a substring of the string stored at a key",
    ),
    CommandSpec(
        name="setrange", arity=4, lock=Lock.WRITE, flags=("write", "denyoom"), keys=ONE_KEY, counter="sets",
        since="2.2.0", group="string", handler=cmd_setrange,
        summary="Overwrite part of a string at key starting at the specified offset",
    ),
]
