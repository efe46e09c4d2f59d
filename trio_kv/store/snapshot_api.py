"""``Snapshot``: a snapshot for code that holds no store lock (the embedded
library, tests, a transaction's reads).

Rules kept here:

* Each call takes the store's read lock for itself (``changed_since`` too),
  so it must not be called with the store lock held: code that holds it
  (a command handler, a transaction's commit under the write lock) uses
  the ``view`` (``store.snapshots.SnapshotView``) directly.
* ``release`` takes no lock; a ``with`` block releases on exit.
* Reads of a released or expired snapshot raise ``SnapshotExpired``.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING

from ..commands.values import WrongType
from .growable import Growable
from .snapshots import SnapshotView

if TYPE_CHECKING:
    from .rwlock import ReadWriteLock


def string_bytes(value: object) -> bytes:
    """A string value read at a snapshot as ``bytes``; ``WrongType`` for a typed one."""
    if type(value) is bytes:
        return value
    if type(value) is Growable:
        return value.tobytes()
    raise WrongType


class Snapshot:
    __slots__ = ("view", "_lock")

    def __init__(self, view: SnapshotView, lock: ReadWriteLock) -> None:
        # The lock-free reader (store/snapshots.py); use it with the lock held.
        self.view = view
        self._lock = lock

    @property
    def at_ms(self) -> int:
        """The keyspace clock when it was opened (TTLs are judged at it)."""
        return self.view.at_ms

    def get(self, key: bytes) -> bytes | None:
        """The value at the snapshot; None if absent or expired then;
        ``WrongType`` if the key held a typed value."""
        with self._lock.read_locked():
            return self.view.get(key)

    def range(
        self, min_key: bytes | None, max_key: bytes | None, *,
        min_inclusive: bool = True, max_inclusive: bool = True, reverse: bool = False, limit: int | None = None,
    ) -> list[bytes]:
        """The keys in range visible at the snapshot, in order, at most
        ``limit`` (None bounds are open). One lock hold: page with
        ``limit`` and an exclusive bound for big ranges."""
        with self._lock.read_locked():
            return self.view.range(
                min_key, max_key, min_inclusive=min_inclusive, max_inclusive=max_inclusive, reverse=reverse, limit=limit
            )

    def items(
        self, min_key: bytes | None, max_key: bytes | None, *,
        min_inclusive: bool = True, max_inclusive: bool = True, reverse: bool = False, limit: int | None = None,
    ) -> list[tuple[bytes, bytes]]:
        """``range`` with the values at the snapshot, in one lock hold
        (``WrongType`` if a key in it held a typed value)."""
        with self._lock.read_locked():
            pairs = self.view.items(
                min_key, max_key, min_inclusive=min_inclusive, max_inclusive=max_inclusive, reverse=reverse, limit=limit
            )
            return [(key, string_bytes(value)) for key, value in pairs]

    def changed_since(self, keys: Iterable[bytes]) -> bool:
        """Whether any of ``keys`` was written after the snapshot."""
        with self._lock.read_locked():
            return self.view.changed_since(keys)

    def changed_in_range(
        self, min_key: bytes | None, max_key: bytes | None, *, min_inclusive: bool = True, max_inclusive: bool = True,
    ) -> bool:
        """Whether any key in the range was written after the snapshot."""
        with self._lock.read_locked():
            return self.view.changed_in_range(min_key, max_key, min_inclusive=min_inclusive, max_inclusive=max_inclusive)

    def release(self) -> None:
        self.view.release()

    def __enter__(self) -> Snapshot:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.release()
