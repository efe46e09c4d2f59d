"""KEYS run in slices (commands/slicing.py) against a model of which keys
were present for the whole call: random inserts, deletes, re-inserts,
overwrites, TTLs that run out, rehash steps and flush-free resizes run
between slices, with one unit of work per slice. Every key present (and
unexpired) from the first slice to the last must come back exactly once;
nothing comes back twice; nothing comes back that was never present."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_kv.commands import slicing
from trio_kv.commands.keys import key_predicate
from trio_kv.commands.slicing import KeysSlices, ScanSlices
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
)


def _key(i: int) -> bytes:
    return b"k%d" % i if i else b""  # the empty key is a key too


@pytest.fixture(autouse=True)
def small_units(monkeypatch):
    monkeypatch.setattr(slicing, "KEYS_SLICE_SLOTS", 8)
    monkeypatch.setattr(slicing, "KEYS_SLICE_INDEX_SLOTS", 8)
    monkeypatch.setattr(slicing, "DEDUPE_SLICE_KEYS", 16)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    initial=st.integers(0, KEY_SPACE),
    mid_resize=st.booleans(),
    writes=st.lists(st.lists(WRITE, max_size=3), max_size=150),
    scan=st.booleans(),
    pattern=st.sampled_from([b"*", b"k1*", b"*3?"]),
)
def test_every_key_present_throughout_returned_exactly_once(initial, mid_resize, writes, scan, pattern):
    now = [1_000]
    keyspace = Keyspace(clock_ms=lambda: now[0])
    for i in range(initial):
        keyspace.set(_key(i), b"v")
    present = {_key(i) for i in range(initial)}
    keyspace.rehash_step(1 << 30)
    if mid_resize:
        # Start the walk with a resize in progress (extra keys until one starts).
        install = keyspace.install_version
        extra = 0
        while keyspace.install_version == install:
            keyspace.set(b"x%d" % extra, b"v")
            present.add(b"x%d" % extra)
            extra += 1
    throughout = set(present)
    ever = set(present)
    matches = key_predicate(pattern)
    if scan:
        work = ScanSlices(keyspace, 0, 10**9, 10, lambda cursor, keys: keys)
    else:
        work = KeysSlices(keyspace, matches)
    slices = iter(writes)

    def gone(key: bytes) -> None:
        # A key deleted at any moment (even re-inserted in the same batch of
        # writes) was not present for the whole call.
        present.discard(key)
        throughout.discard(key)

    grown = fresh = 0
    while not work.step(0):
        for action, n in next(slices, []):
            if action == "set":
                keyspace.set(_key(n), b"w")
                present.add(_key(n))
            elif action == "delete":
                keyspace.delete(_key(n))
                gone(_key(n))
            elif action == "expire" and _key(n) in present:
                keyspace.set_expire_at(_key(n), now[0] + 1)
                now[0] += 2  # it (and any earlier such key) is expired now
                gone(_key(n))
            elif action == "bulk_set":
                for i in range(n, min(KEY_SPACE, n + 100)):
                    keyspace.set(_key(i), b"b")
                    present.add(_key(i))
            elif action == "bulk_set_reversed":
                # Re-inserts in another order land in other slots.
                for i in reversed(range(n, min(KEY_SPACE, n + 100))):
                    keyspace.set(_key(i), b"r")
                    present.add(_key(i))
            elif action == "bulk_delete":
                for i in range(n, min(KEY_SPACE, n + 150)):
                    keyspace.delete(_key(i))
                    gone(_key(i))
            elif action == "grow":
                # New keys until n resizes have started.
                for _ in range(n):
                    install = keyspace.install_version
                    while keyspace.install_version == install:
                        key = b"g%d" % grown
                        grown += 1
                        keyspace.set(key, b"g")
                        present.add(key)
            elif action == "churn":
                # Delete a run of keys, insert fresh keys, re-insert the run:
                # the fresh keys take the freed cells, the run goes further.
                run = [_key(i) for i in range(n, min(KEY_SPACE, n + 40))]
                for key in run:
                    keyspace.delete(key)
                    gone(key)
                for _ in range(len(run)):
                    key = b"f%d" % fresh
                    fresh += 1
                    keyspace.set(key, b"f")
                    present.add(key)
                for key in run:
                    keyspace.set(key, b"c")
                    present.add(key)
            elif action == "shrink":
                # Keep about n keys: the table shrinks, with no insert.
                for key in list(present)[n:]:
                    keyspace.delete(key)
                    gone(key)
            else:
                keyspace.rehash_step(n)
            throughout &= present
            ever |= present
    found = work.reply()
    assert len(found) == len(set(found)), "a key was returned twice"
    if scan or matches is None:
        assert throughout <= set(found) <= ever
    else:
        assert {key for key in throughout if matches(key)} <= set(found) <= {key for key in ever if matches(key)}
