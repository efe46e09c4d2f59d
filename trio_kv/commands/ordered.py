"""Ordered key commands over the sorted key index: KRANGE (RESP) and RANGE
(the line protocol).

    KRANGE start stop [REV] [LIMIT offset count] [WITHVALUES]
    RANGE start end [limit]                                   (line protocol)

KRANGE is ``ZRANGE key start stop BYLEX`` over the whole keyspace, with
its bound syntax and errors (checked against redis-server 7.0's ZRANGE on
a sorted set of the same members, all scores 0): ``[k`` includes ``k``,
``(k`` excludes it, ``-`` and ``+`` are the ends; anything else is ``ERR
min or max not valid string range item``. With REV the walk goes down and
``start`` is the upper bound, as in ``ZRANGE ... BYLEX REV`` (``KRANGE + -
REV`` lists every key backwards). ``LIMIT offset count``: a negative
offset answers nothing, a negative count means all (the last LIMIT
given counts, as in Redis). WITHVALUES answers key, value, key, value ...
(flat, in RESP3 too; a value of another type than string is nil, as MGET).

Rules kept here:

* There is no cap on a KRANGE without LIMIT (as ZRANGE and KEYS have
  none): the walk runs in slices (commands/ordered_range.py), so writers
  are never held up, and the reply is bounded only by the keyspace, as
  ``KEYS *``'s is. Paging clients use LIMIT, or resume from ``(last``.
* RANGE is the line protocol's paging form: ``start`` inclusive, ``end``
  exclusive (``""``, the empty token, means no upper bound), at most
  ``limit`` keys (default and maximum ``--max-keys-reply``), keys only,
  in byte order: ``RANGE <n>`` then one key a line. Fewer than ``limit``
  keys means the range is done; else the next page starts at the last
  key plus a zero byte (``"last\\x00"``).
* A multi-node cluster node answers only keys of the partitions it is
  listed first for (commands/first_for.py), as SCAN and KEYS do, so
  asking every primary lists each key once (merge the pages by key).
  An HTTP client cannot fan out as a cluster client does, so over HTTP
  (``/range``, ``/keys?prefix=``) a multi-node cluster node refuses
  KRANGE (``CLUSTER_SHARE_ONLY``): ``/range`` answers 400 and
  ``/keys?prefix=`` falls back to its SCAN listing, which the coordinator
  runs over every member (server/cluster/whole_cluster.py).
* ``--sorted-index no``: both answer an error naming the option.

Pure code: no trio, sockets or threads.
"""

from __future__ import annotations

from ..protocol.integers import parse_integer
from ..protocol.replies import Error
from ..protocol.text import Listing
from .arguments import NOT_AN_INTEGER, SYNTAX_ERROR, parse_int64
from .first_for import covering, covers
from .ordered_range import RangeSlices
from .session import Session
from .table import CommandSpec, Lock

BAD_RANGE_ITEM = Error("ERR min or max not valid string range item")
INDEX_OFF = Error("ERR the sorted key index is off (--sorted-index no)")
CLUSTER_SHARE_ONLY = Error(
    "ERR the sorted key index holds one node's share in a multi-node cluster: "
    "over HTTP list the whole cluster with /keys, or send KRANGE to every primary"
)
# What an HTTP listing falls back to SCAN on (both errors above start so).
NO_INDEX_PREFIX = "ERR the sorted key index "
TEXT_INDEX_OFF = Error("the sorted key index is off (--sorted-index no)")

# A bound: (None, _) is the end of the keyspace on its side; ("+"/"-"
# on the wrong side make the range empty).
_MINUS_INFINITY = object()
_PLUS_INFINITY = object()


def parse_lex_bound(token: bytes) -> tuple[object, bool] | None:
    """Redis' zslParseLexRangeItem: ``(key, inclusive)``, an infinity for
    ``-``/``+``, or None if ``token`` is not a range item."""
    if token == b"-":
        return _MINUS_INFINITY, True
    if token == b"+":
        return _PLUS_INFINITY, True
    if token[:1] == b"[":
        return token[1:], True
    if token[:1] == b"(":
        return token[1:], False
    return None


def cmd_krange(session: Session, args: list[bytes]) -> object:
    reverse = with_values = False
    offset, count = 0, -1
    i = 3
    while i < len(args):
        option = args[i].upper()
        if option == b"REV":
            reverse = True
        elif option == b"WITHVALUES":
            with_values = True
        elif option == b"LIMIT" and i + 2 < len(args):
            parsed_offset, parsed_count = parse_int64(args[i + 1]), parse_int64(args[i + 2])
            if parsed_offset is None or parsed_count is None:
                return NOT_AN_INTEGER
            offset, count = parsed_offset, parsed_count
            i += 2
        else:
            return SYNTAX_ERROR
        i += 1
    start, stop = args[1], args[2]
    if reverse:
        start, stop = stop, start  # ZRANGE ... BYLEX REV takes the upper bound first
    low, high = parse_lex_bound(start), parse_lex_bound(stop)
    if low is None or high is None:
        return BAD_RANGE_ITEM
    if session.store.sorted_index is None:
        return INDEX_OFF
    if offset < 0 or low[0] is _PLUS_INFINITY or high[0] is _MINUS_INFINITY:
        return []
    first_for = covering(session)
    if first_for is not None and session.wire.label == "http":
        return CLUSTER_SHARE_ONLY
    return RangeSlices(
        session.keyspace,
        None if low[0] is _MINUS_INFINITY else low[0],  # type: ignore[arg-type]
        None if high[0] is _PLUS_INFINITY else high[0],  # type: ignore[arg-type]
        low_inclusive=low[1],
        high_inclusive=high[1],
        reverse=reverse,
        offset=offset,
        count=None if count < 0 else count,
        with_values=with_values,
        matches=None if first_for is None else (lambda key: covers(first_for, key)),
    )


def cmd_range(session: Session, args: list[bytes]) -> object:
    """The line protocol's RANGE; see the module docstring."""
    if len(args) > 4:
        return Error("wrong number of arguments for 'range'")
    maximum = session.config.max_keys_reply
    limit = maximum
    if len(args) == 4:
        parsed = parse_integer(args[3], minus=False, max_bytes=19, minimum=1, maximum=None)
        if parsed is None or parsed > maximum:
            return Error(f"invalid limit (1 to {maximum})")
        limit = parsed
    if session.store.sorted_index is None:
        return TEXT_INDEX_OFF
    first_for = covering(session)
    return RangeSlices(
        session.keyspace,
        args[1],
        args[2] or None,
        high_inclusive=False,
        count=limit,
        matches=None if first_for is None else (lambda key: covers(first_for, key)),
        make_reply=lambda keys: Listing(b"RANGE", keys),  # type: ignore[arg-type]
    )


KRANGE_SPEC = CommandSpec(
    name="krange", arity=-3, lock=Lock.READ, flags=("readonly",), may_slice=True, since=None,
    group="generic", handler=cmd_krange,
    summary="Return the keys (and values) in a lexicographical range, as ZRANGE BYLEX over the keyspace",
)

RANGE_SPEC = CommandSpec(
    name="range", arity=-3, lock=Lock.READ, flags=("readonly",), may_slice=True, since=None,
    group="generic", handler=cmd_range, summary="RANGE start end [limit]: keys from start (inclusive) to end (exclusive), in byte order",
)
