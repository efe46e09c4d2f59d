"""The keyspace against a plain dict model, through many table resizes.

Hypothesis drives SET (with and without TTL), DEL, reads, clock advances and
active-expiry sweeps; after every step the keyspace must agree with the
model on every key, on the key count and on ``value_bytes``.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from trio_kv.store.keyspace import NO_EXPIRY, Keyspace

KEYS = st.binary(min_size=0, max_size=3)
VALUES = st.binary(max_size=8)


class KeyspaceModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now_ms = 1_000_000
        self.keyspace = Keyspace(clock_ms=lambda: self.now_ms)
        # key -> (value, expire_at_ms or None); expired entries may linger
        # in the model exactly as they may in the keyspace until swept.
        self.model: dict[bytes, tuple[bytes, int | None]] = {}

    def _live(self) -> dict[bytes, bytes]:
        return {
            key: value
            for key, (value, at_ms) in self.model.items()
            if at_ms is None or at_ms > self.now_ms
        }

    @rule(key=KEYS, value=VALUES, ttl_ms=st.none() | st.integers(1, 500))
    def set(self, key, value, ttl_ms):
        at_ms = None if ttl_ms is None else self.now_ms + ttl_ms
        self.keyspace.set(key, value, at_ms)
        self.model[key] = (value, at_ms)

    @rule(key=KEYS)
    def delete(self, key):
        existed = key in self._live()
        assert self.keyspace.delete(key) == existed
        self.model.pop(key, None)

    @rule(key=KEYS, ttl_ms=st.integers(-10, 500))
    def expire(self, key, ttl_ms):
        existed = key in self._live()
        assert self.keyspace.set_expire_at(key, self.now_ms + ttl_ms) == existed
        if not existed:
            self.model.pop(key, None)
        elif ttl_ms <= 0:
            del self.model[key]
        else:
            self.model[key] = (self.model[key][0], self.now_ms + ttl_ms)

    @rule(key=KEYS)
    def persist(self, key):
        live = self._live()
        had_ttl = key in live and self.model[key][1] is not None
        assert self.keyspace.persist(key) == had_ttl
        if key in live:
            self.model[key] = (self.model[key][0], None)
        else:
            self.model.pop(key, None)

    @rule(ms=st.integers(0, 300))
    def advance_clock(self, ms):
        self.now_ms += ms

    @rule(checks=st.integers(1, 64))
    def sweep(self, checks):
        live_before = self._live()
        removed = self.keyspace.active_expire_step(checks)
        # A sweep may only remove expired keys; drop those from the model.
        gone = [k for k in self.model if self.keyspace._values.get(k) is None]
        assert not set(gone) & set(live_before)
        assert len(gone) == removed
        for key in gone:
            del self.model[key]

    @rule()
    def full_sweep(self):
        # Enough calls to visit every key with a TTL: afterwards nothing
        # expired remains and the key count is exact.
        for _ in range(len(self.model) + 2):
            self.keyspace.active_expire_step(8)
        self.model = {k: v for k, v in self.model.items() if v[1] is None or v[1] > self.now_ms}
        assert len(self.keyspace) == len(self.model)

    @rule()
    def clear(self):
        self.keyspace.clear()
        self.model.clear()

    @invariant()
    def agrees_with_model(self):
        live = self._live()
        for key in set(self.model) | set(live):
            assert self.keyspace.get(key) == live.get(key)
            if key in live:
                at_ms = self.model[key][1]
                expected_ttl = NO_EXPIRY if at_ms is None else at_ms - self.now_ms
                assert self.keyspace.ttl_ms(key) == expected_ttl
            else:
                assert self.keyspace.ttl_ms(key) is None
        assert dict(self.keyspace.live_items()) == live
        # Expired-but-unswept keys still count, as in Redis' DBSIZE.
        assert len(self.keyspace) == len(self.model)
        assert self.keyspace.value_bytes == sum(len(v) for v, _ in self.model.values())


TestKeyspaceModel = KeyspaceModel.TestCase
TestKeyspaceModel.settings = settings(max_examples=100, stateful_step_count=60, deadline=None)
