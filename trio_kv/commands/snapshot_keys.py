"""KEYS on a snapshot: an exact answer from a walk that runs in slices.

``KeysSlices`` (commands/slicing.py) walks the table a slice at a time, the
read lock released between slices, and guarantees only that a key present
for the whole call is met exactly once. ``SnapshotKeys`` opens a snapshot
(store/snapshots.py) in the handler, under KEYS's read lock, runs the same
walk, then corrects it to the keyspace as it was when the call started:

* a key the walk met that no undo log holds was not changed since the
  snapshot, so it was there then (drop nothing);
* a key some undo log holds was changed: the walk's sighting says nothing,
  and its pre-image decides (added if it existed then, matched the pattern
  and had not expired at the snapshot's time); the walk's copy is dropped;
* a key no log holds whose time ran out since the snapshot (not deleted
  yet) was dropped by the walk as expired: it is added back;
* after a FLUSH the log's base (the old tables) lists the keys of that time.

The correction reads the logs once under the read lock (the changed keys,
their pre-images), then filters the walk's list with no lock, in slices of
``FILTER_SLICE_KEYS``. A call that finishes in one slice pays an open and a
release of a snapshot. If the snapshot expires meanwhile (the undo-bytes
limit), the walk's own answer is sent, with KeysSlices' guarantee.

Pure code: the store objects come through the session's keyspace.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .slicing import READ, KeysSlices, Sliced

if TYPE_CHECKING:
    from ..store.keyspace import Keyspace
    from ..store.snapshots import SnapshotView

# Walk keys checked against the changed set per unit of the lock-free pass.
FILTER_SLICE_KEYS = 16384


class SnapshotKeys(Sliced):
    def __init__(self, keyspace: Keyspace, matches: Callable[[bytes], bool] | None) -> None:
        self._keyspace = keyspace
        self._matches = matches
        self._view: SnapshotView | None = keyspace.snapshots.open()
        self._walk = KeysSlices(keyspace, matches)
        self.lock: str | None = READ
        self._walked: list[bytes] | None = None
        self._changed: set[bytes] = set()
        self._keys: list[bytes] = []
        self._at = 0

    def __del__(self) -> None:
        # Abandoned between slices (the connection closed): free the
        # snapshot (a flag; no lock).
        view = self._view
        if view is not None:
            view.release()

    def step(self, deadline: float) -> bool:
        if self._walked is None:
            if not self._walk.step(deadline):
                self.lock = self._walk.lock
                return False
            walked = self._walk.reply()
            assert isinstance(walked, list)
            self._walked = walked
            if self._walk.lock != READ:
                self.lock = READ  # the correction reads the logs under the read lock
                return False
        if self.lock == READ:
            self._read_logs()
            self.lock = None
        return self._filter(deadline)

    def _read_logs(self) -> None:
        """Under the read lock: the changed keys, and the keys to add."""
        view, matches = self._view, self._matches
        assert view is not None and self._walked is not None
        self._view = None
        if view.expired or view.released:
            self._keys = self._walked  # KeysSlices' own guarantee
            self._walked = []
            return
        changed = view.changed_keys()
        added = [key for key in changed if view.value(key) is not None]
        flushed = view.flushed_keys()
        if flushed is not None:
            added.extend(key for key in flushed if key not in changed and view.value(key) is not None)
            changed = changed.union(self._walked)  # every key live now came after the FLUSH
        for key in self._keyspace.keys_expired_since(view.at_ms):
            if key not in changed:
                added.append(key)
                changed.add(key)  # the walk dropped it already; never twice
        view.release()
        if matches is not None:
            added = [key for key in added if matches(key)]
        if not changed:  # nothing written during the walk: its list is exact
            self._keys, self._walked = self._walked, []
            self._keys.extend(added)
            return
        self._keys = added
        self._changed = changed

    def _filter(self, deadline: float) -> bool:
        walked, changed, keys = self._walked, self._changed, self._keys
        assert walked is not None
        at = self._at
        clock = time.perf_counter
        while at < len(walked):
            keys.extend(key for key in walked[at : at + FILTER_SLICE_KEYS] if key not in changed)
            at += FILTER_SLICE_KEYS
            if at < len(walked) and clock() >= deadline:
                self._at = at
                return False
        self._walked = []
        self._changed = set()
        return True

    def reply(self) -> object:
        return self._keys
