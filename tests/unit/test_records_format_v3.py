"""Format version 3: the UPDATE effect (a change to a value that is not a
string, a hash today), its replay over fuzzy snapshots, and compatibility
with version-2 files written by the previous build (records.py "Versions")."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from trio_kv.commands.hash_value import HashUpdate, HashValue
from trio_kv.store.durability.apply import apply_effects, load_keyspace
from trio_kv.store.durability.reader import CorruptLog, RecordReader
from trio_kv.store.durability.records import (
    FORMAT_VERSION,
    FRAME_BYTES,
    KIND_LOG,
    RecordFormatError,
    decode_record,
    encode_record,
    record_parts,
)
from trio_kv.store.durability.data_dir import DataDir
from trio_kv.store.durability.snapshot import snapshot_chunk
from trio_kv.store.keyspace import Keyspace

from ..effect_recorder import EffectRecorder

# Written by the version-2 build (commit 9bc7117's records.py): a log.1 with
# SET k hello; PATCH k (APPEND " world"); then SET t x (expiring 2030-03-17); DEL gone.
V2_LOG = bytes.fromhex(
    "544b56310a00000040a750854c0201000000000000002f0000001e1dfa1b01010000006b0500000068656c6c6f08010000006b0500"
    "00000000000005000000000000000600000020776f726c641c0000004e810e1f020038d360ba010000010000007401000000780304"
    "000000676f6e65"
)
# And a snapshot.1 holding SET s snap and END 1.
V2_SNAPSHOT = bytes.fromhex(
    "544b56310a000000257df553530201000000000000000e0000005c7266cb01010000007304000000736e617009000000f979c24e07"
    "0100000000000000"
)

UPDATES = [
    ("UPDATE", b"h", HashValue.TYPE_CODE, True, HashUpdate([(b"a", b"1"), (b"", b"")]).encode(), None),
    ("UPDATE", b"h2", HashValue.TYPE_CODE, False, HashUpdate([(b"f", b"v")], [b"x"]).encode(), 1_900_000_000_000),
]


def _fields(keyspace: Keyspace) -> dict[bytes, object]:
    return {
        key: (dict(value.fields) if isinstance(value, HashValue) else bytes(value), keyspace.expire_at_ms(key))
        for key, value in keyspace.live_items()
    }


def test_update_effects_round_trip() -> None:
    record = encode_record(UPDATES)
    assert decode_record(record[FRAME_BYTES:]) == UPDATES
    assert b"".join(record_parts(UPDATES)) == record


def test_an_update_cut_short_is_a_format_error() -> None:
    payload = encode_record([UPDATES[1]])[FRAME_BYTES:]
    for cut in range(1, len(payload)):
        with pytest.raises(RecordFormatError):
            decode_record(payload[:cut])


def test_a_version_2_file_may_not_hold_an_update() -> None:
    payload = encode_record([UPDATES[0]])[FRAME_BYTES:]
    with pytest.raises(RecordFormatError, match="version 2"):
        decode_record(payload, 2)


def test_version_2_files_load_and_appends_go_to_a_new_version_3_log(tmp_path: Path) -> None:
    (tmp_path / "snapshot.1").write_bytes(V2_SNAPSHOT)
    (tmp_path / "log.1").write_bytes(V2_LOG)
    keyspace = Keyspace(clock_ms=lambda: 1_700_000_000_000)
    report = load_keyspace(DataDir(tmp_path), keyspace)
    assert _fields(keyspace) == {
        b"s": (b"snap", -1), b"k": (b"hello world", -1), b"t": (b"x", 1_900_000_000_000),
    }
    assert report.upgraded_from_version == 2 and report.current_generation == 2
    assert (tmp_path / "log.1").read_bytes() == V2_LOG  # never appended to
    with RecordReader(tmp_path / "log.2", expect_kind=KIND_LOG, expect_generation=2) as reader:
        assert reader.header.version == FORMAT_VERSION and list(reader) == []

    data_dir = DataDir(tmp_path)
    data_dir.replay(lambda effects: None)
    writer = data_dir.open_log_for_append()
    writer.append(encode_record([UPDATES[0]]))
    writer.close()
    again = Keyspace(clock_ms=lambda: 1_700_000_000_000)
    load_keyspace(DataDir(tmp_path), again)
    assert _fields(again)[b"h"] == ({b"a": b"1", b"": b""}, -1)


def test_an_update_of_an_unknown_type_is_corruption(tmp_path: Path) -> None:
    data_dir = DataDir(tmp_path)
    data_dir.replay(lambda effects: None)
    writer = data_dir.open_log_for_append()
    writer.append(encode_record([("UPDATE", b"h", 200, True, b"", None)]))
    writer.append(encode_record([("DEL", b"h")]))
    writer.close()
    with pytest.raises((CorruptLog, RecordFormatError), match="unknown value type"):
        load_keyspace(DataDir(tmp_path), Keyspace())


def _random_hash_ops(rng: random.Random, keyspace: Keyspace, count: int) -> None:
    """Writes through the keyspace's public methods, as the handlers make them."""
    keys = [b"h1", b"h2", b"s"]
    fields = [b"a", b"b", b"c", b"d"]
    for _ in range(count):
        key = rng.choice(keys)
        kind = rng.randrange(10)
        try:
            if kind < 5:
                pairs = [(rng.choice(fields), b"%d" % rng.randrange(100)) for _ in range(rng.randrange(1, 3))]
                keyspace.update(key, HashUpdate(pairs))
            elif kind < 7:
                keyspace.update(key, HashUpdate(deleted=rng.sample(fields, rng.randrange(1, 4))))
            elif kind == 7:
                keyspace.set(key, b"string")
            elif kind == 8:
                keyspace.delete(key)
            else:
                keyspace.set_expire_at(key, keyspace.now_ms() + rng.choice([-1, 5, 1000]))
        except Exception as error:  # WrongType: nothing changed, nothing emitted
            assert type(error).__name__ == "WrongType"
        if rng.randrange(8) == 0:
            keyspace.rename(key, rng.choice(keys)) if keyspace.exists(key) else None


