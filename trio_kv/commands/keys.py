"""Redis generic key commands: DEL, EXISTS, expiry, RENAME, KEYS, SCAN, FLUSH.

Behaviour and error wording follow Redis 7.0 (``db.c``, ``expire.c``),
checked against a real redis-server 7.0. They work on a key whatever type
its value has (``Keyspace`` stores, expires, renames and deletes any value);
TYPE answers ``string``, the family's name (``hash``) or ``none``.

Rules kept here:

* Expiry arguments follow Redis' expireGenericCommand: options (NX, XX, GT,
  LT) are checked first, then the number; overflow of the unit conversion or
  of "now + n" is ``ERR invalid expire time in '<cmd>' command``; a time
  already past deletes the key and answers 1. A key without a TTL counts as
  an infinite TTL for GT and LT.
* TTL rounds as Redis does, ``(ms + 500) // 1000``; -2 for a missing key, -1
  for a key without expiry.
* The SCAN cursor is the keyspace's reverse-binary bucket cursor, so every key
  present for a whole scan is returned at least once. It is parsed like
  Redis 7.0 (``strtoul``): a sign is accepted (``-1`` is 2**64-1), leading
  spaces and trailing bytes are not, and an empty cursor is 0.
* KEYS, SCAN with a COUNT over ``SCAN_UNSLICED_MAX_COUNT`` and FLUSHALL /
  FLUSHDB return a ``Sliced`` object that the engine runs a few
  milliseconds at a time (``commands/slicing.py`` states what each
  guarantees). FLUSH empties the keyspace at once in its handler and only
  frees memory in slices; SYNC and ASYNC behave the same.
* Counters (``STATS``): DEL and UNLINK count as ``dels``; the rest move none.
  Keyspace hits/misses move for EXISTS (per key), TTL, PTTL, EXPIRETIME,
  PEXPIRETIME, TYPE and SCAN ... TYPE (per key returned), the lookups Redis
  counts.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from ..protocol.glob import compile_glob, literal_prefix
from ..protocol.replies import OK, Error, SimpleString
from .session import Session
from .arguments import (
    INT64_MAX,
    INT64_MAX_DIV_1000,
    INT64_MIN_DIV_1000,
    NOT_AN_INTEGER,
    SYNTAX_ERROR,
    check_key,
    count_lookup,
    invalid_expire_time,
    parse_int64,
)
from .first_for import count_keys, covered_keys, covering, covers
from .ordered_range import RangeSlices, prefix_end
from .slicing import SCAN_UNSLICED_MAX_COUNT, FreeSlices, ScanSlices
from .snapshot_keys import SnapshotKeys
from .table import ALL_KEYS, ONE_KEY, CommandSpec, Lock

NO_EXPIRY = -1  # the keyspace's answer for a key without a TTL
UINT64_MODULUS = 2**64
SCAN_DEFAULT_COUNT = 10
# A sliced SCAN stops after COUNT * this many slots, as one unsliced call
# does (store.hashtable.SCAN_SLOTS_PER_COUNT; Redis visits 10 * COUNT buckets).
SCAN_SLOTS_PER_COUNT = 10
_CURSOR = re.compile(rb"([+-]?)([0-9]+)")
NONE_TYPE = SimpleString("none")


def cmd_del(session: Session, args: list[bytes]) -> int:
    delete = session.keyspace.delete
    versions = session.store.versions
    if versions is None:
        return sum(delete(key) for key in args[1:])
    # Cluster mode: a key absent here may hold a live sibling behind a
    # tombstone; the delete removes it too and counts it (store/versions.py).
    hidden = versions.delete_hidden
    return sum(delete(key) or hidden(key) for key in args[1:])


def cmd_exists(session: Session, args: list[bytes]) -> int:
    exists = session.keyspace.exists
    found = sum(exists(key) for key in args[1:])
    stats = session.stats
    if found:
        stats.add("keyspace_hits", found)
    if found < len(args) - 1:
        stats.add("keyspace_misses", len(args) - 1 - found)
    return found


# --- expiry --------------------------------------------------------------------

_NX, _XX, _GT, _LT = 1, 2, 4, 8
_EXPIRE_OPTIONS = {b"NX": _NX, b"XX": _XX, b"GT": _GT, b"LT": _LT}


def _parse_expire_options(options: list[bytes]) -> int | Error:
    flags = 0
    for option in options:
        flag = _EXPIRE_OPTIONS.get(option.upper())
        if flag is None:
            return Error(f"ERR Unsupported option {option.decode('utf-8', 'replace')}")
        flags |= flag
    if flags & _NX and flags & (_XX | _GT | _LT):
        return Error("ERR NX and XX, GT or LT options at the same time are not compatible")
    if flags & _GT and flags & _LT:
        return Error("ERR GT and LT options at the same time are not compatible")
    return flags


def _expire(session: Session, args: list[bytes], relative: bool, seconds: bool) -> int | Error:
    flags = _parse_expire_options(args[3:])
    if isinstance(flags, Error):
        return flags
    when = parse_int64(args[2])
    if when is None:
        return NOT_AN_INTEGER
    command = args[0].decode("utf-8", "replace").lower()
    if seconds:
        if when > INT64_MAX_DIV_1000 or when < INT64_MIN_DIV_1000:
            return invalid_expire_time(command)
        when *= 1000
    keyspace = session.keyspace
    if relative:
        base = keyspace.now_ms()
        if when > INT64_MAX - base:
            return invalid_expire_time(command)
        when += base
    key = args[1]
    current = keyspace.expire_at_ms(key)
    if current is None:
        return 0
    if flags & _NX and current != NO_EXPIRY:
        return 0
    if flags & _XX and current == NO_EXPIRY:
        return 0
    if flags & _GT and (current == NO_EXPIRY or when <= current):
        return 0
    if flags & _LT and current != NO_EXPIRY and when >= current:
        return 0
    keyspace.set_expire_at(key, when)  # a time already past deletes the key
    return 1


def cmd_expire(session: Session, args: list[bytes]) -> int | Error:
    return _expire(session, args, relative=True, seconds=True)


def cmd_pexpire(session: Session, args: list[bytes]) -> int | Error:
    return _expire(session, args, relative=True, seconds=False)


def cmd_expireat(session: Session, args: list[bytes]) -> int | Error:
    return _expire(session, args, relative=False, seconds=True)


def cmd_pexpireat(session: Session, args: list[bytes]) -> int | Error:
    return _expire(session, args, relative=False, seconds=False)


def _ttl(session: Session, key: bytes, absolute: bool, milliseconds: bool) -> int:
    keyspace = session.keyspace
    at_ms = keyspace.expire_at_ms(key)
    count_lookup(session, at_ms is not None)
    if at_ms is None:
        return -2
    if at_ms == NO_EXPIRY:
        return -1
    ms = at_ms if absolute else max(0, at_ms - keyspace.now_ms())
    return ms if milliseconds else (ms + 500) // 1000


def cmd_ttl(session: Session, args: list[bytes]) -> int:
    return _ttl(session, args[1], absolute=False, milliseconds=False)


def cmd_pttl(session: Session, args: list[bytes]) -> int:
    return _ttl(session, args[1], absolute=False, milliseconds=True)


def cmd_expiretime(session: Session, args: list[bytes]) -> int:
    return _ttl(session, args[1], absolute=True, milliseconds=False)


def cmd_pexpiretime(session: Session, args: list[bytes]) -> int:
    return _ttl(session, args[1], absolute=True, milliseconds=True)


def cmd_persist(session: Session, args: list[bytes]) -> int:
    return int(session.keyspace.persist(args[1]))


# --- naming and listing ----------------------------------------------------------


def cmd_type(session: Session, args: list[bytes]) -> SimpleString:
    type_name = session.keyspace.type_name(args[1])
    count_lookup(session, type_name is not None)
    return NONE_TYPE if type_name is None else SimpleString(type_name.decode())


def _rename(session: Session, args: list[bytes], only_new: bool) -> object:
    source, target = args[1], args[2]
    keyspace = session.keyspace
    if not keyspace.exists(source):
        return Error("ERR no such key")
    if source == target:
        return 0 if only_new else OK
    problem = check_key(session, target)
    if problem is not None:
        return problem
    if only_new and keyspace.exists(target):
        return 0
    keyspace.rename(source, target)
    return 1 if only_new else OK


def cmd_rename(session: Session, args: list[bytes]) -> object:
    return _rename(session, args, only_new=False)


def cmd_renamenx(session: Session, args: list[bytes]) -> object:
    return _rename(session, args, only_new=True)


def cmd_randomkey(session: Session, args: list[bytes]) -> bytes | None:
    first_for = covering(session)
    if first_for is None:
        return session.keyspace.random_key()
    # A multi-node cluster: a random key of the partitions this node is
    # first for (commands/first_for.py), a bounded number of tries.
    for _ in range(64):
        key = session.keyspace.random_key()
        if key is None or covers(first_for, key):
            return key
    return None


def cmd_keys(session: Session, args: list[bytes]) -> SnapshotKeys | RangeSlices:
    """Run in slices (commands/slicing.py) on a snapshot
    (commands/snapshot_keys.py): exactly the keys there were when the call
    started, whatever writes run between slices. A pattern that is a plain
    prefix and a star (``user:*``) walks only that prefix's keys in the
    sorted key index when it is on (commands/ordered_range.py; keys in byte
    order), exact too: a walk longer than one slice reads a snapshot opened
    at the end of its first slice."""
    pattern = args[1]
    first_for = covering(session)
    prefix = literal_prefix(pattern)
    if prefix and pattern == prefix + b"*" and session.store.sorted_index is not None:
        return RangeSlices(
            session.keyspace, prefix, prefix_end(prefix), high_inclusive=False,
            matches=None if first_for is None else (lambda key: covers(first_for, key)), exact=True,
        )
    predicate = key_predicate(pattern)
    if first_for is not None:
        matches = predicate
        predicate = (lambda key: covers(first_for, key)) if matches is None else (
            lambda key: covers(first_for, key) and matches(key)
        )
    return SnapshotKeys(session.keyspace, predicate)


def key_predicate(pattern: bytes) -> Callable[[bytes], bool] | None:
    """What KEYS filters with: None for ``*`` (no filtering), a plain
    ``startswith`` for a literal prefix and a star (``user:*``: about 5x
    cheaper per key than the general matcher), else the compiled pattern."""
    if pattern == b"*":
        return None
    prefix = literal_prefix(pattern)
    if pattern == prefix + b"*":
        return lambda key: key.startswith(prefix)
    return compile_glob(pattern).matches


def parse_scan_cursor(token: bytes) -> int | None:
    """Redis 7.0's parseScanCursorOrReply (``strtoul``, base 10)."""
    if not token:
        return 0
    match = _CURSOR.fullmatch(token)
    if match is None:
        return None
    magnitude = int(match.group(2))
    if magnitude >= UINT64_MODULUS:
        return None
    return (UINT64_MODULUS - magnitude) % UINT64_MODULUS if match.group(1) == b"-" else magnitude


