"""KEYS on a snapshot (commands/snapshot_keys.py) against the exact answer:
the writes of keys_writes.py (the table walk's model's: inserts, deletes,
re-inserts, overwrites, resizes, rehash steps, FLUSHes, hash updates, TTLs
that run out) between slices, one unit of work per slice. The reply must be
exactly the keys live (and matching) when the call started, each once,
whatever ran between slices."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_kv.commands.keys import key_predicate
from trio_kv.commands.snapshot_keys import SnapshotKeys

from .keys_writes import KEY_SPACE, WRITES, KeysDriver, small_units


@pytest.fixture(autouse=True)
def one_unit_a_slice(monkeypatch):
    small_units(monkeypatch)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    initial=st.integers(0, KEY_SPACE),
    ttl_every=st.integers(2, 7),
    writes=WRITES,
    pattern=st.sampled_from([b"*", b"k1*", b"*3?"]),
)
def test_keys_on_a_snapshot_is_exact(initial, ttl_every, writes, pattern):
    driver = KeysDriver(initial=initial, ttl_every=ttl_every)
    keyspace = driver.keyspace
    matches = key_predicate(pattern)
    expected = set(driver.present) if matches is None else {key for key in driver.present if matches(key)}
    work = SnapshotKeys(keyspace, matches)
    slices = iter(writes)
    while not work.step(0):
        for action, n in next(slices, []):
            driver.apply(action, n)
    found = work.reply()
    assert isinstance(found, list)
    assert len(found) == len(set(found)), "a key was returned twice"
    assert set(found) == expected
    # The call's snapshot is gone: the next write drops its log.
    keyspace.set(b"after", b"x")
    assert keyspace.undo_log is None
