"""``KEYS prefix*`` on the sorted index with ``exact=True``
(commands/ordered_range.py: RESP KEYS and the line protocol's KEYS) against
the exact answer: the writes of keys_writes.py between slices, a few index
keys per slice. The reply must be exactly the keys live with the prefix when
the call started, in byte order (or reversed), whatever ran between slices; a call that
fits one slice opens no snapshot; the snapshot is freed at the end."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_kv.commands.ordered_range import RangeSlices, prefix_end
from trio_kv.store.sorted_index import SortedKeyIndex

from .keys_writes import KEY_SPACE, WRITES, KeysDriver, small_units


@pytest.fixture(autouse=True)
def one_unit_a_slice(monkeypatch):
    small_units(monkeypatch, range_keys=4)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    initial=st.integers(0, KEY_SPACE),
    ttl_every=st.integers(2, 7),
    writes=WRITES,
    prefix=st.sampled_from([b"k", b"k1", b"k3", b"f"]),
    limit=st.sampled_from([None, 5]),
    reverse=st.booleans(),
)
def test_keys_prefix_on_the_index_is_exact(initial, ttl_every, writes, prefix, limit, reverse):
    driver = KeysDriver(initial=initial, ttl_every=ttl_every)
    keyspace = driver.keyspace
    keyspace.attach_sorted_index(SortedKeyIndex())
    expected = sorted((key for key in driver.present if key.startswith(prefix)), reverse=reverse)[:limit]
    work = RangeSlices(
        keyspace, prefix, prefix_end(prefix), high_inclusive=False, count=limit, reverse=reverse, exact=True
    )
    slices = iter(writes)
    steps = 0
    while not work.step(0):
        steps += 1
        for action, n in next(slices, []):
            driver.apply(action, n)
    assert work.reply() == expected
    if not steps:
        assert keyspace.undo_log is None  # one slice: no snapshot was opened
    # The call's snapshot (if it opened one) is gone: the next write drops its log.
    keyspace.set(b"after", b"x")
    assert keyspace.undo_log is None
