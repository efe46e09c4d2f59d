"""Growable values (store/growable.py): the growth policy, in-place writes,
and the aliasing rules: a view handed out never changes."""

from __future__ import annotations

import mmap

from trio_kv.store.growable import MAPPED_MIN_BYTES, Growable, capacity_for
from trio_kv.store.keyspace import Keyspace

from ..effect_recorder import EffectRecorder

MIB = 1024 * 1024


def test_capacity_doubles_below_one_mib_and_adds_one_mib_above() -> None:
    assert capacity_for(10) == 20
    assert capacity_for(MIB - 1) == 2 * (MIB - 1)
    assert capacity_for(MIB) == 2 * MIB
    assert capacity_for(5 * MIB) == 6 * MIB


def test_appends_within_capacity_write_in_place() -> None:
    value = Growable(b"abc", 100)
    buffer = value.buffer
    for _ in range(97):
        value.write(len(value), b"x")
    assert value.buffer is buffer
    assert value.tobytes() == b"abc" + b"x" * 97


def test_a_view_never_sees_a_later_append_or_setrange() -> None:
    value = Growable(b"hello", 64)
    first = value.view()
    value.write(5, b" world")  # into spare capacity: the view's bytes are untouched
    second = value.view()
    value.write(0, b"J")  # inside the visible part while views exist: copy first
    value.write(200, b"!")  # past the capacity: a new buffer
    assert bytes(first) == b"hello"
    assert bytes(second) == b"hello world"
    assert value.tobytes() == b"Jello world" + bytes(189) + b"!"
    assert first.readonly


def test_setrange_inside_an_unshared_value_writes_in_place() -> None:
    value = Growable(b"abcdef", 6)
    buffer = value.buffer
    value.write(1, b"ZZ")
    assert value.buffer is buffer and value.tobytes() == b"aZZdef"


def test_big_buffers_are_maps_that_grow_without_a_copy_when_unviewed() -> None:
    value = Growable(b"a" * MAPPED_MIN_BYTES, capacity_for(MAPPED_MIN_BYTES))
    assert type(value.buffer) is mmap.mmap
    buffer = value.buffer
    value.write(len(value), b"b" * (2 * MIB))  # past the capacity, no view alive: mremap
    assert value.buffer is buffer and len(value) == 3 * MIB
    view = value.view()
    value.write(len(value), b"c" * (2 * MIB))  # a view holds the map: a new one
    assert value.buffer is not buffer
    assert len(view) == 3 * MIB and bytes(view[-1:]) == b"b"
    del view
    shared_buffer = value.buffer
    value.view().release()
    value.write(0, b"Z")  # the map proves no view is alive: no copy
    assert value.buffer is shared_buffer and value.tobytes()[:2] == b"Za"


def test_keyspace_byte_counts_follow_grown_values() -> None:
    keyspace = Keyspace()
    keyspace.set(b"k", b"x" * 5000)
    assert keyspace.append(b"k", b"y") == 5001
    assert keyspace.value_bytes == 5001
    assert keyspace.grown_capacity_bytes == capacity_for(5001)
    assert keyspace.setrange(b"k", 20_000, b"z") == 20_001
    assert keyspace.value_bytes == 20_001
    assert keyspace.grown_capacity_bytes == capacity_for(20_001)
    assert type(keyspace.get(b"k")) is bytes
    assert type(keyspace.get_view(b"k")) is memoryview
    assert keyspace.value_length(b"k") == 20_001
    keyspace.set(b"k", b"small")
    assert (keyspace.value_bytes, keyspace.grown_capacity_bytes) == (5, 0)
    keyspace.append(b"k", b"." * 5000)
    assert keyspace.delete(b"k")
    assert (keyspace.value_bytes, keyspace.grown_capacity_bytes) == (0, 0)


def test_effects_hold_the_request_not_the_value() -> None:
    keyspace = Keyspace(clock_ms=lambda: 1000)
    recorder = EffectRecorder(keyspace)
    keyspace.set(b"k", b"v" * 10_000, 5000)
    recorder.take()
    keyspace.append(b"k", b"tail")
    keyspace.setrange(b"k", 3, b"mid")
    keyspace.setrange(b"new", 100, b"x")
    keyspace.append(b"fresh", b"abc")
    assert recorder.take() == [
        ("PATCH", b"k", 10_000, 10_000, b"tail", 5000),
        ("PATCH", b"k", 10_004, 3, b"mid", 5000),
        ("PATCH", b"new", 0, 100, b"x", None),
        ("SET", b"fresh", b"abc", None),
    ]


def test_info_memory_reports_the_grown_capacity() -> None:
    from .redis_session import call, make_session

    session, _clock = make_session()
    call(session, [b"SET", b"k", b"x" * 5000])
    call(session, [b"APPEND", b"k", b"y"])
    text = call(session, "INFO memory")
    text = bytes(text.data if hasattr(text, "data") else text).decode()
    assert f"used_memory_grown_values_capacity:{capacity_for(5001)}\r\n" in text
    assert "used_memory_values:5001\r\n" in text


def test_every_reader_handles_a_grown_value(tmp_path) -> None:
    """Readers other than the string commands: the line protocol's GET and
    display rule, HTTP GET /key, the RESP encoder, RENAME, a snapshot."""
    from trio_kv.commands import text as text_commands
    from trio_kv.protocol.text import encode_text_reply
    from trio_kv.http.routes import HttpApi, HttpRequest
    from trio_kv.protocol.replies import OK
    from trio_kv.protocol.resp_encoder import encode_reply
    from trio_kv.store.durability.snapshot import keyspace_chunks, load_snapshot, write_snapshot
    from trio_kv.store.durability.apply import apply_effects

    from .redis_session import call, make_session

    session, _clock = make_session()
    value = b'"q' + b"\n" * 4998
    call(session, [b"SET", b"k", value])
    call(session, [b"APPEND", b"k", b"\t"])
    value += b"\t"
    view = session.keyspace.get_view(b"k")
    assert type(view) is memoryview
    # The line protocol: a value starting with a quote is escaped.
    line = encode_text_reply(text_commands.cmd_get(session, [b"GET", b"k"]))
    assert line == b'VALUE "\\"q' + b"\\n" * 4998 + b'\\t"\n'
    # HTTP: a stored value that is not JSON reads as a JSON string.
    api = HttpApi(check_host=False, render_metrics=lambda: b"", not_ready_reason=lambda: None)
    plan = api.handle(HttpRequest(b"GET", b"/key/k", [(b"host", b"localhost")], b"")).plan
    assert plan.then([view]).status == 200
    assert plan.then([view]).body == plan.then([value]).body
    # RESP: a view encodes as the bulk string of its bytes.
    assert encode_reply(view, 2) == encode_reply(value, 2)
    assert encode_reply([view, None], 3) == encode_reply([value, None], 3)
    # RENAME moves the value (as bytes: a view is never stored).
    assert call(session, "RENAME k moved") == OK
    assert session.keyspace.get(b"moved") == value
    call(session, [b"APPEND", b"moved", b"!"])
    # A snapshot writes the view's bytes and loads back.
    path = tmp_path / "snapshot.1"
    write_snapshot(path, keyspace_chunks(session.keyspace, session.store.lock), 1)
    loaded = Keyspace()
    load_snapshot(path, lambda effects: apply_effects(loaded, effects), generation=1)
    assert loaded.get(b"moved") == value + b"!"