def parse_scan_options(
    args: list[bytes], start: int, *, type_allowed: bool
) -> tuple[int, bytes | None, bytes | None] | Error:
    """Redis' scanGenericCommand options from ``args[start:]``: (COUNT, the
    MATCH pattern or None for none or ``*``, the TYPE name or None). TYPE is
    SCAN's alone (HSCAN ... TYPE is a syntax error, as in Redis)."""
    count = SCAN_DEFAULT_COUNT
    pattern = type_name = None
    for i in range(start, len(args), 2):
        if i + 1 >= len(args):
            return SYNTAX_ERROR
        option, value = args[i].upper(), args[i + 1]
        if option == b"COUNT":
            parsed = parse_int64(value)
            if parsed is None:
                return NOT_AN_INTEGER
            if parsed < 1:
                return SYNTAX_ERROR
            count = parsed
        elif option == b"MATCH":
            pattern = None if value == b"*" else value
        elif option == b"TYPE" and type_allowed:
            type_name = value
        else:
            return SYNTAX_ERROR
    return count, pattern, type_name


def cmd_scan(session: Session, args: list[bytes]) -> object:
    cursor = parse_scan_cursor(args[1])
    if cursor is None:
        return Error("ERR invalid cursor")
    options = parse_scan_options(args, 2, type_allowed=True)
    if isinstance(options, Error):
        return options
    count, pattern, type_name = options
    finish = functools.partial(_scan_reply, session, pattern, type_name)
    if count > SCAN_UNSLICED_MAX_COUNT:
        return ScanSlices(session.keyspace, cursor, count, SCAN_SLOTS_PER_COUNT, finish)
    next_cursor, keys = session.keyspace.scan(cursor, count)
    return finish(next_cursor, keys)


