"""``SortedKeyIndex``: every stored key in byte order, beside the hash table.

The hash table answers "this key's value" in O(1) but keeps keys in hash
order; ordered reads (KRANGE, the line protocol's RANGE and ``KEYS prefix``,
HTTP ``/range``, snapshot ranges, the library's ``scan``) walk this index
instead. It is a ``sortedcontainers.SortedList`` of the keys' own ``bytes``
objects (no copy: about 8-9 bytes a key for the list's slots and its B-tree
of sublists, measured in bench/sorted_index_bench.py).

Rules kept here:

* **Exactly the keys of the value table.** The keyspace keeps it
  (``Keyspace.attach_sorted_index``): it adds a key wherever a key enters
  the value table and discards it wherever one leaves it (delete, expiry
  lazy or by the sweep, RENAME, a value left empty, FLUSHALL, a replay),
  the same points that move the per-slot counts. That is where every
  mutation path meets, the paths the effects sink deliberately does not
  report (expiry) included, and an overwrite costs nothing. So
  ``len(index) == DBSIZE`` at every lock release, and, like DBSIZE, the
  index holds a key whose time ran out until it is removed: readers skip
  such keys (``Keyspace.is_expired_key``). In cluster mode a tombstone is
  not a key (the keyspace holds only live winners; tombstones live in
  ``store/versions.py``), so it is never in the index.
* **Locks are the keyspace's.** Mutated only under the store's write lock
  (by the keyspace), read under either lock. An iterator from ``irange``
  must not outlive the lock hold it was made in (a write between two of
  its steps may skip or repeat keys): a reader that stops between slices
  resumes with a new ``irange`` from the last key it returned, exclusive.
* **Loading builds it once.** While a load replays a log or snapshot
  (``Keyspace.sorted_index_paused``), the keyspace does not feed it; it is
  rebuilt from the table afterwards in one sort (about 3x cheaper than a
  million single inserts).

Pure code: no trio, no IO.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from sortedcontainers import SortedList

# What one key costs the index beyond the key itself: its slot in a
# sublist (8 bytes) plus the B-tree's share (a sublist header per ~1,000
# keys, the maxes and the positional index), about 1 byte: measured 8-9
# bytes a key (bench/sorted_index_bench.py). INFO reports this estimate.
INDEX_BYTES_PER_KEY = 9


class SortedKeyIndex:
    """See the module docstring."""

    __slots__ = ("_keys", "add", "discard")
    # Add a key not in the index / remove a key if present (write lock).
    add: Callable[[bytes], None]
    discard: Callable[[bytes], None]

    def __init__(self, keys: Iterable[bytes] = ()) -> None:
        self._keys: SortedList[bytes] = SortedList()
        self.rebuild(keys)

    def rebuild(self, keys: Iterable[bytes]) -> None:
        """Replace the contents with ``keys`` (distinct), sorted once."""
        self._keys = SortedList(keys)
        # The keyspace calls these on every new and removed key: bound
        # methods of the list itself, so a write pays no wrapper call.
        self.add = self._keys.add
        self.discard = self._keys.discard

    def clear(self) -> None:
        self._keys.clear()

    def detach(self) -> list[list[object]]:
        """Empty the index in O(1) and return its old storage (lists of
        keys) for the caller to free a chunk at a time without the lock
        (FLUSHALL's ``FreeSlices``): dropping a million-key list at once
        would hold the write lock for milliseconds."""
        old = self._keys
        self.rebuild(())
        # SortedList keeps its keys in ``_lists``, sublists of ~1,000 keys
        # (sortedcontainers 2.x): nothing else refers to them once the list
        # object is dropped.
        return list(old._lists)  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, bytes) and key in self._keys

    def irange(
        self,
        min_key: bytes | None,
        max_key: bytes | None,
        *,
        min_inclusive: bool = True,
        max_inclusive: bool = True,
        reverse: bool = False,
    ) -> Iterator[bytes]:
        """The keys from ``min_key`` to ``max_key`` in byte order (None: no
        bound on that side), backwards if ``reverse``. Valid only inside the
        lock hold that made it (see the module docstring)."""
        return self._keys.irange(min_key, max_key, (min_inclusive, max_inclusive), reverse)

    def bytes_estimate(self) -> int:
        """What the index costs beyond the keys (INFO sorted_index_bytes)."""
        return len(self._keys) * INDEX_BYTES_PER_KEY
