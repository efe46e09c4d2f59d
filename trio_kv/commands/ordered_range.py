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
from collections.abc import Callable
from itertools import islice
from typing import TYPE_CHECKING

from .slicing import READ, Sliced

if TYPE_CHECKING:
    from ..store.keyspace import Keyspace  # type only: see commands.session

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

    def step(self, deadline: float) -> bool:
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
            if matches is not None:
                keys = list(filter(matches, keys))
            if self._skip:
                skipped = min(self._skip, len(keys))
                self._skip -= skipped
                keys = keys[skipped:]
            if remaining is not None:
                keys = keys[:remaining]
                remaining = self._remaining = remaining - len(keys)
            if self._with_values:
                keyspace.add_string_views(keys, found)
            else:
                found.extend(keys)
            if remaining == 0 or walked < unit:
                return self._finish()
            if clock() >= deadline:
                return False

    def _finish(self) -> bool:
        self._reply = self._make_reply(self._found)
        self._found = []
        return True

    def reply(self) -> object:
        return self._reply