def _scan_reply(
    session: Session, pattern: bytes | None, type_name: bytes | None, next_cursor: int, keys: list[bytes]
) -> list[object]:
    if pattern is not None:
        matches = compile_glob(pattern).matches
        keys = [key for key in keys if matches(key)]
    first_for = covering(session)
    if first_for is not None:
        keys = [key for key in keys if covers(first_for, key)]
    if type_name is not None and keys:
        # Redis looks up each matching key's type (a keyspace hit each); an
        # unknown type name matches nothing in 7.0.
        session.stats.add("keyspace_hits", len(keys))
        wanted = type_name.lower()
        type_of = session.keyspace.type_name
        keys = [key for key in keys if type_of(key) == wanted]
    return [b"%d" % next_cursor, keys]


def cmd_dbsize(session: Session, args: list[bytes]) -> int:
    first_for = covering(session)
    if first_for is not None:
        return count_keys(session, first_for)
    return len(session.keyspace)


def cmd_flush(session: Session, args: list[bytes]) -> object:
    if len(args) > 2 or (len(args) == 2 and args[1].upper() not in (b"SYNC", b"ASYNC")):
        return SYNTAX_ERROR
    first_for = covering(session)
    if first_for is not None:
        # A multi-node cluster: this node's share only (commands/first_for.py).
        keyspace = session.keyspace
        for key in covered_keys(session, first_for):
            keyspace.delete(key)
        versions = session.store.versions
        if versions is not None:
            # A live sibling behind a tombstone goes too (DEL's rule, store/versions.py).
            for key in versions.keys():
                if covers(first_for, key):
                    versions.delete_hidden(key)
        return OK
    # The keyspace is emptied at once (one log record, every client sees it
    # empty from now on); the old tables are freed in slices afterwards,
    # without the lock, and the reply comes when they are (FLUSHALL SYNC's
    # latency, without stalling anyone else).
    return FreeSlices(session.keyspace.detach_all(), OK)


