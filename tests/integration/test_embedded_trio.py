"""``trio_kv.open_trio``: the embedded library's Trio shell, under
pytest-trio. Concurrent calls share the group dispatcher's hops; a write
returns once its record is as durable as the fsync policy says (the
dispatcher's committing list, as for a client's job); a failed flush is
``LogRefused``; the block's end closes the store and unlocks the directory."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import trio

import trio_kv
from trio_kv.embedded.options import library_config
from trio_kv.embedded.trio_db import open_store
from trio_kv.store.keyspace import Keyspace
from trio_kv.store.store import Store

TASKS = 50


async def test_concurrent_calls_share_hops_and_see_their_writes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with trio.fail_after(30):
        async with trio_kv.open_trio(data) as db:

            async def client(index: int) -> None:
                key = b"k%d" % index
                await db.put(key, b"v%d" % index)
                assert await db.get(key) == b"v%d" % index
                await db.batch([trio_kv.Put(key + b":a", b"1"), trio_kv.Put(key + b":b", b"2"), trio_kv.Delete(key)])
                assert not await db.exists(key)
                assert await db.delete(key + b":a") is True
                assert await db.delete(key + b":a") is False

            async with trio.open_nursery() as nursery:
                for index in range(TASKS):
                    nursery.start_soon(client, index)
            stats = db._dispatcher.statistics()  # noqa: SLF001
            # 50 tasks' calls, 6 each, went through far fewer hops than calls.
            assert stats["jobs"] >= 6 * TASKS and stats["hops"] < stats["jobs"] / 3, stats
        assert db.closed
        with pytest.raises(trio_kv.Closed):
            await db.get(b"k1")
    with trio_kv.open(data) as sync_db:
        assert len(sync_db) == TASKS
        assert sync_db.get(b"k7:b") == b"2" and sync_db.get(b"k7:a") is None


async def test_a_write_returns_only_once_its_record_is_fsynced(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with trio_kv.open_trio(tmp_path / "data", appendfsync="always") as db:
            persistence = db.store.persistence
            assert persistence is not None
            for index in range(20):
                await db.put(b"k%d" % index, b"v")
                # Nothing else writes: the put's own record is fsynced when it returns.
                assert persistence.writer.synced_offset == persistence.writer.appended_offset
                await db.batch([trio_kv.Put(b"b%d" % index, b"v"), trio_kv.Delete(b"k%d" % index)])
                assert persistence.writer.synced_offset == persistence.writer.appended_offset


async def test_a_failed_flush_is_log_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with trio.fail_after(30):
        async with trio_kv.open_trio(tmp_path / "data", appendfsync="always") as db:
            await db.put(b"before", b"1")
            persistence = db.store.persistence
            assert persistence is not None
            real_flush = persistence.writer.flush

            def failing_flush() -> int:
                raise OSError(errno.ENOSPC, "No space left on device")

            monkeypatch.setattr(persistence.writer, "flush", failing_flush)
            with pytest.raises(trio_kv.LogRefused, match="No space left"):
                await db.put(b"lost", b"2")
            # The log refuses writes now, before applying them.
            with pytest.raises(trio_kv.LogRefused, match="refused"):
                await db.put(b"refused", b"3")
            assert await db.get(b"refused") is None
            monkeypatch.setattr(persistence.writer, "flush", real_flush)
            # The server's retry task flushes again within a second or so; then writes work.
            while persistence.refusal() is not None:
                await trio.sleep(0.05)
            await db.put(b"after", b"4")
            await db.flush()


async def test_ttl_and_expiry_sweep_through_the_dispatcher() -> None:
    now = [1_000_000]
    store = Store(library_config(None, {"active_expire_interval_seconds": 0.01}), Keyspace(lambda: now[0]))
    with trio.fail_after(30):
        async with open_store(store) as db:
            await db.put(b"t", b"v", ttl_ms=100)
            await db.put(b"kept", b"v")
            assert await db.get(b"t") == b"v"
            now[0] += 100
            assert await db.get(b"t") is None
            # The server's active sweep (store/expiry_cycle.py) frees it without a read.
            while len(store.keyspace) != 1:
                await trio.sleep(0.01)


async def test_arguments_are_checked_before_the_hop() -> None:
    async with trio_kv.open_trio(None) as db:
        with pytest.raises(TypeError):
            await db.put("k", b"v")
        with pytest.raises(TypeError):
            await db.batch([trio_kv.Put(b"a", b"1"), trio_kv.Put(b"b", 2)])
        with pytest.raises(ValueError):
            await db.put(b"k", b"v", ttl_ms=0)
        assert db._dispatcher.statistics()["jobs"] == 0  # noqa: SLF001
        assert await db.get(b"a") is None


async def test_the_directory_is_locked_while_open(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with trio_kv.open_trio(data) as db:
        await db.put(b"k", b"v")
        with pytest.raises(trio_kv.DataDirInUse):
            trio_kv.open(data)
    with trio_kv.open(data) as sync_db:
        assert sync_db.get(b"k") == b"v"


async def test_scan_pages_through_the_dispatcher() -> None:
    with trio.fail_after(30):
        async with trio_kv.open_trio(None) as db:
            await db.batch([trio_kv.Put(b"k%05d" % index, b"%d" % index) for index in range(2500)])
            pairs = [pair async for pair in db.scan(b"k00010", b"k02010")]
            assert pairs == [(b"k%05d" % index, b"%d" % index) for index in range(10, 2010)]
            backwards = [key async for key, _value in db.scan(None, b"k00003", reverse=True)]
            assert backwards == [b"k00002", b"k00001", b"k00000"]
            assert [key async for key, _value in db.scan(limit=1001)][-1] == b"k01000"
            assert [pair async for pair in db.scan(limit=0)] == []
            with pytest.raises(TypeError):
                db.scan("k")
