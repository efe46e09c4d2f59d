"""``RangeSlices(exact=True)`` (commands/ordered_range.py), the cases the
model (tests/property/test_range_keys_model.py) does not aim at: its
snapshot expiring between slices (the walk goes on in the live index with
the sliced walk's guarantee), an abandoned walk freeing its snapshot, and
values read from the snapshot (WITHVALUES)."""

from __future__ import annotations

import gc

import pytest

from trio_kv.commands import ordered_range
from trio_kv.commands.ordered_range import RangeSlices, prefix_end
from trio_kv.store.keyspace import Keyspace
from trio_kv.store.sorted_index import SortedKeyIndex


@pytest.fixture(autouse=True)
def small_units(monkeypatch):
    monkeypatch.setattr(ordered_range, "RANGE_SLICE_KEYS", 4)


def _keyspace(count: int) -> Keyspace:
    keyspace = Keyspace()
    keyspace.attach_sorted_index(SortedKeyIndex())
    for i in range(count):
        keyspace.set(b"k%03d" % i, b"v%d" % i)
    return keyspace


def _walk(keyspace: Keyspace, **options) -> RangeSlices:
    return RangeSlices(keyspace, b"k", prefix_end(b"k"), high_inclusive=False, exact=True, **options)


def test_an_expired_snapshot_goes_on_in_the_live_index():
    keyspace = _keyspace(40)
    keyspace.snapshots.max_undo_bytes = 200
    work = _walk(keyspace)
    assert not work.step(0)  # one unit; a snapshot opened
    assert keyspace.undo_log is not None
    for i in range(30, 40):
        keyspace.delete(b"k%03d" % i)  # past the limit: the snapshot expires
    keyspace.set(b"k500", b"new")
    assert keyspace.snapshots.expired_total == 1
    while not work.step(0):
        pass
    found = work.reply()
    # The sliced walk's guarantee: the keys present throughout, once, in order.
    assert found == sorted(set(found))
    assert [b"k%03d" % i for i in range(30)] == [key for key in found if key < b"k030"]
    assert b"k035" not in found


def test_an_abandoned_walk_frees_its_snapshot():
    keyspace = _keyspace(40)
    work = _walk(keyspace)
    assert not work.step(0)
    keyspace.set(b"k001", b"changed")
    assert keyspace.undo_log is not None
    del work
    gc.collect()
    keyspace.set(b"k002", b"changed")  # the next write compacts the released log away
    assert keyspace.undo_log is None


def test_values_come_from_the_snapshot():
    keyspace = _keyspace(12)
    keyspace.set(b"k000", b"x" * 10)
    keyspace.append(b"k000", b"grown")  # a grown (mutable) string
    work = _walk(keyspace, with_values=True)
    assert not work.step(0)
    keyspace.set(b"k010", b"after")
    keyspace.delete(b"k011")
    while not work.step(0):
        pass
    found = work.reply()
    assert found[:2] == [b"k000", b"x" * 10 + b"grown"]
    assert found[-4:] == [b"k010", b"v10", b"k011", b"v11"]