# Flags and key positions as Redis 7.0's COMMAND INFO; summaries as COMMAND DOCS.
SPECS: list[CommandSpec] = [
    CommandSpec(
        name="del", arity=-2, lock=Lock.WRITE, flags=("write",), keys=ALL_KEYS, counter="dels", since="1.0.0",
        group="generic", handler=cmd_del, summary="Delete a key",
    ),
    CommandSpec(
        name="unlink", arity=-2, lock=Lock.WRITE, flags=("write", "fast"), keys=ALL_KEYS, counter="dels",
        since="4.0.0", group="generic", handler=cmd_del,
        summary="Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking.",
    ),
    CommandSpec(
        name="exists", arity=-2, lock=Lock.READ, flags=("readonly", "fast"), keys=ALL_KEYS, since="1.0.0",
        group="generic", handler=cmd_exists, summary="Determine if a key exists",
    ),
    CommandSpec(
        name="expire", arity=-3, lock=Lock.WRITE, flags=("write", "fast"), keys=ONE_KEY, since="1.0.0",
        group="generic", handler=cmd_expire, summary="Set a key's time to live in seconds",
    ),
    CommandSpec(
        name="pexpire", arity=-3, lock=Lock.WRITE, flags=("write", "fast"), keys=ONE_KEY, since="2.6.0",
        group="generic", handler=cmd_pexpire, summary="Set a key's time to live in milliseconds",
    ),
    CommandSpec(
        name="expireat", arity=-3, lock=Lock.WRITE, flags=("write", "fast"), keys=ONE_KEY, since="1.2.0",
        group="generic", handler=cmd_expireat, summary="Set the expiration for a key as a UNIX timestamp",
    ),
    CommandSpec(
        name="pexpireat", arity=-3, lock=Lock.WRITE, flags=("write", "fast"), keys=ONE_KEY, since="2.6.0",
        group="generic", handler=cmd_pexpireat,
        summary="Set the expiration for a key as a UNIX timestamp specified in milliseconds",
    ),
    CommandSpec(
        name="expiretime", arity=2, lock=Lock.READ, flags=("readonly", "fast"), keys=ONE_KEY, since="7.0.0",
        group="generic", handler=cmd_expiretime, summary="Get the expiration Unix timestamp for a key",
    ),
    CommandSpec(
        name="pexpiretime", arity=2, lock=Lock.READ, flags=("readonly", "fast"), keys=ONE_KEY, since="7.0.0",
        group="generic", handler=cmd_pexpiretime,
        summary="Get the expiration Unix timestamp for a key in milliseconds",
    ),
    CommandSpec(
        name="ttl", arity=2, lock=Lock.READ, flags=("readonly", "fast"), keys=ONE_KEY, since="1.0.0",
        group="generic", handler=cmd_ttl, summary="Get the time to live for a key in seconds",
    ),
    CommandSpec(
        name="pttl", arity=2, lock=Lock.READ, flags=("readonly", "fast"), keys=ONE_KEY, since="2.6.0",
        group="generic", handler=cmd_pttl, summary="Get the time to live for a key in milliseconds",
    ),
    CommandSpec(
        name="persist", arity=2, lock=Lock.WRITE, flags=("write", "fast"), keys=ONE_KEY, since="2.2.0",
        group="generic", handler=cmd_persist, summary="Remove the expiration from a key",
    ),
    CommandSpec(
        name="type", arity=2, lock=Lock.READ, flags=("readonly", "fast"), keys=ONE_KEY, since="1.0.0",
        group="generic", handler=cmd_type, summary="Determine the type stored at key",
    ),
    CommandSpec(
        name="rename", arity=3, lock=Lock.WRITE, flags=("write",), keys=(1, 2, 1), since="1.0.0", group="generic",
        handler=cmd_rename, summary="Rename a key",
    ),
    CommandSpec(
        name="renamenx", arity=3, lock=Lock.WRITE, flags=("write", "fast"), keys=(1, 2, 1), since="1.0.0",
        group="generic", handler=cmd_renamenx, summary="Rename a key, only if the new key does not exist",
    ),
    CommandSpec(
        name="randomkey", arity=1, lock=Lock.READ, flags=("readonly",), since="1.0.0", group="generic",
        handler=cmd_randomkey, summary="Return a random key from the keyspace",
    ),
    CommandSpec(
        name="keys", arity=2, lock=Lock.READ, flags=("readonly",), may_slice=True, since="1.0.0", group="generic",
        handler=cmd_keys, summary="Find all keys matching the given pattern",
    ),
    CommandSpec(
        name="scan", arity=-2, lock=Lock.READ, flags=("readonly",), may_slice=True, since="2.8.0", group="generic",
        handler=cmd_scan, summary="Incrementally iterate the keys space",
    ),
    CommandSpec(
        name="dbsize", arity=1, lock=Lock.READ, flags=("readonly", "fast"), since="1.0.0", group="generic",
        handler=cmd_dbsize, summary="Return the number of keys in the selected database",
    ),
    CommandSpec(
        name="flushdb", arity=-1, lock=Lock.WRITE, flags=("write",), may_slice=True, since="1.0.0", group="generic",
        handler=cmd_flush, summary="Remove all keys from the current database",
    ),
    CommandSpec(
        name="flushall", arity=-1, lock=Lock.WRITE, flags=("write",), may_slice=True, since="1.0.0", group="generic",
        handler=cmd_flush, summary="Remove all keys from all databases",
    ),
]
