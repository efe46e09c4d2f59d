"""KRANGE, RANGE and KEYS prefix over the sorted key index, through the
engine (tests/unit/redis_session.py): replies, errors, slicing with writes
between slices, expiry, typed values, MULTI, ``--sorted-index no``, INFO
and CONFIG GET. The bound syntax and errors against redis-server's
ZRANGE BYLEX: tests/integration/test_ordered_keys_server.py."""

from __future__ import annotations

import time

import pytest

from trio_kv.commands.session import Session
from trio_kv.commands.text import TEXT_COMMANDS
from trio_kv.commands.wire import LINE
from trio_kv.config import Config
from trio_kv.protocol.replies import Error
from trio_kv.protocol.text import Listing
from trio_kv.store.engine import Job, run_batch
from trio_kv.store.shared_key_index import SharedKeyIndex
from trio_kv.store.sorted_index import SortedKeyIndex

from .redis_session import call, job, make_session, run


def _with_keys(*keys: bytes, config: Config | None = None):
    session, clock = make_session(config)
    for key in keys:
        assert call(session, [b"SET", key, b"v:" + key]) is not None
    return session, clock


def test_krange_bounds_rev_limit_and_values() -> None:
    session, _ = _with_keys(b"a", b"b", b"c", b"d")
    assert call(session, "KRANGE - +") == [b"a", b"b", b"c", b"d"]
    assert call(session, "KRANGE (a [c") == [b"b", b"c"]
    assert call(session, "KRANGE + - REV") == [b"d", b"c", b"b", b"a"]
    assert call(session, "KRANGE - + REV") == []
    assert call(session, "KRANGE [c (a REV") == [b"c", b"b"]
    assert call(session, "KRANGE - + LIMIT 1 2") == [b"b", b"c"]
    assert call(session, "KRANGE - + LIMIT 1 -1") == [b"b", b"c", b"d"]
    assert call(session, "KRANGE - + LIMIT -1 5") == []
    assert call(session, "KRANGE - + LIMIT 0 0") == []
    assert call(session, "KRANGE - + LIMIT 0 1 LIMIT 2 1") == [b"c"]
    assert call(session, "KRANGE [b [c WITHVALUES") == [b"b", b"v:b", b"c", b"v:c"]
    assert call(session, "KRANGE [d - ") == []
    assert call(session, "krange [ + limit 3 9 withvalues rev") == []


@pytest.mark.parametrize(
    "command, error",
    [
        ("KRANGE a +", "ERR min or max not valid string range item"),
        ("KRANGE - +x", "ERR min or max not valid string range item"),
        ("KRANGE - + LIMIT 1", "ERR syntax error"),
        ("KRANGE - + LIMIT x 1", "ERR value is not an integer or out of range"),
        ("KRANGE - + BYLEX", "ERR syntax error"),
        ("KRANGE a + FOO", "ERR syntax error"),  # options before bounds, as ZRANGE
        ("KRANGE -", "ERR wrong number of arguments for 'krange' command"),
    ],
)
def test_krange_errors_as_zrange_bylex(command: str, error: str) -> None:
    session, _ = _with_keys(b"a")
    assert call(session, command) == Error(error)


def test_krange_skips_expired_keys_and_answers_nil_for_other_types() -> None:
    session, clock = _with_keys(b"a", b"c")
    run(session, "SET b v PX 10", "HSET h f v", "APPEND c " + "x" * 100)
    clock.advance(20)
    # b is still stored (DBSIZE counts it until a write or the sweep removes it)...
    assert call(session, "DBSIZE") == 4 and len(session.store.sorted_index) == 4
    # ... but no read sees it.
    assert call(session, "KRANGE - +") == [b"a", b"c", b"h"]
    assert call(session, "KRANGE - + LIMIT 1 1") == [b"c"]
    reply = call(session, "KRANGE - + WITHVALUES")
    assert [bytes(part) if part is not None else None for part in reply] == [
        b"a", b"v:a", b"c", b"v:c" + b"x" * 100, b"h", None,
    ]


def test_a_sliced_krange_resumes_after_its_last_key_whatever_is_written_between_slices() -> None:
    keys = [b"k%04d" % n for n in range(5000)]
    session, _ = _with_keys(*keys)
    session.store.slice_seconds = 0  # one unit (1,024 keys) a slice
    writer, _ = make_session()
    writer.store = session.store
    one = job(session, "KRANGE - +")
    run_batch(session.store, [one])
    assert one.sliced is not None  # not finished after one unit
    # Between slices: delete keys already walked and keys not yet walked,
    # add keys on both sides.
    run(session, "DEL k0000 k4999", "SET k0000a v", "SET k4998a v")
    slices = 1
    while one.sliced is not None:
        run_batch(session.store, [one])
        slices += 1
    (reply,) = one.replies
    assert slices == 5
    assert reply == sorted(set(keys) - {b"k4999"} | {b"k4998a"})  # in order, no repeat, no loss


def test_krange_inside_multi_runs_whole() -> None:
    session, _ = _with_keys(*[b"k%04d" % n for n in range(3000)])
    session.store.slice_seconds = 0
    replies = run(session, "MULTI", "KRANGE - + LIMIT 2990 -1", "EXEC")
    assert replies[-1] == [[b"k%04d" % n for n in range(2990, 3000)]]


