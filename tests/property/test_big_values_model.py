"""Grown values against a Python ``bytes`` model.

* APPEND / SETRANGE / SET / GET / GETRANGE / STRLEN sequences through the
  real command handlers (``run_batch``), in jobs of several commands: every
  reply is checked only after its whole job ran, as replies are encoded, so
  a reply that aliased a buffer a later command wrote would be caught. The
  effects of each command are framed, decoded and replayed into a second
  keyspace, which must hold the same value (PATCH replay is deterministic).
* The fuzzy snapshot: a snapshot may hold each key as of any moment after
  the log switch (or miss it, if expired or deleted then); replaying the log
  since the switch over it must give exactly the final state, PATCH records
  included (Keyspace.apply_patch's argument).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from trio_kv.store.durability.apply import apply_effects
from trio_kv.store.durability.records import FRAME_BYTES, SET, decode_record, encode_record
from trio_kv.store.keyspace import Keyspace

from ..effect_recorder import EffectRecorder
from ..unit.redis_session import make_session, run

KEYS = [b"a", b"b"]
SIZES = [0, 10, 4090, 5000, 600_000]


def model_getrange(value: bytes, start: int, end: int) -> bytes:
    size = len(value)
    if start < 0 and end < 0 and start > end:
        return b""
    if start < 0:
        start = max(0, size + start)
    if end < 0:
        end = max(0, size + end)
    end = min(end, size - 1)
    if start > end or size == 0:
        return b""
    return value[start : end + 1]


def model_write(value: bytes, offset: int, data: bytes) -> bytes:
    if offset > len(value):
        value += bytes(offset - len(value))
    return value[:offset] + data + value[offset + len(data) :]


offsets = st.integers(0, 6000) | st.integers(599_990, 600_300) | st.integers(0, 1_300_000)
data = st.binary(min_size=1, max_size=40) | st.builds(lambda n, b: b * n, st.integers(1, 70_000), st.sampled_from([b"q", b"\x00"]))
command = st.one_of(
    st.tuples(st.just("APPEND"), st.sampled_from(KEYS), data),
    st.tuples(st.just("SETRANGE"), st.sampled_from(KEYS), offsets, data),
    st.tuples(st.just("SET"), st.sampled_from(KEYS), st.sampled_from(SIZES)),
    st.tuples(st.just("GET"), st.sampled_from(KEYS)),
    st.tuples(st.just("GETRANGE"), st.sampled_from(KEYS), st.integers(-700_000, 700_000), st.integers(-700_000, 700_000)),
    st.tuples(st.just("STRLEN"), st.sampled_from(KEYS)),
    st.tuples(st.just("DEL"), st.sampled_from(KEYS)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(command, min_size=1, max_size=8), min_size=1, max_size=8))
def test_commands_match_a_bytes_model_and_replay_the_same(jobs: list[list[tuple]]) -> None:
    session, _clock = make_session()
    keyspace = session.keyspace
    recorder = EffectRecorder(keyspace)
    replayed = Keyspace()
    model: dict[bytes, bytes] = {}
    for job in jobs:
        requests: list[list[bytes]] = []
        expected: list[object] = []
        for name, key, *rest in job:
            current = model.get(key)
            if name == "APPEND":
                model[key] = (current or b"") + rest[0]
                requests.append([b"APPEND", key, rest[0]])
                expected.append(len(model[key]))
            elif name == "SETRANGE":
                offset, patch = rest
                model[key] = model_write(current or b"", offset, patch)
                requests.append([b"SETRANGE", key, b"%d" % offset, patch])
                expected.append(len(model[key]))
            elif name == "SET":
                model[key] = b"s" * rest[0]
                requests.append([b"SET", key, model[key]])
                expected.append(None)  # OK, not compared
            elif name == "GET":
                requests.append([b"GET", key])
                expected.append(current)
            elif name == "GETRANGE":
                start, end = rest
                requests.append([b"GETRANGE", key, b"%d" % start, b"%d" % end])
                expected.append(model_getrange(current or b"", start, end))
            elif name == "STRLEN":
                requests.append([b"STRLEN", key])
                expected.append(len(current or b""))
            else:
                model.pop(key, None)
                requests.append([b"DEL", key])
                expected.append(int(current is not None))
        replies = run(session, *requests)
        # Checked only now, after the whole job, as a connection encodes them.
        for reply, want, request in zip(replies, expected, requests):
            if request[0] != b"SET":
                got = bytes(reply) if isinstance(reply, memoryview) else reply
                assert got == want, request[:2]
        effects = recorder.take()
        if effects:
            record = encode_record(effects)
            apply_effects(replayed, decode_record(record[FRAME_BYTES:]))
        for key in KEYS:
            assert keyspace.get(key) == model.get(key)
            assert replayed.get(key) == model.get(key)
        assert keyspace.value_bytes == sum(len(value) for value in model.values())
        assert replayed.value_bytes == keyspace.value_bytes


# --- the fuzzy snapshot ---------------------------------------------------------

keyspace_op = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(KEYS), st.sampled_from([3, 5000]), st.sampled_from([None, 3, 30, 1000])),
    st.tuples(st.just("append"), st.sampled_from(KEYS), data),
    st.tuples(st.just("setrange"), st.sampled_from(KEYS), st.integers(0, 12_000), data),
    st.tuples(st.just("delete"), st.sampled_from(KEYS)),
    st.tuples(st.just("set_expire_at"), st.sampled_from(KEYS), st.sampled_from([-5, 4, 40, 2000])),
    st.tuples(st.just("persist"), st.sampled_from(KEYS)),
)

State = dict[bytes, tuple[bytes, int | None]]


def live_state(keyspace: Keyspace) -> State:
    """What a snapshot chunk reads: live keys, their value and expiry."""
    state = {}
    for key in KEYS:
        value = keyspace.get(key)
        if value is not None:
            at_ms = keyspace.expire_at_ms(key)
            state[key] = (value, None if at_ms == -1 else at_ms)
    return state


def apply_op(keyspace: Keyspace, now: int, op: tuple) -> None:
    name, key, *rest = op
    if name == "set":
        size, ttl = rest
        keyspace.set(key, b"v" * size, None if ttl is None else now + ttl)
    elif name == "append":
        keyspace.append(key, rest[0])
    elif name == "setrange":
        keyspace.setrange(key, rest[0], rest[1])
    elif name == "set_expire_at":
        keyspace.set_expire_at(key, now + rest[0])
    else:
        getattr(keyspace, name)(key)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(keyspace_op, max_size=6),
    st.lists(keyspace_op, min_size=1, max_size=14),
    st.lists(st.integers(0, 14), min_size=len(KEYS), max_size=len(KEYS)),
)
def test_log_replayed_over_a_fuzzy_snapshot_gives_the_final_state(before: list, after: list, seen_at: list[int]) -> None:
    clock = [1000]
    keyspace = Keyspace(clock_ms=lambda: clock[0])
    recorder = EffectRecorder(keyspace)
    for op in before:
        clock[0] += 1
        apply_op(keyspace, clock[0], op)
        recorder.take()
    # The log switch: what is emitted from here on is the new log.
    states = [live_state(keyspace)]
    log: list[bytes] = []
    for op in after:
        clock[0] += 1
        apply_op(keyspace, clock[0], op)
        effects = recorder.take()
        if effects:
            log.append(encode_record(effects))
        states.append(live_state(keyspace))
    clock[0] += 1
    final = live_state(keyspace)

    # Each key as the snapshot's scan happened to read it: at any moment since the switch.
    snapshot = []
    for key, index in zip(KEYS, seen_at):
        state = states[min(index, len(states) - 1)]
        if key in state:
            value, at_ms = state[key]
            snapshot.append((SET, key, value, at_ms))
    recovered = Keyspace(clock_ms=lambda: clock[0])
    with recovered.expiry_paused():
        if snapshot:
            apply_effects(recovered, decode_record(encode_record(snapshot)[FRAME_BYTES:]))
        for record in log:
            apply_effects(recovered, decode_record(record[FRAME_BYTES:]))
    recovered.purge_expired()
    assert live_state(recovered) == final
