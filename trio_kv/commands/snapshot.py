"""SNAPSHOT: point-in-time reads over RESP that never block writers.

* ``SNAPSHOT`` opens a snapshot (store/snapshots.py) and answers its id.
  The id belongs to this connection: other connections cannot use it,
  and it is released when the connection closes (server/listener.py), on
  RESET, or by ``SNAPSHOT RELEASE id``. At most
  ``MAX_SNAPSHOTS_PER_CONNECTION`` are open per connection.
* ``SNAPSHOT GET id key``: the key's value at the snapshot (TTLs judged at
  the snapshot's time); WRONGTYPE for a hash.
* ``SNAPSHOT RANGE id min max [LIMIT offset count] [WITHVALUES]``: the keys
  in range at the snapshot, in order, with KRANGE's (ZRANGE BYLEX's) bound
  syntax (``[a``, ``(a``, ``-``, ``+``); WITHVALUES answers key, value, ...
  (a hash's value as a null). Needs the sorted key index. A range of more
  than ``RANGE_UNSLICED_MAX_KEYS`` keys (or with no count) runs in slices
  (commands/slicing.py) that never hold up writers, and stays exact: the
  snapshot does not move.
* ``SNAPSHOT RELEASE id``: 1 if it was open (expired ones included), 0 if
  unknown.
* Past ``--snapshot-max-undo-bytes`` or ``--snapshot-idle-timeout-seconds``
  a snapshot expires: GET and RANGE answer ``ERR snapshot expired`` (as for
  a released or unknown id: ``ERR no such snapshot``).
* Read-only (the read lock), never logged. Cluster mode refuses them: a
  snapshot would cover one node's replicas, not the keys a client routes
  to a slot's owners (README "Snapshots").

Pure code: the snapshot objects are the store's (``session.keyspace.snapshots``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..protocol.replies import Error
from .arguments import NOT_AN_INTEGER, SYNTAX_ERROR, parse_int64
from .container import Container, Subcommand
from .session import Session
from .slicing import READ, Sliced
from .table import CommandSpec, Lock
from .values import TypedValue, WrongType

if TYPE_CHECKING:
    from ..store.snapshots import SnapshotView

MAX_SNAPSHOTS_PER_CONNECTION = 64
# A RANGE asking for more keys than this runs in slices.
RANGE_UNSLICED_MAX_KEYS = 1000
# Keys one unit of a sliced RANGE reads between clock checks.
RANGE_SLICE_KEYS = 512

EXPIRED = Error("ERR snapshot expired")
NO_SUCH_SNAPSHOT = Error("ERR no such snapshot")
TOO_MANY = Error(f"ERR too many snapshots open on this connection (at most {MAX_SNAPSHOTS_PER_CONNECTION})")
IN_CLUSTER = Error("ERR SNAPSHOT is not available in cluster mode")
NO_INDEX = Error("ERR SNAPSHOT RANGE needs the sorted key index (--sorted-index yes)")
BAD_BOUND = Error("ERR min or max not valid string range item")

# A parsed bound: (key or None for -/+, inclusive).
Bound = tuple[bytes | None, bool]


def parse_lex_bound(token: bytes, is_min: bool) -> Bound | None:
    """ZRANGE BYLEX's bound: ``[key``, ``(key``, ``-`` or ``+``; None if invalid.
    ``+`` as a minimum (or ``-`` as a maximum) is an empty range, told by
    the caller from ``empty_range``."""
    if token == b"-" or token == b"+":
        return None, True
    if token[:1] == b"[":
        return token[1:], True
    if token[:1] == b"(":
        return token[1:], False
    return None


def _view(session: Session, token: bytes) -> SnapshotView | Error:
    if session.config.cluster_enabled:
        return IN_CLUSTER
    snapshot_id = parse_int64(token)
    if snapshot_id is None:
        return NOT_AN_INTEGER
    view = session.snapshots.get(snapshot_id)
    if view is None:
        return NO_SUCH_SNAPSHOT
    if view.expired:
        return EXPIRED
    if view.released:
        return NO_SUCH_SNAPSHOT
    return view


def cmd_open(session: Session, args: list[bytes]) -> object:
    """SNAPSHOT: open one; its id."""
    if session.config.cluster_enabled:
        return IN_CLUSTER
    live = {key: view for key, view in session.snapshots.items() if not view.released}
    if len(live) >= MAX_SNAPSHOTS_PER_CONNECTION:
        return TOO_MANY
    view = session.keyspace.snapshots.open()
    live[view.id] = view
    session.snapshots = live
    return view.id


def cmd_get(session: Session, args: list[bytes]) -> object:
    view = _view(session, args[2])
    if isinstance(view, Error):
        return view
    if not view.touch():
        return EXPIRED
    value = view.value(args[3])
    if value is None or type(value) is bytes:
        return value
    if isinstance(value, TypedValue):
        raise WrongType
    return value.tobytes()  # type: ignore[attr-defined]  # a grown string


def cmd_release(session: Session, args: list[bytes]) -> object:
    if session.config.cluster_enabled:
        return IN_CLUSTER
    snapshot_id = parse_int64(args[2])
    if snapshot_id is None:
        return NOT_AN_INTEGER
    view = session.snapshots.pop(snapshot_id, None)
    if view is None:
        return 0
    view.release()
    return 1


def cmd_range(session: Session, args: list[bytes]) -> object:
    """SNAPSHOT RANGE id min max [LIMIT offset count] [WITHVALUES]."""
    view = _view(session, args[2])
    if isinstance(view, Error):
        return view
    low, high = parse_lex_bound(args[3], True), parse_lex_bound(args[4], False)
    if low is None or high is None:
        return BAD_BOUND
    offset, count, with_values = 0, -1, False
    i = 5
    while i < len(args):
        option = args[i].upper()
        if option == b"LIMIT" and i + 2 < len(args):
            parsed_offset, parsed_count = parse_int64(args[i + 1]), parse_int64(args[i + 2])
            if parsed_offset is None or parsed_count is None:
                return NOT_AN_INTEGER
            offset, count = parsed_offset, parsed_count
            i += 3
        elif option == b"WITHVALUES":
            with_values = True
            i += 1
        else:
            return SYNTAX_ERROR
    if session.keyspace.snapshots.sorted_index is None:
        return NO_INDEX
    if offset < 0 or count == 0 or args[3] == b"+" or args[4] == b"-":
        return []
    work = SnapshotRangeSlices(view, low, high, offset, None if count < 0 else count, with_values)
    if count < 0 or offset + count > RANGE_UNSLICED_MAX_KEYS:
        return work
    work.step(float("inf"))  # small: at once, under this command's lock
    return work.reply()


class SnapshotRangeSlices(Sliced):
    """SNAPSHOT RANGE's walk, a slice at a time under the read lock. Exact
    whatever runs between slices: each slice resumes after the last key
    met, and the snapshot's keys do not change. A snapshot that expires
    between slices answers ``ERR snapshot expired``."""

    __slots__ = ("_view", "_low", "_high", "_skip", "_left", "_with_values", "_out")
    lock = READ

    def __init__(
        self, view: SnapshotView, low: Bound, high: Bound, offset: int, count: int | None, with_values: bool
    ) -> None:
        self._view = view
        self._low, self._high = low, high
        self._skip, self._left = offset, count
        self._with_values = with_values
        self._out: list[object] | Error = []

    def step(self, deadline: float) -> bool:
        view, out = self._view, self._out
        assert isinstance(out, list)
        if not view.touch():
            self._out = EXPIRED
            return True
        clock = time.perf_counter
        (low, low_inclusive), (high, high_inclusive) = self._low, self._high
        met = 0
        for key, value in view.iter_items(low, high, low_inclusive, high_inclusive):
            met += 1
            self._low = (key, False)
            if self._skip:
                self._skip -= 1
            else:
                out.append(key)
                if self._with_values:
                    if type(value) is not bytes:
                        value = None if isinstance(value, TypedValue) else value.tobytes()  # type: ignore[attr-defined]
                    out.append(value)
                if self._left is not None:
                    self._left -= 1
                    if not self._left:
                        return True
            if met % RANGE_SLICE_KEYS == 0 and clock() >= deadline:
                return False
        return True

    def reply(self) -> object:
        return self._out


SNAPSHOT = Container(
    "snapshot",
    [
        Subcommand(
            name="get", arity=4, lock=Lock.READ, flags=("readonly", "fast"), usage="GET <id> <key>",
            summary="The key's value at the snapshot.", handler=cmd_get, since="7.0.0",
        ),
        Subcommand(
            name="range", arity=-5, lock=Lock.READ, flags=("readonly",),
            usage="RANGE <id> <min> <max> [LIMIT <offset> <count>] [WITHVALUES]",
            summary="The keys in a lexicographic range at the snapshot ([a, (a, -, +).", handler=cmd_range,
            since="7.0.0",
        ),
        Subcommand(
            name="release", arity=3, lock=Lock.READ, flags=("readonly", "fast"), usage="RELEASE <id>",
            summary="Frees the snapshot.", handler=cmd_release, since="7.0.0",
        ),
    ],
    bare=cmd_open,
)

SPECS: list[CommandSpec] = [
    CommandSpec(
        name="snapshot", arity=-1, lock=Lock.READ, flags=("readonly",), since="7.0.0", group="generic",
        handler=SNAPSHOT, may_slice=True,
        summary="Opens a point-in-time snapshot of the keyspace (trio_kv); GET, RANGE and RELEASE read it.",
    ),
]
