"""Every-prefix property of the log: a log cut at ANY byte length recovers
to exactly the state after its longest whole-record prefix, and nothing but
the documented torn-tail handling happens (no exception, the file truncated
to that record boundary, the next recovery clean).

The header rule: a log cut inside its header is a torn tail of an empty log:
it recovers empty, and the file is replaced by an empty log (its header
only)."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from trio_kv.store.durability.apply import load_keyspace
from trio_kv.store.durability.reader import RecordReader
from trio_kv.store.durability.records import HEADER_BYTES, KIND_LOG, encode_header, encode_record
from trio_kv.store.durability.data_dir import DataDir
from trio_kv.store.keyspace import Keyspace

NOW_MS = 1_700_000_000_000

State = dict[bytes, tuple[bytes, int]]


def state_of(keyspace: Keyspace) -> State:
    return {key: (value, keyspace.expire_at_ms(key)) for key, value in keyspace.live_items()}


def run_ops(ops: list[list[tuple]]) -> tuple[bytes, list[int], list[State]]:
    """Apply each group of keyspace calls as one record; returns the log
    bytes, the record end offsets, and the state after each record."""
    keyspace = Keyspace(clock_ms=lambda: NOW_MS)
    keyspace.journal = []
    data = bytearray(encode_header(KIND_LOG, 1))
    boundaries = [len(data)]
    states = [state_of(keyspace)]
    for group in ops:
        for name, *args in group:
            getattr(keyspace, name)(*args)
        effects = keyspace.take_journal()
        if not effects:
            continue
        data += encode_record(effects)
        boundaries.append(len(data))
        states.append(state_of(keyspace))
    return bytes(data), boundaries, states


FIXED_OPS = [
    [("set", b"a", b"1")],
    [("set", b"b", b"two", NOW_MS + 10_000)],
    [("set", b"c", b"x" * 200)],
    [("set_expire_at", b"a", NOW_MS + 5_000)],
    [("persist", b"b")],
    [("delete", b"c")],
    [("set", b"a", b"11", None, True)],  # KEEPTTL
    [("set", b"m1", b"1"), ("set", b"m2", b"2"), ("set", b"m3", b"3")],  # one MSET / MULTI
    [("set_expire_at", b"m1", NOW_MS - 1)],  # a past time deletes
    [("clear",)],
    [("set", b"after-clear", b"\x00" * 40)],
    [("pop", b"after-clear")],
    [("set", b"last", b"value", NOW_MS + 1)],
    # PATCH records (APPEND / SETRANGE), with and without a TTL (the record
    # is the same for a grown value: test_big_values_model replays those).
    [("append", b"last", b"+more")],
    [("set", b"grown", b"g" * 50)],
    [("append", b"grown", b"tail")],
    [("setrange", b"grown", 70, b"far")],
    [("setrange", b"grown", 1, b"in")],
    [("setrange", b"fresh", 30, b"zeros before")],
    [("append", b"grown", b"x"), ("setrange", b"fresh", 0, b"F")],  # one MULTI
]


def recover_state(directory: Path) -> State:
    keyspace = Keyspace(clock_ms=lambda: NOW_MS)
    load_keyspace(DataDir(directory), keyspace)
    return state_of(keyspace)


def test_every_prefix_of_a_log_recovers_the_longest_whole_prefix(tmp_path: Path) -> None:
    data, boundaries, states = run_ops(FIXED_OPS)
    assert len(states) == len(FIXED_OPS) + 1
    directory = tmp_path / "data"
    directory.mkdir()
    log_path = directory / "log.1"
    for length in range(len(data) + 1):
        log_path.write_bytes(data[:length])
        whole = max((i for i, end in enumerate(boundaries) if end <= length), default=0)
        state = recover_state(directory)
        assert state == states[whole], length
        good_length = boundaries[whole] if length >= HEADER_BYTES else HEADER_BYTES
        assert os.path.getsize(log_path) == good_length, length
        # Recovering the truncated file again is clean and gives the same state.
        keyspace = Keyspace(clock_ms=lambda: NOW_MS)
        report = load_keyspace(DataDir(directory), keyspace)
        assert report.truncated == []
        assert state_of(keyspace) == states[whole]
        if length in (0, HEADER_BYTES - 1, len(data) - 1):
            # Appending after the repair continues a valid log.
            data_dir = DataDir(directory)
            data_dir.replay(lambda effects: None)
            log_writer = data_dir.open_log_for_append()
            log_writer.append(encode_record([("SET", b"new", b"1", None)]))
            log_writer.close()
            state = recover_state(directory)
            assert state == {**states[whole], b"new": (b"1", -1)}


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(
            st.one_of(
                st.tuples(st.just("set"), st.sampled_from([b"k1", b"k2", b"k3"]), st.binary(max_size=20)),
                st.tuples(st.just("set"), st.sampled_from([b"k1", b"k2"]), st.binary(max_size=5), st.integers(NOW_MS + 1, NOW_MS + 10**6)),
                st.tuples(st.just("delete"), st.sampled_from([b"k1", b"k2", b"k3"])),
                st.tuples(st.just("set_expire_at"), st.sampled_from([b"k1", b"k2"]), st.integers(NOW_MS - 10, NOW_MS + 10**6)),
                st.tuples(st.just("persist"), st.sampled_from([b"k1", b"k2"])),
                st.tuples(st.just("clear")),
                st.tuples(st.just("append"), st.sampled_from([b"k1", b"k2", b"k3"]), st.binary(min_size=1, max_size=8)),
                st.tuples(st.just("setrange"), st.sampled_from([b"k1", b"k2"]), st.integers(0, 30), st.binary(min_size=1, max_size=8)),
            ),
            min_size=1,
            max_size=3,
        ),
        min_size=1,
        max_size=10,
    )
)
def test_reader_sees_exactly_the_whole_records_of_every_prefix(tmp_path_factory, ops: list[list[tuple]]) -> None:
    data, boundaries, _ = run_ops(ops)
    path = tmp_path_factory.mktemp("prefix") / "log.1"
    path.write_bytes(data)
    # Cut the same file shorter and shorter: every length is checked once.
    for length in range(len(data), -1, -1):
        os.truncate(path, length)
        with RecordReader(path, expect_kind=KIND_LOG, expect_generation=1) as reader:
            offsets = [offset for offset, _ in reader]
        whole = [end for end in boundaries[1:] if end <= length]
        assert boundaries[: len(whole)] == offsets
        at_boundary = length in boundaries
        assert (reader.torn is None) == at_boundary, length
        assert reader.good_offset == (max(b for b in boundaries if b <= length) if length >= HEADER_BYTES else 0)
