"""``store.durability.append_log.Persistence`` on real files, driven by hand:
LSN accounting across a log switch that races a flush, a switch whose
finishing fails and is retried, an fsync failure (sticky, also at a switch),
the power-loss test hook, sizes; and the engine's EXEC while writes are
refused (Redis' EXECABORT, transaction discarded)."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest

from trio_kv.commands.redis import REDIS_COMMANDS
from trio_kv.commands.session import Session
from trio_kv.commands.wire import LINE, RESP
from trio_kv.config import Config
from trio_kv.protocol.replies import Error
from trio_kv.store.durability import data_dir as recovery_module
from trio_kv.store.durability import writer as writer_module
from trio_kv.store.durability.apply import load_keyspace
from trio_kv.store.durability.append_log import SYNCED_LOG_ENV, Persistence
from trio_kv.store.durability.records import HEADER_BYTES, encode_record
from trio_kv.store.durability.data_dir import DataDir
from trio_kv.store.engine import Job, Store, run_batch
from trio_kv.store.local_control import LocalControl
from trio_kv.store.keyspace import Keyspace
from trio_kv.store.rwlock import ReadWriteLock


def open_log(directory: Path, policy: str = "always") -> Persistence:
    data_dir = DataDir(directory)
    load_keyspace(data_dir, Keyspace())
    return Persistence(data_dir, policy, rewrite_min_bytes=1, rewrite_percentage=100)


def set_effect(key: bytes, value: bytes = b"v") -> list[tuple]:
    return [("SET", key, value, None)]


def recovered(directory: Path) -> dict[bytes, bytes]:
    keyspace = Keyspace()
    load_keyspace(DataDir(directory), keyspace)
    return dict(keyspace.live_items())


def test_a_switch_racing_a_flush_never_overstates_durable_lsn(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    first = log.log(set_effect(b"a"))
    old_writer = log.writer
    real_flush = old_writer.flush
    later: list[int] = []

    def flush_while_switching() -> int:
        # The engine switches and appends to the new log while this flush runs.
        old_writer.flush = real_flush
        written = real_flush()
        log.begin_switch()
        later.append(log.log(set_effect(b"b", b"x" * 1000)))
        return written

    old_writer.flush = flush_while_switching
    assert log.flush() == first  # what this flush wrote, not what was appended meanwhile
    assert log.durable_lsn < later[0]
    assert log.flush() == later[0]  # the next flush finishes the switch and covers the rest
    assert sorted(os.listdir(tmp_path)) == ["log.1", "log.2"]
    log.close()
    assert recovered(tmp_path) == {b"a": b"v", b"b": b"x" * 1000}


def test_a_failed_switch_is_retried_by_the_next_flush(tmp_path: Path, monkeypatch) -> None:
    log = open_log(tmp_path, "everysec")
    log.log(set_effect(b"a"))
    log.flush()
    log.begin_switch()
    lsn = log.log(set_effect(b"b"))
    real_fsync_directory = recovery_module.fsync_directory
    failures = [OSError(errno.ENOSPC, "No space left on device")]

    def failing_once(path) -> None:
        # The new log was renamed into place; the directory fsync fails once.
        if failures:
            raise failures.pop()
        real_fsync_directory(path)

    monkeypatch.setattr(recovery_module, "fsync_directory", failing_once)
    with pytest.raises(OSError):
        log.flush()
    assert log.refusal() == "No space left on device" and log.durable_lsn < lsn
    assert log.flush() == lsn  # a header-only log.2 from the failed try is taken as it is
    assert log.refusal() is None
    log.close()
    assert recovered(tmp_path) == {b"a": b"v", b"b": b"v"}


def test_failed_fsync_is_sticky_even_at_a_switch(tmp_path: Path, monkeypatch) -> None:
    log = open_log(tmp_path, "everysec")
    log.log(set_effect(b"a"))
    log.flush()
    failing = [True]

    def datasync(fd: int) -> None:
        if failing[0]:
            raise OSError(errno.EIO, "Input/output error")
        os.fdatasync(fd)

    monkeypatch.setattr(writer_module, "_datasync", datasync)
    log.begin_switch()
    with pytest.raises(OSError):
        log.flush()  # finishing the switch fsyncs the old log
    assert log.refusal() == (
        f"fsync of {tmp_path / 'log.1'} failed (Input/output error); writes refused until a restart"
    )
    failing[0] = False
    with pytest.raises(OSError):
        log.flush()  # never retried-and-trusted
    assert log.sync_failed is not None and log.info()["aof_last_write_status"] == "err"


def test_synced_log_hook_records_each_fsync_and_switch(tmp_path: Path, monkeypatch) -> None:
    hook = tmp_path / "synced"
    monkeypatch.setenv(SYNCED_LOG_ENV, str(hook))
    data = tmp_path / "data"
    log = open_log(data, "always")
    assert hook.read_text() == f"{data / 'log.1'} {HEADER_BYTES}\n"
    log.log(set_effect(b"a"))
    log.flush()
    assert hook.read_text() == f"{data / 'log.1'} {os.path.getsize(data / 'log.1')}\n"
    log.begin_switch()
    log.flush()
    assert hook.read_text() == f"{data / 'log.2'} {HEADER_BYTES}\n"
    log.close()


def test_no_hook_file_without_the_variable(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(SYNCED_LOG_ENV, raising=False)
    log = open_log(tmp_path / "data")
    log.log(set_effect(b"a"))
    log.flush()
    log.close()
    assert sorted(os.listdir(tmp_path)) == ["data"]


def test_sizes_count_every_file_recovery_reads(tmp_path: Path) -> None:
    log = open_log(tmp_path, "everysec")
    assert log.current_size() == log.base_size == HEADER_BYTES
    log.log(set_effect(b"a", b"x" * 100))
    assert log.current_size() == HEADER_BYTES + len(encode_record(set_effect(b"a", b"x" * 100)))
    generation = log.begin_switch()
    log.flush()
    keyspace = Keyspace()
    keyspace.set(b"a", b"x" * 100)
    log.write_snapshot(generation, keyspace, ReadWriteLock(), lambda step: None)
    snapshot_bytes = os.path.getsize(tmp_path / "snapshot.2")
    assert log.current_size() == log.base_size == snapshot_bytes + HEADER_BYTES
    assert log.changes_since_save() == 0 and log.info()["rdb_last_save_time"] >= int(time.time()) - 5


def test_writer_sync_after_close_touches_no_descriptor(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    writer = log.writer
    log.close()
    assert writer.sync() == writer.synced_offset and not writer.is_open


class RefusingLog:
    """Stands for a Persistence whose disk failed: every write is refused."""

    def refusal(self) -> str:
        return "No space left on device"


def test_exec_while_writes_are_refused_is_execabort_and_ends_the_transaction() -> None:
    store = Store(Config())
    store.persistence = RefusingLog()
    session = Session(1, store, LocalControl(store), wire=RESP)

    def run(*commands: list[bytes]) -> list[object]:
        job = Job(session, REDIS_COMMANDS, list(commands), time.perf_counter())
        run_batch(store, [job])
        return job.replies

    store.keyspace.set(b"k", b"v")
    misconf = Error("MISCONF Errors writing to the AOF file: No space left on device")
    assert run([b"SET", b"a", b"1"]) == [misconf]
    replies = run([b"WATCH", b"k"], [b"MULTI"], [b"SET", b"a", b"1"], [b"EXEC"], [b"GET", b"k"])
    assert replies[3] == Error(f"EXECABORT Transaction discarded because of: {misconf.message}")
    assert replies[4] == b"v" and session.transaction.queued is None and session.transaction.watched == {}
    # A transaction without writes still runs, as in Redis.
    assert run([b"MULTI"], [b"GET", b"k"], [b"EXEC"])[2] == [b"v"]
    text = Session(2, store, LocalControl(store), wire=LINE)
    job = Job(text, REDIS_COMMANDS, [[b"SET", b"a", b"1"]], time.perf_counter())
    run_batch(store, [job])
    assert job.replies == [Error("writes refused: error writing the log (No space left on device)")]



def test_a_record_too_large_to_log_is_refused_not_a_crash(tmp_path: Path, monkeypatch) -> None:
    from trio_kv.store.durability import records

    store = Store(Config())
    store.persistence = open_log(tmp_path)
    store.keyspace.effects.subscribe(store.persistence.log)
    session = Session(1, store, LocalControl(store), wire=RESP)
    monkeypatch.setattr(records, "MAX_RECORD_BYTES", 100)

    def run(*commands: list[bytes]) -> Job:
        job = Job(session, REDIS_COMMANDS, list(commands), time.perf_counter())
        run_batch(store, [job])
        return job

    big = run([b"SET", b"big", b"x" * 200], [b"SET", b"small", b"y"])
    assert isinstance(big.replies[0], Error) and big.replies[0].message.startswith("MISCONF")
    assert "record too large to log" in big.replies[0].message
    assert big.replies[1].text == "OK"  # the batch goes on; the next write is logged
    assert big.logged == [1]
    store.persistence.close()
    assert recovered(tmp_path) == {b"small": b"y"}
