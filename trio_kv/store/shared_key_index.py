"""``SharedKeyIndex``: the sorted key index that shares the table's key objects.

The ordered index for the object table (``--table objects``,
store/hashtable.py), where every key is a ``bytes`` object the table holds
anyway: a ``sortedcontainers.SortedList`` of those same objects costs about
8-9 bytes a key (the list's slots and its B-tree of sublists, measured in
bench/sorted_index_bench.py). The packed table (``--table compact``) keeps no
key objects, so with it a SortedList would hold its own copy of each key
(about 65 bytes a key): there the packed ``SortedKeyIndex``
(store/sorted_index.py, about 17 bytes a key, keys included) is used. The
store picks the index that matches its table (``index_for_table``).

Same interface and the same rules as ``SortedKeyIndex`` (its module docstring
has them: exactly the keys of the value table at every lock release, mutated
under the write lock only, an ``irange`` iterator valid inside one lock hold,
loading rebuilds it once).

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


class SharedKeyIndex:
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
