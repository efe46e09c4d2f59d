"""Reading the sorted key index in order, a slice at a time: ``RangeSlices``.

KRANGE (commands/ordered.py), the line protocol's RANGE and ``KEYS
prefix``, RESP ``KEYS prefix*`` and HTTP ``/range`` (through KRANGE) all
walk ``Store.sorted_index`` (store/sorted_index.py) through this class.

Rules kept here:

* **Sliced like KEYS** (commands/slicing.py): each slice runs under the
  read lock and walks ``RANGE_SLICE_KEYS`` keys a unit until its deadline;
  between slices it keeps only the last key it walked past, and the next
  slice starts a new ``irange`` strictly after it (before it, in reverse).
  So writers are never held up for longer than a slice, and the answer's
  guarantee is: every key present (and not expired) for the whole call
  is returned exactly once, in order; keys added or removed meanwhile may
  or may not be. A call that finishes in one slice (the usual LIMIT of a
  few thousand keys) is an exact snapshot. A value is read in the same
  slice as its key.
* **Exact across slices on request** (``exact=True``: RESP ``KEYS
  prefix*`` and the line protocol's ``KEYS prefix``): a walk that does not
  finish in its first slice opens a snapshot (store/snapshots.py) at the
  end of that slice, still under its lock hold, so the snapshot is the
  keyspace the first slice read; the later slices read the snapshot
  (``SnapshotView.iter_items``, TTLs judged at its time), so the answer is
  exactly the keys present when the call started, whatever is written
  between slices. A call that fits one slice opens none. If the snapshot
  expires between slices (its undo-bytes limit or idle timeout), the walk
  goes on in the live index from where it was, with the guarantee above;
  an abandoned walk (the connection closed between slices) frees it.
* **Expired keys are skipped**: the index, like DBSIZE, still holds a key
  whose time ran out until a write or the sweep removes it; a walk checks
  expiry only while some key has a TTL.
* **Offset and count count answered keys**: keys skipped for expiry or
  by the filter (a cluster node's coverage) do not use them up.
* With no filter and no key with a TTL, the walk is C-level slicing of
  the index's iterator (``itertools.islice``): about 0.1-0.2 us a key.

Pure code: no trio, sockets or threads; the engine holds the locks.
"""

from __future__ import annotations

import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from itertools import islice
from typing import TYPE_CHECKING

from .slicing import READ, Sliced
from .values import TypedValue

if TYPE_CHECKING:
    from ..store.keyspace import Keyspace  # type only: see commands.session
    from ..store.snapshots import SnapshotView

# Keys one unit of a walk takes from the index between clock checks.
RANGE_SLICE_KEYS = 1024


