"""The sync embedded library (``trio_kv.open``): its calls, argument checks,
atomic batches (one log record each), TTLs on a fake clock, recovery by
reopening, compaction, closing, options, and that a sync program never
loads trio."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

import trio_kv
from trio_kv.config import Config
from trio_kv.embedded import open_store
from trio_kv.embedded.options import library_config
from trio_kv.store.durability.reader import RecordReader
from trio_kv.store.durability.records import KIND_LOG, decode_record
from trio_kv.store.keyspace import Keyspace
from trio_kv.store.store import Store

from .redis_session import call, make_session


class FakeClock:
    def __init__(self) -> None:
        self.now_ms = 1_000_000

    def __call__(self) -> int:
        return self.now_ms


def open_with_clock(path: Path | None, clock: FakeClock, **options: object) -> trio_kv.DB:
    return open_store(Store(library_config(path, options), Keyspace(clock)))


def log_records(data_dir: Path) -> list[list[tuple]]:
    """Every record of every log file, decoded, in order."""
    records = []
    for path in sorted(data_dir.glob("log.*"), key=lambda p: int(p.suffix[1:])):
        with RecordReader(str(path), expect_kind=KIND_LOG) as reader:
            version = reader.header.version
            records += [decode_record(payload, version) for _offset, payload in reader]
    return records


def test_memory_store_basic_calls() -> None:
    with trio_kv.open(None) as db:
        assert db.get(b"k") is None and not db.exists(b"k")
        db.put(b"k", b"v")
        assert db.get(b"k") == b"v" and db.exists(b"k")
        db.put(b"k", b"w")
        assert db.get(b"k") == b"w"
        assert db.delete(b"k") is True
        assert db.delete(b"k") is False
        assert db.get(b"k") is None
        db.put(b"", b"")  # empty key and value are values like any other
        assert db.get(b"") == b"" and len(db) == 1


def test_ttl_expires_on_the_store_clock_and_put_drops_it() -> None:
    clock = FakeClock()
    with open_with_clock(None, clock) as db:
        db.put(b"short", b"1", ttl_ms=100)
        db.put(b"kept", b"2", ttl_ms=100)
        db.put(b"kept", b"3")  # a put without ttl_ms drops the TTL, as SET
        clock.now_ms += 99
        assert db.get(b"short") == b"1"
        clock.now_ms += 1
        assert db.get(b"short") is None and not db.exists(b"short")
        assert db.get(b"kept") == b"3"
        assert db.delete(b"short") is False  # expired: not there to delete


@pytest.mark.parametrize(
    "call",
    [
        lambda db: db.get("k"),
        lambda db: db.exists(bytearray(b"k")),
        lambda db: db.put(b"k", "v"),
        lambda db: db.put(memoryview(b"k"), b"v"),
        lambda db: db.put(b"k", b"v", ttl_ms=1.5),
        lambda db: db.delete(1),
        lambda db: db.batch([trio_kv.Put(b"a", b"1"), (b"b", b"2")]),
    ],
)
def test_keys_and_values_are_bytes(call) -> None:
    with trio_kv.open(None) as db:
        with pytest.raises(TypeError):
            call(db)
        assert len(db) == 0


@pytest.mark.parametrize("ttl_ms", [0, -5])
def test_ttl_must_be_positive(ttl_ms: int) -> None:
    with trio_kv.open(None) as db:
        with pytest.raises(ValueError, match="positive"):
            db.put(b"k", b"v", ttl_ms=ttl_ms)


def test_a_bad_operation_anywhere_in_a_batch_applies_nothing() -> None:
    with trio_kv.open(None) as db:
        db.put(b"b", b"old")
        with pytest.raises(TypeError):
            db.batch([trio_kv.Put(b"a", b"1"), trio_kv.Delete(b"b"), trio_kv.Put(b"c", "not bytes")])
        with pytest.raises(ValueError):
            db.batch([trio_kv.Put(b"a", b"1"), trio_kv.Put(b"c", b"3", ttl_ms=0)])
        assert (db.get(b"a"), db.get(b"b"), db.get(b"c")) == (None, b"old", None)


def test_batch_applies_in_order_with_ttls() -> None:
    clock = FakeClock()
    with open_with_clock(None, clock) as db:
        db.batch(
            iter([  # any iterable
                trio_kv.Put(b"a", b"1"), trio_kv.Put(b"a", b"2"), trio_kv.Delete(b"b"),
                trio_kv.Put(b"t", b"x", ttl_ms=10), trio_kv.Put(b"b", b"3"), trio_kv.Delete(b"a"),
            ])
        )
        assert (db.get(b"a"), db.get(b"b"), db.get(b"t")) == (None, b"3", b"x")
        clock.now_ms += 10
        assert db.get(b"t") is None
        db.batch([])  # nothing to do


def test_a_batch_is_one_log_record_and_survives_reopen(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with trio_kv.open(data, appendfsync="always") as db:
        db.put(b"single", b"1")
        db.batch([trio_kv.Put(b"k%d" % index, b"v%d" % index) for index in range(50)] + [trio_kv.Delete(b"single")])
        assert db.delete(b"absent") is False  # changes nothing: no record
        db.batch([trio_kv.Delete(b"absent")])  # neither
    records = log_records(data)
    assert len(records) == 2
    assert len(records[1]) == 51 and records[1][-1] == ("DEL", b"single")
    with trio_kv.open(data) as db:
        assert len(db) == 50 and db.get(b"k49") == b"v49" and db.get(b"single") is None


def test_reopen_keeps_absolute_expiry_times(tmp_path: Path) -> None:
    clock = FakeClock()
    data = tmp_path / "data"
    with open_with_clock(data, clock) as db:
        db.put(b"t", b"v", ttl_ms=1000)
        db.put(b"gone", b"v", ttl_ms=10)
    clock.now_ms += 500
    with open_with_clock(data, clock) as db:
        assert db.get(b"t") == b"v" and db.get(b"gone") is None
        assert db.store.keyspace.expire_at_ms(b"t") == 1_000_000 + 1000
    clock.now_ms += 500
    with open_with_clock(data, clock) as db:
        assert db.get(b"t") is None


def test_compaction_rewrites_the_log_and_the_state_survives(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with trio_kv.open(data) as db:
        for round_ in range(5):
            db.batch([trio_kv.Put(b"k%d" % index, b"%d" % round_) for index in range(200)])
        assert db.compact() is True
        assert sorted(path.name for path in data.iterdir()) == ["LOCK", "log.2", "snapshot.2"]
        db.put(b"after", b"x")
    with trio_kv.open(data) as db:
        assert len(db) == 201 and db.get(b"k7") == b"4" and db.get(b"after") == b"x"


def test_automatic_compaction_runs_on_a_thread_of_its_own(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with trio_kv.open(data, aof_rewrite_min_size_bytes=0, aof_rewrite_percentage=100) as db:
        value = b"x" * 100
        for index in range(3000):  # rewrites the same 10 keys: the log outgrows the state
            db.put(b"k%d" % (index % 10), value)
        persistence = db.store.persistence
        assert persistence is not None
        db._log._join_compaction()  # noqa: SLF001
        assert persistence.rewrites >= 1
    with trio_kv.open(data) as db:
        assert len(db) == 10 and db.get(b"k3") == value


def test_closed_store_refuses_calls_and_close_twice_is_fine(tmp_path: Path) -> None:
    db = trio_kv.open(tmp_path / "data")
    db.put(b"k", b"v")
    db.close()
    db.close()
    assert db.closed
    for call in (lambda: db.get(b"k"), lambda: db.put(b"k", b"v"), lambda: db.delete(b"k"),
                 lambda: db.exists(b"k"), lambda: db.batch([]), db.flush, lambda: len(db)):
        with pytest.raises(trio_kv.Closed):
            call()
    # The directory is free again.
    with trio_kv.open(tmp_path / "data") as again:
        assert again.get(b"k") == b"v"


def test_second_open_of_a_directory_in_the_same_process_is_refused(tmp_path: Path) -> None:
    with trio_kv.open(tmp_path / "data"):
        with pytest.raises(trio_kv.DataDirInUse, match=str(tmp_path / "data")):
            trio_kv.open(tmp_path / "data")


def test_memory_store_writes_no_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with trio_kv.open() as db:
        db.put(b"k", b"v")
        db.flush()
        assert db.compact() is True
    assert list(tmp_path.iterdir()) == []


def test_options_are_the_servers_checked_the_same_way() -> None:
    config = library_config("d", {"appendfsync": "always", "aof_load_truncated": False, "workers": 2})
    assert (config.appendfsync, config.aof_load_truncated, config.workers, config.data_dir) == ("always", False, 2, "d")
    assert config.appendonly and not library_config(None, {}).appendonly
    with pytest.raises(TypeError, match="unknown option.*port"):
        trio_kv.open(None, port=1)
    with pytest.raises(ValueError, match="appendfsync"):
        trio_kv.open(None, appendfsync="sometimes")
    with pytest.raises(ValueError, match="workers"):
        library_config(None, {"workers": 0})


def test_threads_share_one_store() -> None:
    with trio_kv.open(None) as db:

        def writer(thread: int) -> None:
            for index in range(500):
                db.batch([trio_kv.Put(b"t%d:%d" % (thread, index), b"x"), trio_kv.Put(b"count:%d" % thread, b"%d" % index)])

        threads = [threading.Thread(target=writer, args=(thread,)) for thread in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert len(db) == 4 * 501
        assert all(db.get(b"count:%d" % thread) == b"499" for thread in range(4))


def test_wrong_type_from_a_server_written_hash(tmp_path: Path) -> None:
    # A data directory a server wrote may hold hashes: reading one as a string is WrongType.
    session, _clock = make_session()
    call(session, "HSET h f v")
    db = trio_kv.DB(session.store, None)
    with pytest.raises(trio_kv.WrongType):
        db.get(b"h")
    assert db.exists(b"h")
    db.put(b"h", b"now a string")  # put replaces any value, as SET
    assert db.get(b"h") == b"now a string"


def test_import_trio_kv_loads_neither_trio_nor_the_store() -> None:
    code = (
        "import sys, trio_kv\n"
        "assert 'trio_kv.store.store' not in sys.modules and 'trio' not in sys.modules\n"
        "db = trio_kv.open(None); db.put(b'k', b'v'); db.close()\n"
        "assert 'trio' not in sys.modules, 'the sync library loaded trio'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_package_is_typed() -> None:
    assert (Path(trio_kv.__file__).parent / "py.typed").exists()
    assert {"open", "open_trio", "Put", "Delete", "DB", "TrioDB", "DataDirInUse"} <= set(trio_kv.__all__)
    with pytest.raises(AttributeError):
        trio_kv.no_such_name  # noqa: B018


def test_config_defaults_are_the_servers() -> None:
    assert library_config(None, {}).appendfsync == Config().appendfsync == "everysec"


# --- scan: the sorted key index --------------------------------------------------


def model_scan(model: dict[bytes, bytes], start, end, limit, reverse) -> list[tuple[bytes, bytes]]:
    keys = sorted(key for key in model if (start is None or key >= start) and (end is None or key < end))
    if reverse:
        keys.reverse()
    return [(key, model[key]) for key in keys][:limit]


def test_scan_is_ordered_half_open_and_limited() -> None:
    clock = FakeClock()
    with open_with_clock(None, clock) as db:
        model = {}
        for index in range(0, 3000, 3):  # more than a page (SCAN_PAGE_KEYS)
            key, value = b"k%05d" % index, b"v%d" % index
            db.put(key, value)
            model[key] = value
        db.put(b"k00001", b"expiring", ttl_ms=5)  # expired keys are skipped, not yet swept
        clock.now_ms += 5
        for start, end, limit, reverse in [
            (None, None, None, False), (None, None, None, True), (b"k00100", b"k00200", None, False),
            (b"k00100", b"k00200", None, True), (b"k00099", b"k00099", None, False), (b"k00200", b"k00100", None, False),
            (b"k01000", None, 1500, False), (None, b"k02500", 1001, True), (None, None, 0, False),
            (b"k", b"l", 5, True), (b"", None, 2, False),
        ]:
            assert list(db.scan(start, end, limit=limit, reverse=reverse)) == model_scan(model, start, end, limit, reverse), (
                start, end, limit, reverse)


def test_scan_between_pages_sees_writes_in_order_and_each_key_once() -> None:
    with trio_kv.open(None) as db:
        for index in range(2500):
            db.put(b"k%05d" % index, b"old")
        seen = []
        for key, _value in db.scan():
            seen.append(key)
            if len(seen) == 10:
                # Between pages the writer is free: a key behind the scan is
                # not seen, one ahead of it is, a deleted one ahead is not.
                db.put(b"a-behind", b"x")
                db.put(b"k02000x", b"ahead")
                db.delete(b"k02001")
        assert seen == sorted(set(seen))
        assert b"a-behind" not in seen and b"k02000x" in seen and b"k02001" not in seen


def test_scan_checks_its_arguments_and_needs_the_index() -> None:
    with trio_kv.open(None) as db:
        for call in (lambda: db.scan("a"), lambda: db.scan(None, 1), lambda: db.scan(limit=1.0)):
            with pytest.raises(TypeError):
                call()
        with pytest.raises(ValueError):
            db.scan(limit=-1)
    with trio_kv.open(None, sorted_index="no") as db:
        db.put(b"k", b"v")
        assert db.get(b"k") == b"v"
        with pytest.raises(RuntimeError, match="sorted"):
            list(db.scan())


def test_scan_after_reopen(tmp_path: Path) -> None:
    with trio_kv.open(tmp_path / "data") as db:
        db.batch([trio_kv.Put(b"b", b"2"), trio_kv.Put(b"a", b"1"), trio_kv.Put(b"c", b"3")])
    with trio_kv.open(tmp_path / "data") as db:
        assert list(db.scan(b"a", b"c")) == [(b"a", b"1"), (b"b", b"2")]
        assert list(db.scan(reverse=True, limit=2)) == [(b"c", b"3"), (b"b", b"2")]
