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

Such commands carry the private flag ``sliced`` in the command table
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
* Each slice does at least one unit of work (``KEYS_SLICE_SLOTS`` slots of
  the table, ``FREE_SLICE_CELLS`` cells of a detached list), then stops at
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
from typing import Any

# How long one slice runs before it lets other work in (worker-thread time;
# the engine passes ``now + SLICE_SECONDS`` as the deadline). A few
# milliseconds keeps other clients' waits short while the hop overhead
# (about 0.2 ms) stays a small share of the work.
SLICE_SECONDS = 0.003
# Table slots one KEYS/SCAN unit inspects between clock checks.
KEYS_SLICE_SLOTS = 4096
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
    """KEYS (and the walk of a big SCAN): the keyspace's SCAN cursor, walked
    a slice at a time under the read lock.

    Guarantee: every key present (and not expired) for the whole call is
    returned exactly once; keys added, removed or expiring during the call
    may or may not appear, never twice. A call that finishes in one slice
    (a small keyspace) is an exact snapshot. SCAN's cursor already returns
    every key present throughout at least once; it can only repeat a key
    when the table's layout changed between slices (a resize started or
    ended, or a FLUSHALL), so only then a last pass removes duplicates, in
    slices too, with a set of the keys found (its memory: about 40 bytes per
    key, for the length of the pass)."""

    __slots__ = (
        "_keyspace",
        # compile_glob(pattern).matches, or None for "*".
        "_matches",
        "_cursor",
        "_keys",
        # The keyspace's layout_version when the walk started.
        "_layout",
        "_layout_changed",
        # The duplicate-removal pass: position in _keys, keys seen, kept.
        "_dedupe_at",
        "_seen",
        "_unique",
        "_walking",
        # SCAN: stop after this many keys or slots (None: the whole table).
        "_max_keys",
        "_max_slots",
        "_inspected",
        "_reply",
        # Turns (keys, cursor) into the reply; None: the list of keys.
        "_make_reply",
    )

    def __init__(
        self,
        keyspace: Any,
        matches: Callable[[bytes], bool] | None,
        *,
        cursor: int = 0,
        max_keys: int | None = None,
        max_slots: int | None = None,
        make_reply: Callable[[list[bytes], int], object] | None = None,
    ) -> None:
        self._keyspace = keyspace
        self._make_reply = make_reply
        self._matches = matches
        self._cursor = cursor
        self._keys: list[bytes] = []
        self._layout = keyspace.layout_version
        self._layout_changed = False
        self._dedupe_at = 0
        self._seen: set[bytes] | None = None
        self._unique: list[bytes] = []
        self._walking = True
        self._max_keys = max_keys
        self._max_slots = max_slots
        self._inspected = 0
        self._reply: object = None

    @property
    def cursor(self) -> int:
        """Where the walk stands (0 when it went round); SCAN's reply cursor."""
        return self._cursor

    def step(self, deadline: float) -> bool:
        if self._walking:
            return self._walk(deadline)
        return self._dedupe(deadline)

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
                keys[start:] = [key for key in keys[start:] if matches(key)]
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
        if not self._layout_changed:
            self._set_reply(keys)
            return True
        self._seen = set()
        return self._dedupe(deadline)

    def _dedupe(self, deadline: float) -> bool:
        keys, seen, unique = self._keys, self._seen, self._unique
        assert seen is not None
        clock = time.perf_counter
        at = self._dedupe_at
        while at < len(keys):
            for key in keys[at : at + DEDUPE_SLICE_KEYS]:
                if key not in seen:
                    seen.add(key)
                    unique.append(key)
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
    Redis: a reply may hold a few thousand keys more), walked in slices. Guarantee: as SCAN's across calls (every key
    present for the whole call at least once), since slices are calls. Keys
    are not de-duplicated (SCAN may repeat keys anyway); MATCH and TYPE
    filtering is done by ``finish_reply``."""

    __slots__ = ("_finish_reply",)

    def __init__(
        self,
        keyspace: Any,
        cursor: int,
        count: int,
        slots_per_count: int,
        finish_reply: Callable[[int, list[bytes]], object],
    ) -> None:
        super().__init__(keyspace, None, cursor=cursor, max_keys=count, max_slots=count * slots_per_count)
        self._finish_reply = finish_reply

    def step(self, deadline: float) -> bool:
        # Never de-duplicates: the layout check is switched off by pinning it.
        self._layout = self._keyspace.layout_version
        if not self._walk(deadline):
            return False
        self._reply = self._finish_reply(self._cursor, self._keys)
        return True


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
