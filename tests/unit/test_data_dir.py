"""Recovery from real files: torn tails vs corruption, snapshots and several
generations, a crash at every step of a compaction, a fuzzy snapshot taken
while writers run, expiry at load, power loss, and inconsistent data dirs."""

from __future__ import annotations

import os
import random
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from trio_kv.store.durability.apply import load_keyspace
from trio_kv.store.durability.reader import CorruptLog
from trio_kv.store.durability.records import FRAME_BYTES, HEADER_BYTES, KIND_LOG, KIND_SNAPSHOT, encode_header, encode_record
from trio_kv.store.durability.data_dir import DataDir, InconsistentDataDir, RecoveryReport, TornTailRefused
from trio_kv.store.durability.snapshot import keyspace_chunks, write_snapshot
from trio_kv.store.keyspace import Keyspace
from trio_kv.store.rwlock import ReadWriteLock

NOW_MS = 1_700_000_000_000

State = dict[bytes, tuple[bytes, int]]


def state_of(keyspace: Keyspace) -> State:
    return {key: (value, keyspace.expire_at_ms(key)) for key, value in keyspace.live_items()}


def recover(directory: Path, now_ms: int = NOW_MS, **options: bool) -> tuple[State, RecoveryReport]:
    keyspace = Keyspace(clock_ms=lambda: now_ms)
    report = load_keyspace(DataDir(directory), keyspace, **options)
    return state_of(keyspace), report


class Engine:
    """The engine's side of the protocol, wired the way the server will:
    mutations journaled under the write lock, one record per call."""

    def __init__(self, directory: Path, clock_ms: Callable[[], int] = lambda: NOW_MS) -> None:
        self.keyspace = Keyspace(clock_ms=clock_ms)
        self.lock = ReadWriteLock()
        self.data_dir = DataDir(directory)
        load_keyspace(self.data_dir, self.keyspace)
        self.keyspace.journal = []
        self.writer = self.data_dir.open_log_for_append()

    def write(self, *calls: tuple) -> None:
        with self.lock.write_locked():
            for name, *args in calls:
                getattr(self.keyspace, name)(*args)
            effects = self.keyspace.take_journal()
            if effects:
                self.writer.append(encode_record(effects))
        self.writer.flush()

    def switch(self) -> int:
        with self.lock.write_locked():
            generation = self.data_dir.switch_log(self.writer)
            self.writer.close()
            self.writer = self.data_dir.open_log_for_append(generation)
        return generation

    def write_snapshot(self, generation: int) -> str:
        tmp = self.data_dir.snapshot_tmp_path(generation)
        write_snapshot(tmp, keyspace_chunks(self.keyspace, self.lock, 7), generation, keys_per_record=5)
        return tmp

    def compact(self) -> int:
        generation = self.switch()
        self.data_dir.install_snapshot(self.write_snapshot(generation), generation)
        return generation

    def state(self) -> State:
        with self.lock.read_locked():
            return state_of(self.keyspace)

    def close(self) -> None:
        self.writer.close()


def write_some(engine: Engine, start: int, count: int) -> None:
    for i in range(start, start + count):
        engine.write(("set", b"k%d" % (i % 23), b"v%d" % i, NOW_MS + 1000 * i if i % 3 else None))
        if i % 5 == 0:
            engine.write(("delete", b"k%d" % ((i * 7) % 23)))
        if i % 7 == 0:
            engine.write(("persist", b"k%d" % (i % 23)), ("set_expire_at", b"k%d" % ((i + 1) % 23), NOW_MS + 99))


def one_log(tmp_path: Path, records: int = 6) -> tuple[Path, Path, list[int], list[State]]:
    directory = tmp_path / "data"
    engine = Engine(directory)
    ends = [os.path.getsize(directory / "log.1")]
    states = [engine.state()]
    for i in range(records):
        engine.write(("set", b"key%d" % (i % 4), b"value-%d" % i), ("set", b"other", b"x" * i))
        ends.append(engine.writer.flushed_offset)
        states.append(engine.state())
    engine.close()
    return directory, directory / "log.1", ends, states


def flip_bit(path: Path, offset: int, bit: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))


# --- torn tails and corruption ---------------------------------------------------------