def prefix_end(prefix: bytes) -> bytes | None:
    """The least key greater than every key starting with ``prefix`` (the
    exclusive upper bound of a prefix range); None when there is none
    (``prefix`` is empty or all 0xff bytes)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes((stripped[-1] + 1,))


class RangeSlices(Sliced):
    """One ordered walk of the sorted index; see the module docstring.

    ``low``/``high`` bound the keys (None: unbounded), each inclusive or
    not; ``reverse`` walks from ``high`` down. ``offset`` answered keys
    are skipped, then at most ``count`` (None: all) are answered. With
    ``with_values`` the answer is flat: key, value, key, value ... (a value
    of another type than string answers None, as MGET). ``matches``, when
    given, filters keys. ``make_reply`` turns the answer into the reply."""

    __slots__ = (
        "_keyspace",
        # Where the next slice starts: the bounds, narrowed past the last
        # key walked (exclusive from then on).
        "_low",
        "_low_inclusive",
        "_high",
        "_high_inclusive",
        "_reverse",
        # Answered keys still to skip, keys still to answer (None: no limit).
        "_skip",
        "_remaining",
        "_with_values",
        "_matches",
        "_found",
        "_make_reply",
        "_reply",
        # exact=True: open a snapshot if the first slice does not finish;
        # then the snapshot the later slices read (None: the live index).
        "_exact",
        "_view",
    )
    lock = READ

    def __init__(
        self,
        keyspace: Keyspace,
        low: bytes | None,
        high: bytes | None,
        *,
        low_inclusive: bool = True,
        high_inclusive: bool = True,
        reverse: bool = False,
        offset: int = 0,
        count: int | None = None,
        with_values: bool = False,
        matches: Callable[[bytes], bool] | None = None,
        make_reply: Callable[[list[bytes | memoryview | None]], object] = list,
        exact: bool = False,
    ) -> None:
        self._keyspace = keyspace
        self._low, self._low_inclusive = low, low_inclusive
        self._high, self._high_inclusive = high, high_inclusive
        self._reverse = reverse
        self._skip = offset
        self._remaining = count
        self._with_values = with_values
        self._matches = matches
        self._found: list[bytes | memoryview | None] = []
        self._make_reply = make_reply
        self._reply: object = None
        self._exact = exact
        self._view: SnapshotView | None = None

    def __del__(self) -> None:
        # Abandoned between slices: free the snapshot (a flag; no lock).
        view = self._view
        if view is not None:
            view.release()

    def step(self, deadline: float) -> bool:
        view = self._view
        if view is not None:
            if view.touch():
                return self._step_snapshot(view, deadline)
            self._view = None  # expired: on in the live index (the module's rule)
        if self._step_live(deadline):
            return True
        if self._exact:
            # Still under the first slice's lock hold: the snapshot is the
            # keyspace this slice read (the call's start).
            self._exact = False
            self._view = self._keyspace.snapshots.open()
        return False

    def _step_live(self, deadline: float) -> bool:
        keyspace = self._keyspace
        index = keyspace.sorted_index
        if index is None or self._remaining == 0:
            return self._finish()
        reverse = self._reverse
        walk = index.irange(
            self._low, self._high, min_inclusive=self._low_inclusive, max_inclusive=self._high_inclusive,
            reverse=reverse,
        )
        matches = self._matches
        found = self._found
        check_expiry = keyspace.keys_with_ttl > 0
        now_ms = keyspace.now_ms() if check_expiry else 0
        expired = keyspace.is_expired_key
        clock = time.perf_counter
        while True:
            remaining = self._remaining
            unit = RANGE_SLICE_KEYS
            if remaining is not None and matches is None and not check_expiry:
                unit = min(unit, self._skip + remaining)  # a small LIMIT takes no more than it needs
            keys = list(islice(walk, unit))
            if not keys:
                return self._finish()
            # The next slice resumes strictly past the last key walked.
            if reverse:
                self._high, self._high_inclusive = keys[-1], False
            else:
                self._low, self._low_inclusive = keys[-1], False
            walked = len(keys)
            if check_expiry:
                keys = [key for key in keys if not expired(key, now_ms)]
            keys = self._answered(keys)
            remaining = self._remaining
            if self._with_values:
                keyspace.add_string_views(keys, found)
            else:
                found.extend(keys)
            if remaining == 0 or walked < unit:
                return self._finish()
            if clock() >= deadline:
                return False

    def _step_snapshot(self, view: SnapshotView, deadline: float) -> bool:
        """A slice of the walk at the snapshot: the same bounds, filter,
        offset and count as the live walk."""
        if self._remaining == 0:
            return self._finish()
        if self._reverse or view.flushed_keys() is not None:
            units = self._merged_units(view)  # rare: KEYS never walks in reverse
        else:
            units = self._corrected_units(view)
        found = self._found
        clock = time.perf_counter
        for keys, last in units:
            keys = self._answered(keys)
            remaining = self._remaining
            if self._with_values:
                for key in keys:
                    value = view.value(key)
                    # A grown string copied: the snapshot's copy may go once it is released.
                    if type(value) is not bytes:
                        value = None if isinstance(value, TypedValue) else value.tobytes()  # type: ignore[attr-defined]
                    found += (key, value)
            else:
                found.extend(keys)
            if last or remaining == 0:
                return self._finish()
            if clock() >= deadline:
                return False
        return self._finish()

    def _answered(self, keys: list[bytes]) -> list[bytes]:
        """Of a unit's keys (in range, live), the ones answered: filtered,
        past the offset, within the count (both walks)."""
        if self._matches is not None:
            keys = list(filter(self._matches, keys))
        if self._skip:
            skipped = min(self._skip, len(keys))
            self._skip -= skipped
            keys = keys[skipped:]
        remaining = self._remaining
        if remaining is not None:
            keys = keys[:remaining]
            self._remaining = remaining - len(keys)
        return keys

    def _resume_after(self, key: bytes) -> None:
        # The next unit (and slice) resumes strictly past ``key``.
        if self._reverse:
            self._high, self._high_inclusive = key, False
        else:
            self._low, self._low_inclusive = key, False

    def _corrected_units(self, view: SnapshotView) -> Iterator[tuple[list[bytes], bool]]:
        """Units of keys at the snapshot, read from the live index at its
        speed and corrected: a key no undo log holds is as it was then
        (present if it had not expired at the snapshot's time); a key some
        log holds (written since) is as its pre-image says, in the key
        range of the unit just read. Yields (keys, whether the range is
        done). Forward walks with no FLUSH since the snapshot."""
        keyspace = self._keyspace
        index = keyspace.sorted_index
        if index is None:
            return
        changed = view.changed_keys()
        written = sorted(changed)
        check_expiry = keyspace.keys_with_ttl > 0
        at_ms = view.at_ms
        expired = keyspace.is_expired_key
        value_at = view.value
        high, high_inclusive = self._high, self._high_inclusive
        walk = index.irange(self._low, high, min_inclusive=self._low_inclusive, max_inclusive=high_inclusive)
        while True:
            live = list(islice(walk, RANGE_SLICE_KEYS))
            last = len(live) < RANGE_SLICE_KEYS
            keys = [key for key in live if key not in changed] if changed else live
            if check_expiry:
                keys = [key for key in keys if not expired(key, at_ms)]
            if written:
                # The written keys in this unit's range: after the last key
                # met, up to this unit's last (or the range's end).
                low, low_inclusive = self._low, self._low_inclusive
                start = 0 if low is None else (bisect_left if low_inclusive else bisect_right)(written, low)
                if not last:
                    stop = bisect_right(written, live[-1])
                elif high is None:
                    stop = len(written)
                else:
                    stop = (bisect_right if high_inclusive else bisect_left)(written, high)
                before = [key for key in written[start:stop] if value_at(key) is not None]
                if before:
                    keys = sorted(keys + before)
            if not last:
                self._resume_after(live[-1])
            yield keys, last
            if last:
                return

    def _merged_units(self, view: SnapshotView) -> Iterator[tuple[list[bytes], bool]]:
        """Units of keys at the snapshot from ``SnapshotView.iter_items``
        (a merge of the index with the logs, a value read per key: about
        40x slower than ``_corrected_units``, for reverse walks and after a
        FLUSH)."""
        walk = view.iter_items(self._low, self._high, self._low_inclusive, self._high_inclusive, self._reverse)
        while True:
            keys = [key for key, _value in islice(walk, RANGE_SLICE_KEYS)]
            last = len(keys) < RANGE_SLICE_KEYS
            if not last:
                self._resume_after(keys[-1])
            yield keys, last
            if last:
                return

    def _finish(self) -> bool:
        view = self._view
        if view is not None:
            self._view = None
            view.release()
        self._reply = self._make_reply(self._found)
        self._found = []
        return True

    def reply(self) -> object:
        return self._reply
