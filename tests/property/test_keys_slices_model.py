"""KEYS run in slices (commands/slicing.py) against a model of which keys
were present for the whole call: the writes of keys_writes.py (inserts,
deletes, re-inserts, overwrites, TTLs that run out, rehash steps, resizes,
FLUSHes, hash updates) between slices, one unit of work per slice. Every
key present (and unexpired) from the first slice to the last must come
back exactly once; nothing comes back twice; nothing comes back that was
never present."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_kv.commands.keys import key_predicate
from trio_kv.commands.slicing import KeysSlices, ScanSlices

from .keys_writes import KEY_SPACE, WRITES, KeysDriver, small_units


@pytest.fixture(autouse=True)
def one_unit_a_slice(monkeypatch):
    small_units(monkeypatch)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    initial=st.integers(0, KEY_SPACE),
    mid_resize=st.booleans(),
    writes=WRITES,
    scan=st.booleans(),
    pattern=st.sampled_from([b"*", b"k1*", b"*3?"]),
)
def test_every_key_present_throughout_returned_exactly_once(initial, mid_resize, writes, scan, pattern):
    driver = KeysDriver(initial=initial)
    keyspace = driver.keyspace
    keyspace.rehash_step(1 << 30)
    if mid_resize:
        # Start the walk with a resize in progress (extra keys until one starts).
        driver.apply("grow", 1)
    throughout = set(driver.present)
    ever = set(driver.present)
    # A key gone at any moment (even stored again in the same batch of
    # writes) was not present for the whole call.
    driver.on_gone = throughout.discard
    matches = key_predicate(pattern)
    if scan:
        work = ScanSlices(keyspace, 0, 10**9, 10, lambda cursor, keys: keys)
    else:
        work = KeysSlices(keyspace, matches)
    slices = iter(writes)
    while not work.step(0):
        for action, n in next(slices, []):
            driver.apply(action, n)
            throughout &= driver.present
            ever |= driver.present
    found = work.reply()
    assert len(found) == len(set(found)), "a key was returned twice"
    if scan or matches is None:
        assert throughout <= set(found) <= ever
    else:
        assert {key for key in throughout if matches(key)} <= set(found) <= {key for key in ever if matches(key)}