def test_flipped_bit_in_the_last_record_is_a_torn_tail(tmp_path: Path) -> None:
    directory, log_path, ends, states = one_log(tmp_path)
    pristine = log_path.read_bytes()
    # Every bit of the last record's checksum and payload (a length-field
    # flip moves the record's end: see the next tests).
    for offset in range(ends[-2] + 4, ends[-1]):
        for bit in (0, 5, 7):
            log_path.write_bytes(pristine)
            flip_bit(log_path, offset, bit)
            state, report = recover(directory)
            assert state == states[-2]
            assert [(t.offset, t.bytes_removed) for t in report.truncated] == [(ends[-2], ends[-1] - ends[-2])]
            assert log_path.read_bytes() == pristine[: ends[-2]]


def test_flipped_bit_in_an_earlier_record_refuses_naming_file_and_offset(tmp_path: Path) -> None:
    directory, log_path, ends, _ = one_log(tmp_path)
    pristine = log_path.read_bytes()
    for record in range(len(ends) - 2):
        start, end = ends[record], ends[record + 1]
        for offset in range(start + 4, end, 3):
            log_path.write_bytes(pristine)
            flip_bit(log_path, offset, offset % 8)
            with pytest.raises(CorruptLog) as caught:
                recover(directory)
            assert caught.value.offset == start
            assert str(log_path) in str(caught.value) and f"offset {start}" in str(caught.value)
            assert log_path.read_bytes()[offset] != pristine[offset]  # nothing was cut