def test_resp_keys_with_a_plain_prefix_uses_the_index() -> None:
    session, _ = _with_keys(b"user:2", b"user:1", b"users", b"usez", b"a*b")
    assert call(session, "KEYS user:*") == [b"user:1", b"user:2"]
    assert sorted(call(session, "KEYS us*")) == [b"user:1", b"user:2", b"users", b"usez"]
    # Not a plain prefix: the glob walk, as before.
    assert sorted(call(session, "KEYS user?*")) == [b"user:1", b"user:2", b"users"]
    assert call(session, "KEYS a\\*b") == [b"a*b"]
    assert isinstance(call(session, "KEYS user:*"), list)
    one = job(session, "KEYS user:*")
    run_batch(session.store, [one])
    assert one.replies == [[b"user:1", b"user:2"]]


def _text(session: Session, line: list[bytes]) -> object:
    text_session = Session(2, session.store, session.control, wire=LINE)
    one = Job(text_session, TEXT_COMMANDS, [line], time.perf_counter())
    run_batch(session.store, [one])
    while one.sliced is not None:
        run_batch(session.store, [one])
    return one.replies[0]


def test_line_range_pages_and_keys_prefix() -> None:
    session, _ = _with_keys(b"a", b"b", b"b\x00", b"c", b"d", b"\xff\xff")
    assert _text(session, [b"RANGE", b"b", b"d"]) == Listing(b"RANGE", [b"b", b"b\x00", b"c"])
    assert _text(session, [b"RANGE", b"", b"", b"2"]) == Listing(b"RANGE", [b"a", b"b"])
    assert _text(session, [b"RANGE", b"b\x00", b""]) == Listing(b"RANGE", [b"b\x00", b"c", b"d", b"\xff\xff"])
    assert _text(session, [b"RANGE", b"a", b"z", b"0"]) == Error("invalid limit (1 to 100000)")
    assert _text(session, [b"RANGE", b"a", b"z", b"100001"]) == Error("invalid limit (1 to 100000)")
    # KEYS keeps its display order (a key shown quoted sorts by its quote).
    assert _text(session, [b"KEYS", b"b"]) == Listing(b"KEYS", [b"b\x00", b"b"])
    assert _text(session, [b"KEYS", b"\xff"]) == Listing(b"KEYS", [b"\xff\xff"])
    assert _text(session, [b"KEYS"]) == Listing(b"KEYS", [b"b\x00", b"a", b"b", b"c", b"d", b"\xff\xff"])


def test_line_keys_still_refuses_more_than_max_keys_reply() -> None:
    config = Config(max_keys_reply=3)
    session, _ = _with_keys(b"p1", b"p2", b"p3", b"p4", b"q", config=config)
    assert _text(session, [b"KEYS", b"p"]) == Error(
        "too many keys (more than 3); use a longer prefix or SCAN over RESP"
    )
    assert _text(session, [b"KEYS", b"q"]) == Listing(b"KEYS", [b"q"])
    assert _text(session, [b"RANGE", b"p", b""]) == Listing(b"RANGE", [b"p1", b"p2", b"p3"])


def test_with_the_index_off_ordered_commands_refuse_and_keys_walks_the_table() -> None:
    config = Config(sorted_index=False)
    session, _ = _with_keys(b"user:1", b"b", config=config)
    assert session.store.sorted_index is None
    assert call(session, "KRANGE - +") == Error("ERR the sorted key index is off (--sorted-index no)")
    assert _text(session, [b"RANGE", b"a", b"z"]) == Error("the sorted key index is off (--sorted-index no)")
    assert call(session, "KEYS user:*") == [b"user:1"]
    assert _text(session, [b"KEYS", b"user"]) == Listing(b"KEYS", [b"user:1"])
    assert call(session, "CONFIG GET sorted-index").pairs == [(b"sorted-index", b"no")]


def test_config_get_and_info_show_the_index() -> None:
    session, _ = _with_keys(b"a", b"b")
    assert call(session, "CONFIG GET sorted-index").pairs == [(b"sorted-index", b"yes")]
    info = call(session, "INFO memory").data.decode()
    assert "sorted_index_keys:2" in info
    index = session.store.sorted_index
    assert index is not None and index.bytes_estimate() > 2  # its own copy of the keys and more
    assert f"sorted_index_bytes:{index.bytes_estimate()}" in info


@pytest.mark.parametrize(("table", "kind"), [("objects", SharedKeyIndex), ("compact", SortedKeyIndex)])
def test_flushall_detaches_the_index_and_it_fills_again(table: str, kind: type) -> None:
    session, _ = _with_keys(*[b"k%05d" % n for n in range(20_000)], config=Config(table=table))
    session.store.slice_seconds = 0
    index = session.store.sorted_index
    assert isinstance(index, kind) and len(index) == 20_000  # the index that suits the table
    assert call(session, "FLUSHALL") is not None
    assert len(index) == 0 and call(session, "KRANGE - +") == []
    run(session, "SET b 1", "SET a 2")
    assert call(session, "KRANGE - +") == [b"a", b"b"]


def test_the_index_is_built_from_a_keyspace_given_to_the_store() -> None:
    from trio_kv.store.keyspace import Keyspace
    from trio_kv.store.store import Store

    keyspace = Keyspace()
    for key in (b"z", b"x", b"y"):
        keyspace.set(key, b"v")
    store = Store(Config(), keyspace)
    assert store.sorted_index is not None
    assert list(store.sorted_index.irange(None, None)) == [b"x", b"y", b"z"]
    assert list(store.sorted_index.irange(b"x", b"z", min_inclusive=False, max_inclusive=False)) == [b"y"]
    assert list(store.sorted_index.irange(None, b"y", reverse=True)) == [b"y", b"x"]
    assert b"x" in store.sorted_index and b"w" not in store.sorted_index and len(store.sorted_index) == 3
