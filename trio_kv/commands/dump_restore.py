"""DUMP and RESTORE: a key's value as Redis' serialized payload, and back.

The payload is Redis 7.0's DUMP format (``protocol.rdb_payload``: RDB
object, RDB version, CRC-64), so a value DUMPed here RESTOREs in
redis-server 7.0 and a string or hash DUMPed by redis-server (in any of the
encodings it writes: integer, LZF, listpack, ziplist...) RESTOREs here.
Behaviour and error wording follow Redis 7.0's ``dumpCommand`` /
``restoreCommand`` (``cluster.c``).

Rules kept here:

* DUMP answers nil for a missing key, else the payload; it counts a
  keyspace hit or miss, as Redis' lookupKeyRead.
* RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f] checks,
  in Redis' order: the options (IDLETIME and FREQ exclude each other, as in
  Redis, where the second one is a syntax error; their ranges), that the
  key is free unless REPLACE (``-BUSYKEY``), the TTL (an integer >= 0; 0 is
  no expiry; relative milliseconds unless ABSTTL), then the payload's
  footer (``-ERR DUMP payload version or checksum are wrong``) and its
  object (``-ERR Bad data format``). Nothing changes before all pass.
  IDLETIME and FREQ are accepted and have no effect: trio_kv keeps no LRU
  or LFU data.
* Only the families trio_kv stores can be restored: strings and hashes. A
  valid list, set or sorted set payload is refused with ``-ERR Bad data
  format`` (Redis' answer for a type it cannot load).
* A TTL already in the past (after REPLACE deleted the old value) stores
  nothing and answers OK, as Redis. The key and values obey trio_kv's
  limits (``check_key``, ``check_value_size``) as SET and HSET do.
* The effects are the ones SET and HSET have (a DEL first when REPLACE
  removed a value, then the value, then its expiry), so the log, the
  cluster's replication and WATCH see RESTORE as those writes.
* ``sanitize-dump-payload`` (CONFIG SET yes/no/clients) is accepted and
  shown; validation is always the deep one.
"""

from __future__ import annotations

from ..protocol.rdb_payload import (
    BadChecksum,
    BadData,
    HashObject,
    StringObject,
    decode_payload,
    encode_payload,
)
from ..protocol.replies import OK, Error
from .arguments import INT64_MAX, NOT_AN_INTEGER, SYNTAX_ERROR, check_key, check_value_size, count_lookup, parse_int64
from .hash_value import HashUpdate, HashValue
from .session import Session
from .table import ONE_KEY, CommandSpec, Lock

BUSY_KEY = Error("BUSYKEY Target key name already exists.")
BAD_PAYLOAD_FOOTER = Error("ERR DUMP payload version or checksum are wrong")
BAD_DATA_FORMAT = Error("ERR Bad data format")
INVALID_TTL = Error("ERR Invalid TTL value, must be >= 0")
INVALID_IDLETIME = Error("ERR Invalid IDLETIME value, must be >= 0")
INVALID_FREQ = Error("ERR Invalid FREQ value, must be >= 0 and <= 255")
MAX_FREQ = 255


def cmd_dump(session: Session, args: list[bytes]) -> bytes | None:
    key = args[1]
    found = next(session.keyspace.live_values([key]), None)
    count_lookup(session, found is not None)
    if found is None:
        return None
    value = found[1]
    if isinstance(value, HashValue):
        return encode_payload(HashObject(tuple(value.fields.items())))
    if isinstance(value, (bytes, memoryview)):
        return encode_payload(StringObject(bytes(value)))
    raise TypeError(f"DUMP of a {type(value).__name__}, a family it does not know")


def _parse_options(options: list[bytes]) -> tuple[bool, bool] | Error:
    """(replace, absttl), or Redis' error for the options."""
    replace = absttl = False
    idle = freq = False
    index = 0
    while index < len(options):
        option = options[index].lower()
        more = len(options) - index - 1
        if option == b"replace":
            replace = True
        elif option == b"absttl":
            absttl = True
        elif option == b"idletime" and more >= 1 and not freq:
            seconds = parse_int64(options[index + 1])
            if seconds is None:
                return NOT_AN_INTEGER
            if seconds < 0:
                return INVALID_IDLETIME
            idle = True
            index += 1
        elif option == b"freq" and more >= 1 and not idle:
            count = parse_int64(options[index + 1])
            if count is None:
                return NOT_AN_INTEGER
            if not 0 <= count <= MAX_FREQ:
                return INVALID_FREQ
            freq = True
            index += 1
        else:
            return SYNTAX_ERROR
        index += 1
    return replace, absttl


def _check_limits(session: Session, key: bytes, obj: StringObject | HashObject) -> Error | None:
    problem = check_key(session, key)
    if problem is not None:
        return problem
    sizes = [len(obj.value)] if isinstance(obj, StringObject) else [len(item) for pair in obj.pairs for item in pair]
    for size in sizes:
        problem = check_value_size(session, size)
        if problem is not None:
            return problem
    return None


def cmd_restore(session: Session, args: list[bytes]) -> object:
    key = args[1]
    options = _parse_options(args[4:])
    if isinstance(options, Error):
        return options
    replace, absttl = options
    keyspace = session.keyspace
    if not replace and keyspace.exists(key):
        return BUSY_KEY
    ttl_ms = parse_int64(args[2])
    if ttl_ms is None:
        return NOT_AN_INTEGER
    if ttl_ms < 0:
        return INVALID_TTL
    try:
        obj = decode_payload(args[3])
    except BadChecksum:
        return BAD_PAYLOAD_FOOTER
    except BadData:
        return BAD_DATA_FORMAT
    if not isinstance(obj, (StringObject, HashObject)):
        return BAD_DATA_FORMAT  # a family trio_kv does not store
    problem = _check_limits(session, key, obj)
    if problem is not None:
        return problem
    if replace:
        keyspace.delete(key)
    expire_at_ms = None
    if ttl_ms:
        expire_at_ms = ttl_ms if absttl else ttl_ms + keyspace.now_ms()
        # Redis adds in 64 bits: past INT64_MAX the time wraps negative, so
        # the key counts as already expired.
        if expire_at_ms > INT64_MAX or expire_at_ms <= keyspace.now_ms():
            return OK
    if isinstance(obj, StringObject):
        keyspace.set(key, obj.value, expire_at_ms)
    else:
        keyspace.update(key, HashUpdate(list(obj.pairs)))
        if expire_at_ms is not None:
            keyspace.set_expire_at(key, expire_at_ms)
    return OK


SPECS: list[CommandSpec] = [
    CommandSpec(
        name="dump", arity=2, lock=Lock.READ, flags=("readonly",), keys=ONE_KEY, since="2.6.0", group="generic",
        handler=cmd_dump, summary="Return a serialized version of the value stored at the specified key.",
    ),
    CommandSpec(
        name="restore", arity=-4, lock=Lock.WRITE, flags=("write", "denyoom"), categories=("dangerous",),
        keys=ONE_KEY, since="2.6.0", group="generic", handler=cmd_restore,
        summary="Create a key using the provided serialized value, previously obtained using DUMP.",
    ),
]
