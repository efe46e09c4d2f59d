"""Keys per hash slot (cluster mode: ``Keyspace.count_keys_per_slot``)
stay equal to a recount of the stored keys whatever the writes: SET with
and without TTL, DEL, APPEND, SETRANGE, RENAME, hash updates that create
and empty a value, log replays (PATCH, UPDATE), expiry (a key whose time
ran out counts until it is removed), active sweeps and FLUSH."""

from __future__ import annotations

from collections import Counter

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from trio_kv.cluster.slots import SLOT_COUNT, key_slot
from trio_kv.commands.hash_value import HashUpdate
from trio_kv.commands.values import WrongType
from trio_kv.store.keyspace import Keyspace

# Few distinct keys, some sharing a hash tag, so operations collide.
KEYS = st.sampled_from([b"a", b"b", b"{t}1", b"{t}2", b"c{t}", b"", b"{}x", b"\xff"])
VALUES = st.binary(max_size=4)


class SlotCounts(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now_ms = 1_000_000
        self.keyspace = Keyspace(clock_ms=lambda: self.now_ms)
        self.keyspace.set(b"before", b"counted when counting starts")
        self.keyspace.count_keys_per_slot()

    @rule(key=KEYS, value=VALUES, ttl_ms=st.none() | st.integers(1, 50))
    def set(self, key, value, ttl_ms):
        self.keyspace.set(key, value, None if ttl_ms is None else self.now_ms + ttl_ms)

    @rule(key=KEYS)
    def delete(self, key):
        self.keyspace.delete(key)

    @rule(key=KEYS, data=VALUES, offset=st.integers(0, 6))
    def append_or_setrange(self, key, data, offset):
        try:
            if offset:
                self.keyspace.setrange(key, offset, data or b"x")
            else:
                self.keyspace.append(key, data)
        except WrongType:
            pass

    @rule(source=KEYS, destination=KEYS)
    def rename(self, source, destination):
        if source != destination and self.keyspace.exists(source):
            self.keyspace.rename(source, destination)

    @rule(key=KEYS, field=st.sampled_from([b"f", b"g"]), delete=st.booleans())
    def hash_update(self, key, field, delete):
        update = HashUpdate(deleted=[field]) if delete else HashUpdate(pairs=[(field, b"v")])
        try:
            self.keyspace.update(key, update)
        except WrongType:
            pass

    @rule(key=KEYS, created=st.booleans())
    def replay_update(self, key, created):
        self.keyspace.apply_update(key, HashUpdate(pairs=[(b"f", b"v")]), created, None)

    @rule(key=KEYS, length=st.integers(0, 3), data=VALUES)
    def replay_patch(self, key, length, data):
        self.keyspace.apply_patch(key, length, 1, data, None)

    @rule(key=KEYS, ttl_ms=st.integers(-5, 50))
    def expire(self, key, ttl_ms):
        self.keyspace.set_expire_at(key, self.now_ms + ttl_ms)

    @rule(ms=st.integers(0, 60))
    def advance(self, ms):
        self.now_ms += ms

    @rule(checks=st.integers(1, 20))
    def sweep(self, checks):
        self.keyspace.active_expire_step(checks)

    @rule(detach=st.booleans())
    def flush(self, detach):
        if detach:
            self.keyspace.detach_all()
        else:
            self.keyspace.clear()

    @invariant()
    def counts_equal_a_recount(self):
        stored = Counter(key_slot(key) for key, _value in self.keyspace._values.items())
        counts = [self.keyspace.keys_in_slot(slot) for slot in range(SLOT_COUNT)]
        assert counts == [stored.get(slot, 0) for slot in range(SLOT_COUNT)]


SlotCounts.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
test_slot_counts = SlotCounts.TestCase


def test_not_counted_without_cluster_mode() -> None:
    keyspace = Keyspace()
    keyspace.set(b"foo", b"v")
    assert keyspace.keys_in_slot(key_slot(b"foo")) == 0
