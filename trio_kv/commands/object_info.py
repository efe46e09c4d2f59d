"""OBJECT ENCODING | FREQ | IDLETIME | REFCOUNT: a key's internals as Redis
reports them, read without touching the key's access stamp (Redis'
LOOKUP_NOTOUCH).

* ``FREQ``: the key's LFU counter after decay (store/eviction_policy.py),
  only under an LFU ``maxmemory-policy`` (else Redis' error).
* ``IDLETIME``: seconds since the key was last read or written, under
  every policy but the LFU ones (every key keeps the LRU clock then, as
  Redis' ``lru`` field; store/store.py ``set_maxmemory_policy``); under an
  LFU policy Redis' error.
* ``REFCOUNT``: trio_kv shares no value objects between keys; it answers
  what Redis' clients observe, because tests read it: a string holding an
  integer in [0, 10000) is one of Redis' shared integers
  (``SHARED_REFCOUNT``) unless maxmemory is set with an LRU or LFU policy
  (Redis then gives every key its own object, for its access field); any
  other value is 1.
* ``ENCODING``: Redis' name for what the value would be in Redis: ``int``,
  ``embstr`` (up to 44 bytes), ``raw``; ``hashtable`` for a hash.
"""

from __future__ import annotations

from ..protocol.replies import Error
from .container import Container, Subcommand
from .session import Session
from .table import CommandSpec, Lock

# Redis' OBJ_SHARED_REFCOUNT (INT_MAX) and OBJ_SHARED_INTEGERS.
SHARED_REFCOUNT = 2147483647
SHARED_INTEGERS = 10000
# Redis' OBJ_ENCODING_EMBSTR_SIZE_LIMIT.
EMBSTR_MAX_BYTES = 44
NOT_LFU = Error(
    "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching "
    "between policies at runtime LRU and LFU data will take some time to adjust."
)
# Redis 7.0's object.c text for IDLETIME under an LFU policy.
LFU_SELECTED = Error(
    "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching "
    "between policies at runtime LRU and LFU data will take some time to adjust."
)


def _integer(value: bytes) -> int | None:
    """The value as Redis' string2l reads it (no sign on 0, no leading zeros)."""
    if not value or len(value) > 20:
        return None
    try:
        number = int(value)
    except ValueError:
        return None
    return number if str(number).encode() == value and -(1 << 63) <= number < (1 << 63) else None


def _string(value: object) -> bytes | None:
    if isinstance(value, bytes):
        return value
    if hasattr(value, "view"):  # a grown string (store.growable)
        return bytes(value.view())
    return None


def object_encoding(session: Session, args: list[bytes]) -> bytes | None:
    entry = session.keyspace.peek(args[2])
    if entry is None:
        return None
    value = _string(entry[0])
    if value is None:
        return b"hashtable"
    if _integer(value) is not None:
        return b"int"
    return b"embstr" if len(value) <= EMBSTR_MAX_BYTES else b"raw"


def object_freq(session: Session, args: list[bytes]) -> int | Error | None:
    entry = session.keyspace.peek(args[2])
    if entry is None:
        return None
    clock = session.store.evictor.clock
    if clock is None or not clock.lfu:
        return NOT_LFU
    return 255 - clock.score(entry[1], clock.now_ms())


def object_idletime(session: Session, args: list[bytes]) -> int | Error | None:
    entry = session.keyspace.peek(args[2])
    if entry is None:
        return None
    clock = session.store.evictor.clock
    if clock is None or clock.lfu:
        return LFU_SELECTED
    return clock.score(entry[1], clock.now_ms()) // 1000


def object_refcount(session: Session, args: list[bytes]) -> int | None:
    entry = session.keyspace.peek(args[2])
    if entry is None:
        return None
    value = _string(entry[0])
    number = None if value is None else _integer(value)
    store = session.store
    # An LRU or LFU policy (allkeys-lru, volatile-lfu...): Redis' MAXMEMORY_FLAG_NO_SHARED_INTEGERS.
    own_objects = store.maxmemory_bytes and store.evictor.policy.endswith(("-lru", "-lfu"))
    return SHARED_REFCOUNT if number is not None and 0 <= number < SHARED_INTEGERS and not own_objects else 1


def _key_subcommand(name: str, handler: object, summary: str, since: str) -> Subcommand:
    return Subcommand(
        name=name, arity=3, lock=Lock.READ, flags=("readonly",), usage=f"{name.upper()} <key>",
        since=since, handler=handler, summary=summary,  # type: ignore[arg-type]
    )


OBJECT = Container(
    "object",
    [
        _key_subcommand("encoding", object_encoding, "Returns the internal encoding of a Redis object.", "2.2.3"),
        _key_subcommand("freq", object_freq, "Returns the logarithmic access frequency counter of a Redis object.", "4.0.0"),
        _key_subcommand("idletime", object_idletime, "Returns the time since the last access to a Redis object.", "2.2.3"),
        _key_subcommand("refcount", object_refcount, "Returns the reference count of a value of a key.", "2.2.3"),
    ],
)

SPECS: list[CommandSpec] = [
    CommandSpec(
        name="object", arity=-2, lock=Lock.READ, since="2.2.3", group="generic", handler=OBJECT,
        summary="A container for object introspection commands",
    ),
]
