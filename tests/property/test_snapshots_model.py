"""Snapshots (store/snapshots.py) against the point-in-time state they must keep.

Hypothesis interleaves writes of every kind the keyspace has (SET with and
without TTL, DEL, EXPIRE, PERSIST, RENAME, APPEND growing a value in
place, SETRANGE, hash updates, FLUSH in both forms, the active expiry
sweep, clock advances) with opening, reading and releasing snapshots. When
a snapshot opens, the test records what every key reads then; every later
read through the snapshot (``get``/``value``, ``range`` both ways) must give
exactly that, TTLs judged at the snapshot's time, and ``changed_since``
must report every key whose state differs now. After releases, writes
drop the logs: with every snapshot gone a write pays nothing again.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from trio_kv.commands.hash_value import HashUpdate, HashValue
from trio_kv.commands.values import WrongType
from trio_kv.store.keyspace import Keyspace
from trio_kv.store.snapshots import SnapshotView
from trio_kv.store.sorted_index import SortedKeyIndex

UNIVERSE = [bytes([a]) + bytes([b]) for a in b"ab" for b in b"xyz"] + [b"a", b"b"]
KEYS = st.sampled_from(UNIVERSE)
VALUES = st.binary(max_size=6)


def read(keyspace: Keyspace, key: bytes) -> object:
    """What a key reads now: bytes, a hash's fields, or None."""
    try:
        return keyspace.get(key)
    except WrongType:
        value = keyspace.get_typed(key, HashValue)
        return None if value is None else dict(value.fields)


def snapshot_read(view: SnapshotView, key: bytes) -> object:
    value = view.value(key)
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, HashValue):
        return dict(value.fields)
    return value.tobytes()  # a grown string


class SnapshotModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now_ms = 1_000_000
        self.keyspace = Keyspace(clock_ms=lambda: self.now_ms)
        self.keyspace.attach_sorted_index(SortedKeyIndex())  # ranges read it
        # Open snapshots and what every key read when each opened.
        self.open: list[tuple[SnapshotView, dict[bytes, object]]] = []

    # --- writes -------------------------------------------------------------

    @rule(key=KEYS, value=VALUES, ttl_ms=st.none() | st.integers(1, 300), keep_ttl=st.booleans())
    def set(self, key, value, ttl_ms, keep_ttl):
        self.keyspace.set(key, value, None if ttl_ms is None else self.now_ms + ttl_ms, keep_ttl=keep_ttl)

    @rule(key=KEYS)
    def delete(self, key):
        self.keyspace.delete(key)

    @rule(key=KEYS, ttl_ms=st.integers(-10, 300))
    def expire(self, key, ttl_ms):
        self.keyspace.set_expire_at(key, self.now_ms + ttl_ms)

    @rule(key=KEYS)
    def persist(self, key):
        self.keyspace.persist(key)

    @rule(source=KEYS, destination=KEYS)
    def rename(self, source, destination):
        if source != destination and self.keyspace.exists(source):
            self.keyspace.rename(source, destination)

    @rule(key=KEYS, data=st.binary(min_size=1, max_size=40))
    def append(self, key, data):
        try:
            self.keyspace.append(key, data * 3)  # past SMALL_VALUE_BYTES: grown in place
        except WrongType:
            pass

    @rule(key=KEYS, offset=st.integers(0, 20), data=st.binary(min_size=1, max_size=4))
    def setrange(self, key, offset, data):
        try:
            self.keyspace.setrange(key, offset, data)
        except WrongType:
            pass

    @rule(key=KEYS, field=st.sampled_from([b"f", b"g"]), value=VALUES, delete=st.booleans())
    def hash_update(self, key, field, value, delete):
        update = HashUpdate(deleted=[field]) if delete else HashUpdate([(field, value)])
        try:
            self.keyspace.update(key, update)
        except WrongType:
            pass

    @rule(detach=st.booleans())
    def flush(self, detach):
        if detach:
            self.keyspace.detach_all()
        else:
            self.keyspace.clear()

    @rule()
    def sweep(self):
        self.keyspace.active_expire_step(20)

    @rule(ms=st.integers(1, 200))
    def advance(self, ms):
        self.now_ms += ms

    # --- snapshots ------------------------------------------------------------

    @rule()
    def open_snapshot(self):
        view = self.keyspace.snapshots.open()
        self.open.append((view, {key: read(self.keyspace, key) for key in UNIVERSE}))

    @precondition(lambda self: self.open)
    @rule(data=st.data())
    def release(self, data):
        view, _ = self.open.pop(data.draw(st.integers(0, len(self.open) - 1)))
        view.release()

    @precondition(lambda self: self.open)
    @rule(data=st.data(), low=KEYS, high=KEYS, min_inclusive=st.booleans(), max_inclusive=st.booleans())
    def range(self, data, low, high, min_inclusive, max_inclusive):
        view, seen = self.open[data.draw(st.integers(0, len(self.open) - 1))]
        expected = sorted(
            key for key, value in seen.items()
            if value is not None and (low < key if not min_inclusive else low <= key)
            and (key < high if not max_inclusive else key <= high)
        )
        got = view.range(low, high, min_inclusive=min_inclusive, max_inclusive=max_inclusive)
        assert got == expected
        assert view.range(low, high, min_inclusive=min_inclusive, max_inclusive=max_inclusive, reverse=True) == expected[::-1]
        assert view.range(None, None, limit=2) == sorted(k for k, v in seen.items() if v is not None)[:2]
        assert view.changed_in_range(low, high, min_inclusive=min_inclusive, max_inclusive=max_inclusive) or all(
            read(self.keyspace, key) == seen[key] for key in UNIVERSE
            if (low < key if not min_inclusive else low <= key) and (key < high if not max_inclusive else key <= high)
        )

    @invariant()
    def snapshots_read_their_time(self):
        for view, seen in self.open:
            for key in UNIVERSE:
                assert snapshot_read(view, key) == seen[key], key
                if read(self.keyspace, key) != seen[key]:
                    assert view.changed_since([key]), key

    @invariant()
    def nothing_kept_without_snapshots(self):
        if not self.open:
            # The next write compacts: afterwards no log is left.
            self.keyspace.snapshots.compact()
            assert self.keyspace.undo_log is None
            assert self.keyspace.snapshots.undo_bytes == 0


SnapshotModel.TestCase.settings = settings(max_examples=300, stateful_step_count=60, deadline=None)
test_snapshots_model = SnapshotModel.TestCase
