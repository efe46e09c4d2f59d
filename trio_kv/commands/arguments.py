"""Argument parsing and checks shared by the Redis command families, with
Redis' wording: 64-bit integers as ``string2ll`` reads them
(``protocol.integers.parse_int64``: optional ``-``, no ``+``, no leading
zeros or spaces), key and value size limits, and the keyspace hit/miss
counting of a read. No IO.
"""

from __future__ import annotations

# Re-exported (``as``) for the command families.
from ..protocol.integers import INT64_MAX as INT64_MAX
from ..protocol.integers import INT64_MIN as INT64_MIN
from ..protocol.integers import parse_int64 as parse_int64
from ..protocol.replies import Error
from .session import Session

# C's LLONG_MAX / 1000 and LLONG_MIN / 1000 (division truncates toward zero).
INT64_MAX_DIV_1000 = INT64_MAX // 1000
INT64_MIN_DIV_1000 = -(2**63 // 1000)

NOT_AN_INTEGER = Error("ERR value is not an integer or out of range")
NOT_A_FLOAT = Error("ERR value is not a valid float")
SYNTAX_ERROR = Error("ERR syntax error")
OVERFLOW = Error("ERR increment or decrement would overflow")
NOT_FINITE = Error("ERR increment would produce NaN or Infinity")
TOO_BIG = Error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")


def invalid_expire_time(command: str) -> Error:
    return Error(f"ERR invalid expire time in '{command}' command")


def check_key(session: Session, key: bytes) -> Error | None:
    limit = session.config.max_key_bytes
    if len(key) > limit:
        return Error(f"ERR key too long ({len(key)} bytes, max {limit} bytes)")
    return None


def check_value_size(session: Session, size: int) -> Error | None:
    limit = session.config.max_value_bytes
    if size > limit:
        return Error(f"ERR value too long ({size} bytes, max {limit} bytes)")
    return None


def count_lookup(session: Session, found: bool) -> None:
    """A read lookup of a key, as Redis counts keyspace hits and misses."""
    session.stats.add("keyspace_hits" if found else "keyspace_misses")
