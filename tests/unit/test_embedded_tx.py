"""The embedded library's snapshots and transactions (``db.snapshot()``,
``db.transaction()``, sync and Trio): snapshot reads stable under writes,
own writes visible, abort on an exception, conflicts on a read key, a
written key and a scanned range (none on unrelated keys), a commit as one
log record, write skew refused, and 8 threads of random transfers
conserving the total."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest
import trio

import trio_kv

from .test_embedded_db import log_records


def test_snapshot_reads_are_stable_under_writes() -> None:
    with trio_kv.open(None) as db:
        for index in range(2500):  # more than one scan page
            db.put(b"k%05d" % index, b"old")
        with db.snapshot() as snap:
            db.put(b"k00000", b"new")
            db.delete(b"k00001")
            db.put(b"k99999", b"added")
            db.batch([trio_kv.Put(b"k%05d" % index, b"new") for index in range(0, 2500, 7)])
            assert snap.get(b"k00000") == b"old" and snap.get(b"k00001") == b"old"
            assert snap.get(b"k99999") is None and not snap.exists(b"k99999")
            pairs = list(snap.scan(b"k", b"l"))
            assert pairs == [(b"k%05d" % index, b"old") for index in range(2500)]
            assert list(snap.scan(b"k", b"l", limit=3, reverse=True)) == [
                (b"k%05d" % index, b"old") for index in (2499, 2498, 2497)
            ]
        assert db.get(b"k00000") == b"new"
        with pytest.raises(trio_kv.SnapshotExpired):
            snap.get(b"k00000")  # released at the block's end


def test_transaction_sees_own_writes_then_the_snapshot() -> None:
    with trio_kv.open(None) as db:
        db.batch([trio_kv.Put(b"a", b"1"), trio_kv.Put(b"b", b"2"), trio_kv.Put(b"c", b"3")])
        with db.transaction() as tx:
            tx.put(b"a", b"A")
            tx.delete(b"b")
            tx.put(b"d", b"4")
            assert tx.get(b"a") == b"A" and tx.get(b"b") is None and tx.get(b"c") == b"3" and tx.get(b"d") == b"4"
            assert db.get(b"a") == b"1" and db.get(b"d") is None  # nothing applied before the commit
            assert tx.scan() == [(b"a", b"A"), (b"c", b"3"), (b"d", b"4")]
            assert tx.scan(limit=2) == [(b"a", b"A"), (b"c", b"3")]
            assert tx.scan(limit=2, reverse=True) == [(b"d", b"4"), (b"c", b"3")]
            assert tx.scan(b"b", b"d") == [(b"c", b"3")]
        assert list(db.scan()) == [(b"a", b"A"), (b"c", b"3"), (b"d", b"4")]


def test_exception_in_the_block_aborts() -> None:
    with trio_kv.open(None) as db:
        db.put(b"a", b"1")
        with pytest.raises(KeyError):
            with db.transaction() as tx:
                tx.put(b"a", b"2")
                tx.put(b"b", b"2")
                raise KeyError("stop")
        assert db.get(b"a") == b"1" and db.get(b"b") is None
        with pytest.raises(RuntimeError):
            tx.get(b"a")  # finished


@pytest.mark.parametrize("change", ["read", "written", "scanned", "added_to_scanned", "deleted_read"])
def test_conflict_when_a_key_it_depends_on_changed(change: str) -> None:
    with trio_kv.open(None) as db:
        db.batch([trio_kv.Put(b"r", b"1"), trio_kv.Put(b"w", b"1"), trio_kv.Put(b"s:1", b"1")])
        with pytest.raises(trio_kv.Conflict):
            with db.transaction() as tx:
                tx.get(b"r")
                tx.put(b"w", b"mine")
                tx.scan(b"s:", b"s;", limit=1)
                {
                    "read": lambda: db.put(b"r", b"2"),
                    "written": lambda: db.put(b"w", b"theirs"),
                    "scanned": lambda: db.put(b"s:1", b"2"),
                    "added_to_scanned": lambda: db.put(b"s:5", b"new"),
                    "deleted_read": lambda: db.delete(b"r"),
                }[change]()
        assert db.get(b"w") != b"mine"  # nothing applied


def test_no_conflict_for_unrelated_keys_and_ranges() -> None:
    with trio_kv.open(None) as db:
        db.batch([trio_kv.Put(b"r", b"1"), trio_kv.Put(b"s:1", b"1")])
        with db.transaction() as tx:
            tx.get(b"r")
            tx.scan(b"s:", b"s;")
            tx.put(b"w", b"mine")
            db.put(b"other", b"x")
            db.put(b"s;", b"x")  # the range's end is exclusive
            db.put(b"s", b"x")
        assert db.get(b"w") == b"mine"


def test_committed_transaction_is_one_log_record(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with trio_kv.open(data, appendfsync="always") as db:
        db.put(b"before", b"x")
        with db.transaction() as tx:
            tx.get(b"before")
            for index in range(20):
                tx.put(b"k%d" % index, b"v")
            tx.delete(b"before")
    records = log_records(data)
    assert len(records) == 2 and len(records[1]) == 21
    with trio_kv.open(data) as db:
        assert len(db) == 20 and db.get(b"before") is None


def test_expired_snapshot_is_a_conflict() -> None:
    with trio_kv.open(None) as db:
        db.put(b"a", b"1")
        tx = db.transaction()
        assert tx.get(b"a") == b"1"
        tx.put(b"b", b"1")
        tx._snapshot.view.expire()  # as the undo-bytes limit or the idle timeout would
        with pytest.raises(trio_kv.Conflict):
            tx.commit()
        assert db.get(b"b") is None


def test_write_skew_pair_gives_one_commit_and_one_conflict() -> None:
    """Each reads both keys (the constraint: x + y >= 1) and clears one;
    interleaved, both saw 1 + 1 and the second must not commit."""
    with trio_kv.open(None) as db:
        db.batch([trio_kv.Put(b"x", b"1"), trio_kv.Put(b"y", b"1")])
        first, second = db.transaction(), db.transaction()
        for tx, target in ((first, b"x"), (second, b"y")):
            assert int(tx.get(b"x")) + int(tx.get(b"y")) == 2
            tx.put(target, b"0")
        outcomes = []
        for tx in (first, second):
            try:
                tx.commit()
                outcomes.append("commit")
            except trio_kv.Conflict:
                outcomes.append("conflict")
        assert outcomes == ["commit", "conflict"]
        assert int(db.get(b"x")) + int(db.get(b"y")) == 1


def run_transfers(db: trio_kv.DB, threads: int, transfers: int, accounts: int) -> tuple[int, int]:
    """``transfers`` random transfers in all over ``threads`` threads, each
    retried on Conflict; returns (commits, conflicts)."""
    counts = [0, 0]
    count_lock = threading.Lock()

    def worker(seed: int, todo: int) -> None:
        rng = random.Random(seed)
        commits = conflicts = 0
        while commits < todo:
            source, target = rng.sample(range(accounts), 2)
            amount = rng.randint(1, 10)
            try:
                with db.transaction() as tx:
                    have = int(tx.get(b"acct:%d" % source))
                    if have >= amount:
                        tx.put(b"acct:%d" % source, b"%d" % (have - amount))
                        tx.put(b"acct:%d" % target, b"%d" % (int(tx.get(b"acct:%d" % target)) + amount))
                commits += 1
            except trio_kv.Conflict:
                conflicts += 1
        with count_lock:
            counts[0] += commits
            counts[1] += conflicts

    each = transfers // threads
    workers = [threading.Thread(target=worker, args=(seed, each)) for seed in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=300)
        assert not thread.is_alive()
    return counts[0], counts[1]


def test_eight_threads_of_random_transfers_conserve_the_total() -> None:
    accounts = 20
    with trio_kv.open(None) as db:
        db.batch([trio_kv.Put(b"acct:%d" % index, b"1000") for index in range(accounts)])
        started = time.perf_counter()
        commits, conflicts = run_transfers(db, threads=8, transfers=10_000, accounts=accounts)
        elapsed_s = time.perf_counter() - started
        total = sum(int(value) for _key, value in db.scan(b"acct:", b"acct;"))
        print(f"transfers: {commits} commits, {conflicts} conflicts, {commits / elapsed_s:.0f} tx/s")
        assert commits == 10_000 and total == accounts * 1000
        assert all(int(value) >= 0 for _key, value in db.scan(b"acct:", b"acct;"))


def test_trio_snapshot_and_transaction(tmp_path: Path) -> None:
    async def main() -> None:
        with trio.fail_after(30):
            async with trio_kv.open_trio(tmp_path / "data") as db:
                await db.batch([trio_kv.Put(b"a", b"1"), trio_kv.Put(b"b", b"2")])
                async with db.snapshot() as snap:
                    await db.put(b"a", b"X")
                    assert await snap.get(b"a") == b"1"
                    assert [pair async for pair in snap.scan(reverse=True)] == [(b"b", b"2"), (b"a", b"1")]
                async with db.transaction() as tx:
                    tx.put(b"c", (await tx.get(b"a")) or b"")
                    tx.delete(b"b")
                    assert await tx.scan() == [(b"a", b"X"), (b"c", b"X")]
                assert [pair async for pair in db.scan()] == [(b"a", b"X"), (b"c", b"X")]
                with pytest.raises(trio_kv.Conflict):
                    async with db.transaction() as tx:
                        await tx.get(b"a")
                        await db.put(b"a", b"Y")
                        tx.put(b"d", b"1")
                with pytest.raises(ValueError):
                    async with db.transaction() as tx:
                        tx.put(b"d", b"1")
                        raise ValueError
                with trio.CancelScope() as scope:
                    async with db.transaction() as tx:
                        tx.put(b"e", b"1")
                        scope.cancel()
                        await trio.sleep(0)  # Cancelled: the block aborts
                assert scope.cancelled_caught
                assert await db.get(b"d") is None and await db.get(b"e") is None
    trio.run(main)
    records = log_records(tmp_path / "data")
    # batch, put, the transaction (one record of two), the conflicting one's neighbour's put
    assert [len(record) for record in records] == [2, 1, 2, 1]
