"""KEYS on a snapshot (commands/snapshot_keys.py) against the exact answer:
the same writes as test_keys_slices_model.py (inserts, deletes,
re-inserts, overwrites, resizes, rehash steps) plus FLUSHes, hash updates
and TTLs that run out between slices, one unit of work per slice. The reply
must be exactly the keys live (and matching) when the call started, each
once, whatever ran between slices."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_kv.commands import slicing, snapshot_keys
from trio_kv.commands.hash_value import HashUpdate
from trio_kv.commands.keys import key_predicate
from trio_kv.commands.snapshot_keys import SnapshotKeys
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


def _key(i: int) -> bytes:
    return b"k%d" % i if i else b""  # the empty key is a key too


@pytest.fixture(autouse=True)
def small_units(monkeypatch):
    monkeypatch.setattr(slicing, "KEYS_SLICE_SLOTS", 8)
    monkeypatch.setattr(slicing, "KEYS_SLICE_INDEX_SLOTS", 8)
    monkeypatch.setattr(slicing, "DEDUPE_SLICE_KEYS", 16)
    monkeypatch.setattr(snapshot_keys, "FILTER_SLICE_KEYS", 16)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    initial=st.integers(0, KEY_SPACE),
    ttl_every=st.integers(2, 7),
    writes=st.lists(st.lists(WRITE, max_size=3), max_size=150),
    pattern=st.sampled_from([b"*", b"k1*", b"*3?"]),
)
def test_keys_on_a_snapshot_is_exact(initial, ttl_every, writes, pattern):
    now = [1_000]
    keyspace = Keyspace(clock_ms=lambda: now[0])
    for i in range(initial):
        # Some keys have a TTL that the "time" writes run out.
        keyspace.set(_key(i), b"v", now[0] + 10 * (i % 20) + 5 if i % ttl_every == 0 else None)
    matches = key_predicate(pattern)
    expected = {key for key in (_key(i) for i in range(initial)) if keyspace.exists(key)}
    if matches is not None:
        expected = {key for key in expected if matches(key)}
    work = SnapshotKeys(keyspace, matches)
    slices = iter(writes)
    grown = 0
    while not work.step(0):
        for action, n in next(slices, []):
            if action == "set":
                keyspace.set(_key(n), b"w")
            elif action == "delete":
                keyspace.delete(_key(n))
            elif action == "expire":
                keyspace.set_expire_at(_key(n), now[0] + 1)
            elif action in ("bulk_set", "bulk_set_reversed"):
                order = range(n, min(KEY_SPACE, n + 100))
                for i in reversed(order) if action == "bulk_set_reversed" else order:
                    keyspace.set(_key(i), b"b")
            elif action == "bulk_delete":
                for i in range(n, min(KEY_SPACE, n + 150)):
                    keyspace.delete(_key(i))
            elif action == "grow":
                for _ in range(n):
                    install = keyspace.install_version
                    while keyspace.install_version == install:
                        keyspace.set(b"g%d" % grown, b"g")
                        grown += 1
            elif action == "churn":
                run = [_key(i) for i in range(n, min(KEY_SPACE, n + 40))]
                for key in run:
                    keyspace.delete(key)
                for key in run:
                    keyspace.set(key, b"c")
            elif action == "shrink":
                for i in range(n, KEY_SPACE):
                    keyspace.delete(_key(i))
            elif action == "flush":
                keyspace.detach_all() if n else keyspace.clear()
            elif action == "hash":
                keyspace.delete(_key(n))
                keyspace.update(_key(n), HashUpdate([(b"f", b"v")]))
            elif action == "time":
                now[0] += n
                keyspace.active_expire_step(5)
            else:
                keyspace.rehash_step(n)
    found = work.reply()
    assert isinstance(found, list)
    assert len(found) == len(set(found)), "a key was returned twice"
    assert set(found) == expected
    # The call's snapshot is gone: the next write drops its log.
    keyspace.set(b"after", b"x")
    assert keyspace.undo_log is None
