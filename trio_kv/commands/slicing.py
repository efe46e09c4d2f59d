"""Long commands run in bounded slices, so one command never holds up the rest.

A handler whose work grows with the keyspace (KEYS, SCAN with a big COUNT,
FLUSHALL/FLUSHDB) returns a ``Sliced`` object instead of its reply. The
engine (``store.engine.run_batch``) runs one slice of it at a time under the
lock the object names, for about ``SLICE_SECONDS``; if it is not finished,
the job stops at that command and the dispatcher (``server.dispatch``) puts
it back in the queue, so the next slice runs in a later worker hop, beside
other connections' requests. When the command finishes, its reply takes its
place and the rest of the connection's batch runs. A pipeline's order is
kept: nothing after the sliced command runs before it finishes.

Such commands say ``may_slice=True`` in the command table
(``CommandSpec.may_slice``), so the engine's per-command loop tests the
reply's type only for them.

Rules kept here:

* A ``Sliced`` object holds no lock and no reference into the store's
  internals between slices: only a cursor, what it collected so far, and
  lists nobody else can reach (FLUSHALL's detached tables). The store may
  change freely between slices; each class states what its answer
  guarantees despite that.
* Every write of a sliced command happens in its handler, in one lock hold,
  before the first slice (FLUSHALL swaps the tables out in O(1) there).
  Later slices only read under the read lock, or free memory nobody else
  can see without any lock. So abandoning a command between slices (the
  shutdown grace ran out) never leaves a write half-applied.
* Each slice does at least one unit of work (``KEYS_SLICE_INDEX_SLOTS`` or
  ``KEYS_SLICE_SLOTS`` slots of the table, ``DEDUPE_SLICE_KEYS`` keys of a
  duplicate-removal pass, ``FREE_SLICE_CELLS`` cells of a detached list), then stops at
  the first unit boundary past its deadline: a deadline of 0 runs exactly one
  unit (the unit tests use that), ``math.inf`` runs to the end.
* Inside MULTI/EXEC nothing is sliced (``finish``): a transaction stays
  atomic, and may therefore hold the lock for as long as its commands take.

Pure code: no trio, sockets or threads; the engine owns the locks and the clock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..store.keyspace import Keyspace  # type only: see commands.session

# How long one slice runs before it lets other work in (worker-thread time;
# the engine passes ``now + SLICE_SECONDS`` as the deadline). A few
# milliseconds keeps other clients' waits short while the hop overhead
# (about 0.2 ms) stays a small share of the work.
SLICE_SECONDS = 0.003
# Table slots one unit of the SCAN cursor walk inspects between clock checks.
KEYS_SLICE_SLOTS = 4096
# Table slots one unit of KEYS' walk over slot indices inspects (about
# 0.1-0.3 ms: one list slice and one C-level filter).
KEYS_SLICE_INDEX_SLOTS = 16384
# Cells of a detached list one FLUSHALL unit frees between clock checks.
FREE_SLICE_CELLS = 16384
# Keys per unit of the duplicate-removal pass (see KeysSlices).
DEDUPE_SLICE_KEYS = 16384
# A SCAN whose COUNT is at most this runs in one go (the common case, and its
# work is bounded by COUNT * 10 slots already).
SCAN_UNSLICED_MAX_COUNT = 1000

READ = "read"
WRITE = "write"


class Sliced:
    """A command's unfinished work; see the module docstring.

    ``lock`` is the store lock each slice needs: ``READ``, ``WRITE`` or None
    (the slice touches nothing shared). ``step(deadline)`` runs one slice and
    returns True once the command is finished; ``reply()`` is then its reply."""

    __slots__ = ()
    lock: str | None = READ

    def step(self, deadline: float) -> bool:
        raise NotImplementedError

    def reply(self) -> object:
        raise NotImplementedError


def finish(reply: object) -> object:
    """``reply`` itself, or a ``Sliced`` run to its end at once (inside EXEC,
    under the lock EXEC already holds)."""
    if isinstance(reply, Sliced):
        while not reply.step(math.inf):
            pass
        return reply.reply()
    return reply


class KeysSlices(Sliced):
    """KEYS (and the walk of a whole-table SCAN): the keyspace walked a slice
    at a time under the read lock.

    Guarantee: every key present (and not expired) for the whole call is
    returned exactly once; keys added, removed or expiring during the call
    may or may not appear, never twice. A call that finishes in one slice
    (a small keyspace) is an exact snapshot.

    How (the fast path first, about 15x faster than the SCAN cursor):

    * The table's slot list is walked in index ranges (``keys_in_slots``,
      ``KEYS_SLICE_INDEX_SLOTS`` slots a unit, one list slice and one C
      ``filter`` each) while the table's ``install_version`` stays the same:
      then no key moves within the current list, so each key present
      throughout sits in one slot for the whole call and is met exactly
      once. A call that starts during a resize walks the old list, then the
      current one: a key leaves the old list only for the current one,
      which is walked whole afterwards (if the resize ends meanwhile, every
      old key is in the current list by then).
    * If a resize starts mid-walk (the version moved by exactly one and
      there is now an old list), the list being walked has become that old
      list: the walk goes on in it from the same slot, then walks the new
      current list whole, as above.
    * Anything else (a FLUSHALL, two resizes between slices) falls back to
      the SCAN cursor (``scan_keys``, bucket by bucket, keeping SCAN's
      guarantee across any resizes) over the whole table from cursor 0.
    * A key can then have been met twice: in both lists, in the part walked
      before the fallback and again, in two buckets after a layout change,
      or re-inserted in another slot after a delete (only when ``inserts``
      moved). Only in those cases a last pass removes the repeats: with no
      lock (the list of keys is this object's own), in slices, with a set
      of the keys found (about 40 bytes per key, for the pass)."""

    __slots__ = (
        "_keyspace",
        # A predicate on keys (compile_glob(pattern).matches, ...), or None for all.
        "_matches",
        "_cursor",
        "_keys",
        # The fast path: walking slot indices (False: the SCAN cursor).
        "_index_walk",
        # ... in the old list (True) or the current one, at this slot, relying
        # on this install_version; the table's inserts when the call started.
        "_in_old",
        "_position",
        "_install",
        "_inserts",
        # Keys may have been met twice: de-duplicate at the end.
        "_may_repeat",
        # The cursor walk: the keyspace's layout_version when it started.
        "_layout",
        "_layout_changed",
        # The duplicate-removal pass: position in _keys, keys seen, kept.
        "_dedupe_at",
        "_seen",
        "_unique",
        "_walking",
        # Stop after this many keys or slots (None: the whole table);
        # _index_max_keys is max_keys for the index walk (a whole-table SCAN
        # has none there, since an index position is no SCAN cursor).
        "_max_keys",
        "_index_max_keys",
        "_max_slots",
        "_inspected",
        "_reply",
        # Turns (keys, cursor) into the reply; None: the list of keys.
        "_make_reply",
        # The store lock the next slice needs: the read lock while walking,
        # none for the duplicate-removal pass.
        "lock",
    )

    def __init__(
        self,
        keyspace: Keyspace,
        matches: Callable[[bytes], bool] | None,
        *,
        cursor: int = 0,
        max_keys: int | None = None,
        max_slots: int | None = None,
        make_reply: Callable[[list[bytes], int], object] | None = None,
        index_walk: bool | None = None,
    ) -> None:
        self.lock = READ
        self._keyspace = keyspace
        self._make_reply = make_reply
        self._matches = matches
        self._cursor = cursor
        self._keys: list[bytes] = []
        # By default the fast path serves a walk of the whole table.
        if index_walk is None:
            index_walk = cursor == 0 and max_slots is None
        self._index_walk = index_walk
        self._position = 0
        self._may_repeat = False
        if self._index_walk:
            self._install = keyspace.install_version
            self._inserts = keyspace.inserts
            # During a resize the old list comes first (see the class docstring).
            self._in_old = keyspace.slot_counts()[1] > 0
            self._may_repeat = self._in_old
        self._layout = keyspace.layout_version
        self._layout_changed = False
        self._dedupe_at = 0
        self._seen: set[bytes] | None = None
        self._unique: list[bytes] = []
        self._walking = True
        self._max_keys = max_keys
        self._index_max_keys = max_keys
        self._max_slots = max_slots
        self._inspected = 0
        self._reply: object = None

    @property
    def walk(self) -> str:
        """How the table is being (or was) walked: "slots" (the fast path)
        or "cursor" (SCAN's cursor, the fallback)."""
        return "slots" if self._index_walk else "cursor"

    @property
    def cursor(self) -> int:
        """Where the walk stands (0 when it went round); SCAN's reply cursor.
        A walk over slot indices that stopped at ``max_keys`` reports 1: not
        a SCAN cursor, only "not finished" (text KEYS' limit)."""
        return self._cursor

    def step(self, deadline: float) -> bool:
        if not self._walking:
            return self._dedupe(deadline)
        if self._index_walk:
            return self._walk_slots(deadline)
        return self._walk(deadline)

    def _walk_slots(self, deadline: float) -> bool:
        keyspace = self._keyspace
        version = keyspace.install_version
        if version != self._install:
            if version == self._install + 1 and not self._in_old and keyspace.slot_counts()[1]:
                # A resize started: the list being walked is now the old one.
                self._in_old = True
                self._install = version
                self._may_repeat = True
            else:
                self._index_walk = False
                self._cursor = 0
                self._layout = keyspace.layout_version
                self._layout_changed = True
                return self._walk(deadline)
        keys = self._keys
        matches = self._matches
        clock = time.perf_counter
        # A pattern or an expiry check costs about 0.5-1 us a key: smaller
        # units keep slices short then.
        unit = KEYS_SLICE_INDEX_SLOTS if matches is None and not keyspace.keys_with_ttl else KEYS_SLICE_SLOTS
        max_keys = self._index_max_keys
        position = self._position
        while True:
            found = len(keys)
            inspected = keyspace.keys_in_slots(self._in_old, position, position + unit, keys)
            if matches is not None and len(keys) > found:
                keys[found:] = filter(matches, keys[found:])
            if inspected < unit:
                # The end of this list (or it is gone: a resize ended, every
                # key of the old list is in the current one).
                if not self._in_old:
                    self._cursor = 0
                    break
                self._in_old = False
                position = 0
            else:
                position += unit
            if max_keys is not None and len(keys) >= max_keys:
                self._cursor = 1
                break
            if clock() >= deadline:
                self._position = position
                return False
        self._walking = False
        if keyspace.inserts != self._inserts:
            self._may_repeat = True
        return self._finish_walk(deadline)

    def _walk(self, deadline: float) -> bool:
        keyspace = self._keyspace
        if keyspace.layout_version != self._layout:
            self._layout_changed = True
        keys = self._keys
        matches = self._matches
        clock = time.perf_counter
        max_keys, max_slots = self._max_keys, self._max_slots
        cursor = self._cursor
        while True:
            slot_budget = KEYS_SLICE_SLOTS
            if max_slots is not None:
                slot_budget = max(1, min(slot_budget, max_slots - self._inspected))
            start = len(keys)
            cursor, inspected = keyspace.scan_keys(cursor, slot_budget, keys)
            self._inspected += inspected
            if matches is not None and len(keys) > start:
                keys[start:] = filter(matches, keys[start:])
            if (
                cursor == 0
                or (max_keys is not None and len(keys) >= max_keys)
                or (max_slots is not None and self._inspected >= max_slots)
            ):
                break
            if clock() >= deadline:
                self._cursor = cursor
                return False
        self._cursor = cursor
        self._walking = False
        if self._layout_changed:
            self._may_repeat = True
        return self._finish_walk(deadline)

    def _finish_walk(self, deadline: float) -> bool:
        if not self._may_repeat:
            self._set_reply(self._keys)
            return True
        self._seen = set()
        self.lock = None
        return self._dedupe(deadline)

    def _dedupe(self, deadline: float) -> bool:
        keys, seen, unique = self._keys, self._seen, self._unique
        assert seen is not None
        clock = time.perf_counter
        at = self._dedupe_at
        while at < len(keys):
            fresh = set(keys[at : at + DEDUPE_SLICE_KEYS])
            fresh -= seen
            seen |= fresh
            unique.extend(fresh)
            at += DEDUPE_SLICE_KEYS
            if at < len(keys) and clock() >= deadline:
                self._dedupe_at = at
                return False
        self._keys = []
        self._seen = None
        self._set_reply(unique)
        return True

    def _set_reply(self, keys: list[bytes]) -> None:
        make_reply = self._make_reply
        self._reply = keys if make_reply is None else make_reply(keys, self._cursor)

    def reply(self) -> object:
        return self._reply


class ScanSlices(KeysSlices):
    """SCAN with a COUNT over ``SCAN_UNSLICED_MAX_COUNT``: the stopping rule
    of one SCAN call (COUNT keys or COUNT * 10 slots, or the end of the
    table), checked every ``KEYS_SLICE_SLOTS`` slots (COUNT is a hint, as in
    Redis: a reply may hold a few thousand keys more), walked in slices.
    Guarantee: as SCAN's across calls (every key present for the whole call
    at least once), since slices are calls. MATCH and TYPE filtering is done
    by ``finish_reply``.

    A call that must cover the whole table anyway (cursor 0, COUNT at least
    the keys and COUNT * 10 at least the slots, as ``SCAN 0 COUNT 1e9``)
    is run as KEYS is, on the fast path, and answers cursor 0 (unless it
    fell back to the cursor walk and stopped at its COUNT), with no key
    twice. Other calls walk the cursor and do not de-duplicate (SCAN may
    repeat keys anyway)."""

    __slots__ = ("_whole",)

    def __init__(
        self,
        keyspace: Keyspace,
        cursor: int,
        count: int,
        slots_per_count: int,
        finish_reply: Callable[[int, list[bytes]], object],
    ) -> None:
        slots, old_slots = keyspace.slot_counts()
        whole = cursor == 0 and count >= len(keyspace) and count * slots_per_count >= slots + old_slots
        super().__init__(
            keyspace, None, cursor=cursor, max_keys=count, max_slots=count * slots_per_count,
            make_reply=lambda keys, next_cursor: finish_reply(next_cursor, keys), index_walk=whole,
        )
        self._whole = whole
        # COUNT was checked against the whole table when the call started.
        self._index_max_keys = None

    def step(self, deadline: float) -> bool:
        if not self._whole:
            # Never de-duplicates: the layout check is switched off by pinning it.
            self._layout = self._keyspace.layout_version
        return super().step(deadline)


class FreeSlices(Sliced):
    """FLUSHALL/FLUSHDB after the flush: the detached tables' lists, freed a
    chunk at a time with no lock (nobody else can reach them), then the reply.
    The flush itself (and its log record) happened in the handler, at once,
    so every client sees the keyspace empty from then on."""

    __slots__ = ("_lists", "_reply")
    lock = None

    def __init__(self, lists: list[list[Any]], reply: object) -> None:
        self._lists = lists
        self._reply = reply

    def step(self, deadline: float) -> bool:
        lists = self._lists
        clock = time.perf_counter
        while lists:
            cells = lists[-1]
            # From the end: the list only shrinks, never moves what is left.
            del cells[-FREE_SLICE_CELLS:]
            if not cells:
                lists.pop()
            if lists and clock() >= deadline:
                return False
        return True

    def reply(self) -> object:
        return self._reply
