"""``DBSnapshot``: a point-in-time read view of an embedded store
(``DB.snapshot()``), on the store's snapshots (store/snapshots.py, an undo
log of pre-images: writers never wait for it).

Rules kept here:

* Reads see the store as it was when the snapshot was taken, TTLs judged
  at that time; every call takes the read lock for itself (one page of a
  scan at a time, ``snapshot_page``), so a long scan never holds up
  writers and still returns one point in time.
* Release it (``release()``, or the end of its ``with`` block): until then
  every write to a key keeps the key's old value for it. Past the store's
  limits (``snapshot_max_undo_bytes``, ``snapshot_idle_timeout_seconds``)
  it expires, and reads raise ``trio_kv.SnapshotExpired``.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType

from ..store.direct import SCAN_PAGE_KEYS, check_key, check_scan
from ..store.snapshot_api import Snapshot


def snapshot_page(
    snapshot: Snapshot, start: bytes | None, end: bytes | None, reverse: bool, resume: bytes | None, count: int,
) -> tuple[list[tuple[bytes, bytes]], bytes | None]:
    """One page of a scan of ``start <= key < end`` at the snapshot, past
    ``resume`` (exclusive; None: from the first), up to ``count`` pairs, one
    read-lock hold; returns the pairs and where the next page resumes
    (None: the range is done). ``direct.scan_page``'s contract."""
    if reverse:
        pairs = snapshot.items(start, end if resume is None else resume, max_inclusive=False, reverse=True, limit=count)
    elif resume is None:
        pairs = snapshot.items(start, end, max_inclusive=False, limit=count)
    else:
        pairs = snapshot.items(resume, end, min_inclusive=False, max_inclusive=False, limit=count)
    return pairs, (pairs[-1][0] if len(pairs) == count and pairs else None)


class DBSnapshot:
    """``DB.snapshot()``; see the module docstring."""

    __slots__ = ("snapshot",)

    def __init__(self, snapshot: Snapshot) -> None:
        # The store's snapshot (store/snapshot_api.py).
        self.snapshot = snapshot

    def get(self, key: bytes) -> bytes | None:
        """The value at the snapshot; None if absent or expired then."""
        if type(key) is not bytes:
            check_key(key)
        return self.snapshot.get(key)

    def exists(self, key: bytes) -> bool:
        return self.get(key) is not None

    def scan(
        self, start: bytes | None = None, end: bytes | None = None, limit: int | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """As ``DB.scan``, at the snapshot's point in time."""
        check_scan(start, end, limit)
        return self._scan(start, end, limit, reverse)

    def _scan(
        self, start: bytes | None, end: bytes | None, limit: int | None, reverse: bool
    ) -> Iterator[tuple[bytes, bytes]]:
        remaining = limit
        resume: bytes | None = None
        while remaining is None or remaining > 0:
            count = SCAN_PAGE_KEYS if remaining is None else min(remaining, SCAN_PAGE_KEYS)
            pairs, resume = snapshot_page(self.snapshot, start, end, reverse, resume, count)
            yield from pairs
            if remaining is not None:
                remaining -= len(pairs)
            if resume is None:
                return

    def release(self) -> None:
        self.snapshot.release()

    def __enter__(self) -> DBSnapshot:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.release()
