"""The writes the sliced-KEYS models run between slices, and a driver that
applies them to a Keyspace and keeps the model: which keys are live now.

Shared by test_keys_slices_model.py (the table walk's guarantee),
test_snapshot_keys_model.py (KEYS on a snapshot: exact) and
test_range_keys_model.py (the sorted index walk with ``exact=True``):
the same inserts, deletes, re-inserts, overwrites, TTLs set and run out,
resizes, rehash steps, FLUSHes and hash updates, one unit of work per
slice (``small_units``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest
from hypothesis import strategies as st

from trio_kv.commands import ordered_range, slicing, snapshot_keys
from trio_kv.commands.hash_value import HashUpdate
from trio_kv.store.keyspace import Keyspace

KEY_SPACE = 400

WRITE = st.one_of(
    st.tuples(st.just("set"), st.integers(0, KEY_SPACE - 1)),
    st.tuples(st.just("delete"), st.integers(0, KEY_SPACE - 1)),
    st.tuples(st.just("expire"), st.integers(0, KEY_SPACE - 1)),
    st.tuples(st.just("bulk_set"), st.integers(0, KEY_SPACE - 1)),
    st.tuples(st.just("bulk_set_reversed"), st.integers(0, KEY_SPACE - 1)),
    st.tuples(st.just("bulk_delete"), st.integers(0, KEY_SPACE - 1)),
    st.tuples(st.just("rehash"), st.integers(1, 64)),
    st.tuples(st.just("grow"), st.integers(1, 2)),
    st.tuples(st.just("churn"), st.integers(0, KEY_SPACE - 1)),
    st.tuples(st.just("shrink"), st.integers(0, 20)),
    st.tuples(st.just("flush"), st.integers(0, 1)),
    st.tuples(st.just("hash"), st.integers(0, KEY_SPACE - 1)),
    st.tuples(st.just("time"), st.integers(1, 30)),
)
# Lists of writes: one list runs between two slices.
WRITES = st.lists(st.lists(WRITE, max_size=3), max_size=150)


def key(i: int) -> bytes:
    return b"k%d" % i if i else b""  # the empty key is a key too


def small_units(monkeypatch: pytest.MonkeyPatch, *, range_keys: int | None = None) -> None:
    """One unit of work per slice: a few slots, keys or index keys."""
    monkeypatch.setattr(slicing, "KEYS_SLICE_SLOTS", 8)
    monkeypatch.setattr(slicing, "KEYS_SLICE_INDEX_SLOTS", 8)
    monkeypatch.setattr(slicing, "DEDUPE_SLICE_KEYS", 16)
    monkeypatch.setattr(snapshot_keys, "FILTER_SLICE_KEYS", 16)
    if range_keys is not None:
        monkeypatch.setattr(ordered_range, "RANGE_SLICE_KEYS", range_keys)


class KeysDriver:
    """A keyspace with a clock, and ``present``: the keys live in it now
    (stored and not expired), kept by every write. ``on_gone`` hears of
    each key that stops being live (deleted, flushed, expired), even one
    stored again at once."""

    def __init__(self, *, initial: int, ttl_every: int | None = None) -> None:
        self.now_ms = 1_000
        self.keyspace = Keyspace(clock_ms=lambda: self.now_ms)
        # key -> when it expires, for the live keys with a TTL.
        self._expires: dict[bytes, int] = {}
        self.present: set[bytes] = set()
        self.on_gone: Callable[[bytes], None] = lambda key: None
        self._grown = self._fresh = 0
        for i in range(initial):
            # Some keys have a TTL that the "time" writes run out.
            at_ms = self.now_ms + 10 * (i % 20) + 5 if ttl_every and i % ttl_every == 0 else None
            self._set(key(i), b"v", at_ms)

    def _set(self, name: bytes, value: bytes, at_ms: int | None = None) -> None:
        self.keyspace.set(name, value, at_ms)
        self.present.add(name)
        if at_ms is None:
            self._expires.pop(name, None)
        else:
            self._expires[name] = at_ms

    def _gone(self, names: Iterable[bytes]) -> None:
        for name in list(names):
            self.present.discard(name)
            self._expires.pop(name, None)
            self.on_gone(name)

    def _delete(self, name: bytes) -> None:
        self.keyspace.delete(name)
        self._gone([name])

    def apply(self, action: str, n: int) -> None:
        keyspace = self.keyspace
        if action == "set":
            self._set(key(n), b"w")
        elif action == "delete":
            self._delete(key(n))
        elif action == "expire":
            if key(n) in self.present:
                keyspace.set_expire_at(key(n), self.now_ms + 1)
                self._expires[key(n)] = self.now_ms + 1
        elif action in ("bulk_set", "bulk_set_reversed"):
            # Re-inserts in another order land in other slots.
            order = range(n, min(KEY_SPACE, n + 100))
            for i in reversed(order) if action == "bulk_set_reversed" else order:
                self._set(key(i), b"b")
        elif action == "bulk_delete":
            for i in range(n, min(KEY_SPACE, n + 150)):
                self._delete(key(i))
        elif action == "grow":
            # New keys until n resizes have started.
            for _ in range(n):
                install = keyspace.install_version
                while keyspace.install_version == install:
                    self._set(b"g%d" % self._grown, b"g")
                    self._grown += 1
        elif action == "churn":
            # Delete a run of keys, insert fresh keys, re-insert the run:
            # the fresh keys take the freed cells, the run goes further.
            run = [key(i) for i in range(n, min(KEY_SPACE, n + 40))]
            for name in run:
                self._delete(name)
            for _ in range(len(run)):
                self._set(b"f%d" % self._fresh, b"f")
                self._fresh += 1
            for name in run:
                self._set(name, b"c")
        elif action == "shrink":
            # Keep about n keys: the table shrinks, with no insert.
            for name in sorted(self.present)[n:]:
                self._delete(name)
        elif action == "flush":
            keyspace.detach_all() if n else keyspace.clear()
            self._gone(self.present)
        elif action == "hash":
            self._delete(key(n))
            keyspace.update(key(n), HashUpdate([(b"f", b"v")]))
            self.present.add(key(n))
        elif action == "time":
            self.now_ms += n
            self._gone([name for name, at_ms in self._expires.items() if at_ms <= self.now_ms])
            keyspace.active_expire_step(5)
        elif action == "rehash":
            keyspace.rehash_step(n)
        else:
            raise AssertionError(f"unknown write {action!r}")