def test_length_field_flips_never_load_a_wrong_state(tmp_path: Path) -> None:
    # A shrunk length leaves bytes after the record (corruption); a grown one
    # runs past the end (torn if it is the last record). Never a misread.
    directory, log_path, ends, states = one_log(tmp_path)
    pristine = log_path.read_bytes()
    for record in range(len(ends) - 1):
        for bit in range(32):
            log_path.write_bytes(pristine)
            flip_bit(log_path, ends[record] + bit // 8, bit % 8)
            try:
                state, _ = recover(directory)
            except CorruptLog as error:
                assert error.offset == ends[record]
            else:
                assert state == states[record]


def test_zero_filled_tail_is_a_torn_tail(tmp_path: Path) -> None:
    directory, log_path, ends, states = one_log(tmp_path)
    pristine = log_path.read_bytes()
    log_path.write_bytes(pristine + bytes(4096))
    state, report = recover(directory)
    assert state == states[-1]
    assert report.truncated[0].offset == ends[-1] and report.truncated[0].reason == "zero-filled tail"
    assert log_path.read_bytes() == pristine
    # A record cut short and then zeros (the file grew before its data landed).
    log_path.write_bytes(pristine[: ends[-1] - 3] + bytes(4096))
    state, report = recover(directory)
    assert state == states[-2]
    assert log_path.read_bytes() == pristine[: ends[-2]]


def test_zeros_then_data_is_corruption(tmp_path: Path) -> None:
    directory, log_path, ends, _ = one_log(tmp_path)
    log_path.write_bytes(log_path.read_bytes() + bytes(64) + b"\x01")
    with pytest.raises(CorruptLog, match=f"offset {ends[-1]}"):
        recover(directory)


def test_torn_tail_refused_when_configured(tmp_path: Path) -> None:
    directory, log_path, _, _ = one_log(tmp_path)
    damaged = log_path.read_bytes()[:-2]
    log_path.write_bytes(damaged)
    with pytest.raises(TornTailRefused, match="log.1"):
        recover(directory, truncate_torn_tail=False)
    assert log_path.read_bytes() == damaged


def test_torn_tail_in_an_older_log_is_corruption(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    engine = Engine(directory)
    write_some(engine, 0, 5)
    engine.switch()
    write_some(engine, 5, 5)
    engine.close()
    old = directory / "log.1"
    old.write_bytes(old.read_bytes()[:-1])
    with pytest.raises(CorruptLog, match="not the newest"):
        recover(directory)


def test_bad_header_is_corruption(tmp_path: Path) -> None:
    directory, log_path, _, _ = one_log(tmp_path)
    pristine = log_path.read_bytes()
    log_path.write_bytes(encode_header(KIND_LOG, 7) + pristine[HEADER_BYTES:])
    with pytest.raises(CorruptLog, match="generation 7"):
        recover(directory)
    log_path.write_bytes(encode_header(KIND_SNAPSHOT, 1) + pristine[HEADER_BYTES:])
    with pytest.raises(CorruptLog, match="kind"):
        recover(directory)
    log_path.write_bytes(b"XKV1" + pristine[4:])
    with pytest.raises(CorruptLog, match="magic"):
        recover(directory)
    log_path.write_bytes(pristine[:15] + bytes([pristine[15] ^ 1]) + pristine[16:])  # a header payload bit
    with pytest.raises(CorruptLog, match="header record damaged"):
        recover(directory)


# --- generations, snapshots, compaction --------------------------------------------------


def test_snapshots_and_logs_over_several_generations(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    engine = Engine(directory)
    write_some(engine, 0, 30)
    assert engine.compact() == 2
    write_some(engine, 30, 30)
    engine.switch()  # a switch without a snapshot: logs 2 and 3 both replay
    write_some(engine, 60, 10)
    assert engine.compact() == 4
    write_some(engine, 70, 20)
    expected = engine.state()
    engine.close()
    assert sorted(os.listdir(directory)) == ["log.4", "snapshot.4"]
    state, report = recover(directory)
    assert state == expected
    assert report.snapshot_generation == 4 and report.log_generations == [4]
    # And the recovered server keeps going from there.
    engine = Engine(directory)
    write_some(engine, 90, 10)
    engine.compact()
    expected = engine.state()
    engine.close()
    assert recover(directory)[0] == expected


def test_crash_at_each_compaction_step_recovers_old_or_new_state(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    crashes = tmp_path / "crashes"
    engine = Engine(directory)
    write_some(engine, 0, 40)
    engine.compact()  # generation 2: a snapshot.2 to retire later
    write_some(engine, 40, 20)
    expected: dict[str, State] = {}

    def crash_here(step: str) -> None:
        shutil.copytree(directory, crashes / step)
        expected[step] = engine.state()

    crash_here("before switch")
    generation = engine.switch()
    crash_here("switched")
    write_some(engine, 60, 10)  # writes between the switch and the scan
    crash_here("switched and written")
    tmp = engine.write_snapshot(generation)
    write_some(engine, 70, 5)
    crash_here("snapshot written, not renamed")
    shutil.copytree(directory, crashes / "snapshot half written")
    half = crashes / "snapshot half written" / os.path.basename(tmp)
    half.write_bytes(half.read_bytes()[: os.path.getsize(half) // 2])
    expected["snapshot half written"] = expected["snapshot written, not renamed"]
    os.replace(tmp, engine.data_dir.snapshot_path(generation))
    crash_here("renamed, nothing retired")
    os.unlink(engine.data_dir.snapshot_path(generation - 1))
    crash_here("old snapshot deleted, old log not")
    engine.data_dir.retire_before(generation)
    write_some(engine, 75, 5)
    crash_here("retired")
    engine.close()
    for step, state in expected.items():
        recovered, report = recover(crashes / step)
        assert recovered == state, step
        names = sorted(os.listdir(crashes / step))
        assert not any(name.endswith(".tmp") for name in names), step
        if step in ("renamed, nothing retired", "old snapshot deleted, old log not", "retired"):
            assert names == ["log.3", "snapshot.3"], step  # leftovers retired after loading


def test_fuzzy_snapshot_while_writers_run(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    engine = Engine(directory)
    for i in range(3000):
        engine.write(("set", b"base%d" % i, b"%d" % i))
    stop = threading.Event()
    failures: list[BaseException] = []

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            while not stop.is_set():
                key = b"base%d" % rng.randrange(4000)
                action = rng.randrange(5)
                if action == 0:
                    engine.write(("delete", key))
                elif action == 1:
                    engine.write(("set_expire_at", key, NOW_MS + rng.randrange(1, 10**6)))
                elif action == 2:
                    engine.write(("persist", key))
                else:
                    engine.write(("set", key, b"w%d" % rng.randrange(10**6)))
                if rng.randrange(500) == 0:
                    # Grow and shrink the table so the scan crosses resizes.
                    engine.write(*[("set", b"tmp%d" % j, b"t") for j in range(300)])
                    engine.write(*[("delete", b"tmp%d" % j) for j in range(300)])
        except BaseException as error:  # reported by the test thread
            failures.append(error)
            raise

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(3)]
    for thread in threads:
        thread.start()
    try:
        generation = engine.switch()
        engine.data_dir.install_snapshot(engine.write_snapshot(generation), generation)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    expected = engine.state()
    engine.writer.sync()
    engine.close()
    assert os.listdir(directory) != []
    state, report = recover(directory)
    assert report.snapshot_generation == generation
    assert state == expected


# --- expiry, power loss, data dir shape ------------------------------------------------


def test_expired_keys_are_not_resurrected(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    now = [NOW_MS]
    engine = Engine(directory, clock_ms=lambda: now[0])
    engine.write(("set", b"short", b"1", NOW_MS + 10))
    engine.write(("set", b"long", b"2", NOW_MS + 10**6))
    engine.write(("set", b"extended", b"3", NOW_MS + 10))
    engine.write(("set", b"persisted", b"4", NOW_MS + 10))
    now[0] += 5
    # Logged while the keys were live; their first TTL has run out by the
    # restart, and the replay must still find them.
    engine.write(("set_expire_at", b"extended", NOW_MS + 10**6), ("persist", b"persisted"))
    engine.close()
    expected = {
        b"long": (b"2", NOW_MS + 10**6),
        b"extended": (b"3", NOW_MS + 10**6),
        b"persisted": (b"4", -1),
    }
    state, report = recover(directory, now_ms=NOW_MS + 20)
    assert state == expected
    assert report.expired_dropped == 1  # short
    # The same through a snapshot taken while "short" and "snap" were live.
    engine = Engine(directory, clock_ms=lambda: now[0])
    engine.write(("set", b"short", b"1", NOW_MS + 10), ("set", b"snap", b"5", NOW_MS + 15))
    engine.compact()
    engine.close()
    state, report = recover(directory, now_ms=NOW_MS + 20)
    assert report.keys_loaded == 5
    assert state == expected and report.expired_dropped == 2
    state, _ = recover(directory, now_ms=NOW_MS + 2 * 10**6)
    assert state == {b"persisted": (b"4", -1)}


def test_power_loss_keeps_everything_synced(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    engine = Engine(directory)
    write_some(engine, 0, 20)
    engine.writer.sync()
    synced_state = engine.state()
    synced = engine.writer.synced_offset
    write_some(engine, 20, 20)  # written, not fsynced
    engine.close()
    os.truncate(directory / "log.1", synced)  # what a power cut may leave
    assert recover(directory)[0] == synced_state


def test_temporary_files_are_deleted_and_stale_files_retired(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    engine = Engine(directory)
    write_some(engine, 0, 10)
    engine.compact()
    engine.close()
    (directory / "snapshot.9.tmp").write_bytes(b"half")
    (directory / "log.3.tmp").write_bytes(b"")
    (directory / "README").write_bytes(b"not ours")
    _, report = recover(directory)
    assert sorted(os.listdir(directory)) == ["README", "log.2", "snapshot.2"]
    assert len(report.removed_temporary) == 2


def test_missing_generations_refuse_to_start(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    engine = Engine(directory)
    write_some(engine, 0, 5)
    engine.switch()
    engine.switch()
    engine.close()
    os.unlink(directory / "log.2")
    with pytest.raises(InconsistentDataDir, match="log.2 is missing"):
        recover(directory)
    os.unlink(directory / "log.1")
    with pytest.raises(InconsistentDataDir, match="snapshot.3 is missing"):
        recover(directory)


def test_damaged_or_incomplete_snapshot_refuses(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    engine = Engine(directory)
    write_some(engine, 0, 30)
    engine.compact()
    engine.close()
    snapshot = directory / "snapshot.2"
    pristine = snapshot.read_bytes()
    snapshot.write_bytes(pristine[:-1])
    with pytest.raises(CorruptLog, match="snapshot damaged"):
        recover(directory)
    snapshot.write_bytes(pristine[: -(FRAME_BYTES + 9)])  # whole records, END missing
    with pytest.raises(CorruptLog, match="without its END"):
        recover(directory)
    snapshot.write_bytes(pristine[:-1] + bytes([pristine[-1] ^ 4]))
    with pytest.raises(CorruptLog, match="snapshot damaged"):
        recover(directory)


def test_install_snapshot_needs_the_switch_first(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    engine = Engine(directory)
    write_some(engine, 0, 5)
    tmp = engine.write_snapshot(2)
    with pytest.raises(ValueError, match="switch the log"):
        engine.data_dir.install_snapshot(tmp, 2)
    engine.close()