@pytest.mark.parametrize("seed", range(20))
def test_replaying_the_log_over_a_snapshot_taken_at_any_moment_is_exact(seed: int) -> None:
    """The fuzzy-snapshot argument of Keyspace.apply_update: the log from the
    switch, replayed over a state taken at any later moment, ends exact."""
    rng = random.Random(seed)
    now = [1_000]
    live = Keyspace(clock_ms=lambda: now[0])
    _random_hash_ops(rng, live, 30)  # the state at the log switch
    start = _fields(live)
    recorder = EffectRecorder(live)
    records: list[list[tuple[object, ...]]] = []
    states = [start]
    for _ in range(40):
        _random_hash_ops(rng, live, 1)
        now[0] += rng.choice([0, 3, 10])
        records.append(recorder.take())
        states.append({key: value for key, value in _fields(live).items()})
    final = _fields(live)
    for moment in range(len(records) + 1):
        # A snapshot holding every key as it was at `moment`, then the whole log.
        replayed = Keyspace(clock_ms=lambda: now[0])
        with replayed.expiry_paused():
            for key, (value, at_ms) in states[moment].items():
                expire = None if at_ms == -1 else at_ms
                if isinstance(value, dict):
                    replayed.apply_update(key, HashUpdate(list(value.items())), True, expire)
                else:
                    replayed.set(key, value, expire)
            for effects in records:
                apply_effects(replayed, effects)
        replayed.purge_expired()
        assert _fields(replayed) == final, moment


def test_a_snapshot_chunk_holds_a_hash_as_one_created_update() -> None:
    keyspace = Keyspace()
    keyspace.update(b"h", HashUpdate([(b"f", b"v")]))
    keyspace.set(b"s", b"str")
    _, items = snapshot_chunk(keyspace, 0, 100)
    assert sorted(items, key=lambda item: item[0]) == [
        (b"h", (HashValue.TYPE_CODE, HashUpdate([(b"f", b"v")]).encode()), None),
        (b"s", b"str", None),
    ]
