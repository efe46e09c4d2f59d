"""The embedded library's snapshot limits, as options of ``trio_kv.open``
and ``open_trio`` (the server's ``--snapshot-max-undo-bytes`` and
``--snapshot-idle-timeout-seconds``): past either a snapshot's reads raise
``trio_kv.SnapshotExpired`` and a transaction on it is a ``Conflict``;
within them nothing expires. The idle clock is a fake one (no real waits)."""

from __future__ import annotations

import pytest
import trio

import trio_kv


class FakeClock:
    """Seconds that move only when a test says so (the snapshots' clock)."""

    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def test_the_options_reach_the_store_and_are_checked() -> None:
    with trio_kv.open(None, snapshot_max_undo_bytes=5000, snapshot_idle_timeout_seconds="2.5") as db:
        snapshots = db.store.keyspace.snapshots
        assert (snapshots.max_undo_bytes, snapshots.idle_timeout_seconds) == (5000, 2.5)
    with trio_kv.open(None) as db:  # the server's defaults
        snapshots = db.store.keyspace.snapshots
        assert (snapshots.max_undo_bytes, snapshots.idle_timeout_seconds) == (256 * 1024 * 1024, 300.0)
    with pytest.raises(ValueError, match="snapshot_max_undo_bytes"):
        trio_kv.open(None, snapshot_max_undo_bytes=-1)
    with pytest.raises(ValueError, match="snapshot_idle_timeout_seconds"):
        trio_kv.open(None, snapshot_idle_timeout_seconds=0)


def test_past_the_undo_bytes_limit_the_snapshot_expires() -> None:
    with trio_kv.open(None, snapshot_max_undo_bytes=4000) as db:
        db.batch([trio_kv.Put(b"k%03d" % index, b"old") for index in range(100)])
        with db.snapshot() as within, db.transaction() as tx_within:
            for index in range(5):  # a few saved pre-images: under 4,000 bytes
                db.put(b"k%03d" % index, b"new")
            assert within.get(b"k000") == b"old"
            assert tx_within.get(b"k099") == b"old"
        with db.snapshot() as snap:
            tx = db.transaction()
            tx.put(b"elsewhere", b"x")  # a key nobody else writes
            for index in range(100):  # 100 pre-images: past the limit
                db.put(b"k%03d" % index, b"newer")
            with pytest.raises(trio_kv.SnapshotExpired):
                snap.get(b"k000")
            with pytest.raises(trio_kv.SnapshotExpired):
                list(snap.scan())
            with pytest.raises(trio_kv.Conflict, match="expired"):
                tx.commit()
        assert db.get(b"elsewhere") is None and db.get(b"k000") == b"newer"


def test_an_idle_snapshot_expires_and_a_read_one_does_not() -> None:
    with trio_kv.open(None, snapshot_idle_timeout_seconds=10) as db:
        clock = FakeClock()
        db.store.keyspace.snapshots.clock_s = clock
        db.put(b"a", b"1")
        with db.snapshot() as read_often, db.snapshot() as idle:
            tx = db.transaction()
            assert tx.get(b"a") == b"1"
            for _ in range(3):
                clock.now_s += 6  # 18 s in all, but never 10 s between two reads
                assert read_often.get(b"a") == b"1"
            db.put(b"a", b"2")
            assert read_often.get(b"a") == b"1"
            with pytest.raises(trio_kv.SnapshotExpired):
                idle.get(b"a")  # unread for 18 s
            tx.put(b"b", b"x")
            with pytest.raises(trio_kv.Conflict):
                tx.commit()  # its snapshot idled out too
        assert db.get(b"b") is None


def test_open_trio_takes_the_limits() -> None:
    async def main() -> None:
        async with trio_kv.open_trio(None, snapshot_max_undo_bytes=4000) as db:
            await db.batch([trio_kv.Put(b"k%03d" % index, b"old") for index in range(100)])
            async with db.snapshot() as snap:
                assert await snap.get(b"k000") == b"old"
                await db.batch([trio_kv.Put(b"k%03d" % index, b"new") for index in range(100)])
                with pytest.raises(trio_kv.SnapshotExpired):
                    await snap.get(b"k000")

    trio.run(main)
