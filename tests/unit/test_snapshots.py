"""SNAPSHOT and its subcommands through the engine (redis_session.py), and
the store-level API (Store.open_snapshot) the embedded library uses."""

from __future__ import annotations

import pytest

from trio_kv.config import Config
from trio_kv.protocol.replies import Error
from trio_kv.store.snapshots import SnapshotExpired

from .redis_session import call, make_session, run

EXPIRED = Error("ERR snapshot expired")


def indexed_session(config: Config | None = None):
    """A session on a store with the sorted key index (on by default)."""
    session, clock = make_session(config)
    assert session.store.sorted_index is not None
    return session, clock


class FakeSeconds:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def test_a_snapshot_reads_the_keyspace_as_it_was_when_opened():
    session, _ = indexed_session()
    run(session, "SET a 1", "SET b 2", "HSET h f v", "SET gone x")
    snapshot_id = call(session, "SNAPSHOT")
    assert isinstance(snapshot_id, int)
    run(session, "SET a 10", "DEL b", "SET c 3", "APPEND gone more", "DEL gone", "HSET h f w", "FLUSHALL")
    replies = run(
        session,
        f"SNAPSHOT GET {snapshot_id} a", f"SNAPSHOT GET {snapshot_id} b", f"SNAPSHOT GET {snapshot_id} c",
        f"SNAPSHOT GET {snapshot_id} gone", f"SNAPSHOT GET {snapshot_id} h",
        f"SNAPSHOT RANGE {snapshot_id} - +", f"SNAPSHOT RANGE {snapshot_id} (a [h WITHVALUES",
        f"SNAPSHOT RANGE {snapshot_id} + - ", f"SNAPSHOT RANGE {snapshot_id} - + LIMIT 1 2",
    )
    assert replies[:4] == [b"1", b"2", None, b"x"]
    assert replies[4] == Error("WRONGTYPE Operation against a key holding the wrong kind of value")
    assert replies[5] == [b"a", b"b", b"gone", b"h"]
    assert replies[6] == [b"b", b"2", b"gone", b"x", b"h", None]
    assert replies[7] == []
    assert replies[8] == [b"b", b"gone"]
    assert run(session, "GET a", "DBSIZE") == [None, 0]


def test_ttls_are_judged_at_the_snapshots_time():
    session, clock = indexed_session()
    run(session, "SET short x PX 100", "SET long y PX 100000", "SET dead z PX 10")
    clock.advance(20)  # dead expired before the snapshot
    snapshot_id = call(session, "SNAPSHOT")
    clock.advance(1000)  # short expires after it
    assert run(session, f"SNAPSHOT GET {snapshot_id} short", f"SNAPSHOT GET {snapshot_id} dead", "GET short") == [
        b"x", None, None,
    ]
    assert call(session, f"SNAPSHOT RANGE {snapshot_id} - +") == [b"long", b"short"]


def test_release_unknown_and_errors():
    session, _ = indexed_session()
    snapshot_id = call(session, "SNAPSHOT")
    assert run(
        session, f"SNAPSHOT RANGE {snapshot_id} a b", f"SNAPSHOT RANGE {snapshot_id} [a [b LIMIT x 1",
        f"SNAPSHOT RANGE {snapshot_id} [a [b FOO", "SNAPSHOT GET nope k",
    ) == [
        Error("ERR min or max not valid string range item"), Error("ERR value is not an integer or out of range"),
        Error("ERR syntax error"), Error("ERR value is not an integer or out of range"),
    ]
    assert run(session, f"SNAPSHOT RELEASE {snapshot_id}", f"SNAPSHOT RELEASE {snapshot_id}") == [1, 0]
    assert call(session, f"SNAPSHOT GET {snapshot_id} k") == Error("ERR no such snapshot")
    run(session, "SET k v")  # the next write drops the released snapshot's log
    assert session.keyspace.undo_log is None


def test_ids_are_the_connections_own():
    session, _ = indexed_session()
    other, _ = make_session()
    other.store = session.store  # type: ignore[misc]
    snapshot_id = call(session, "SNAPSHOT")
    assert session.snapshots and not other.snapshots
    session.release_snapshots()  # what a closing connection does
    assert call(session, f"SNAPSHOT GET {snapshot_id} k") == Error("ERR no such snapshot")
    assert session.keyspace.snapshots.statistics()["snapshots_open"] == 0


def test_reset_releases_the_connections_snapshots():
    session, _ = indexed_session()
    snapshot_id = call(session, "SNAPSHOT")
    call(session, "RESET")
    assert call(session, f"SNAPSHOT GET {snapshot_id} k") == Error("ERR no such snapshot")


def test_past_the_undo_bytes_limit_the_oldest_snapshot_expires():
    session, _ = indexed_session(Config(snapshot_max_undo_bytes=2000))
    run(session, *(f"SET k{i} {'v' * 50}" for i in range(40)))
    old = call(session, "SNAPSHOT")
    run(session, *(f"SET k{i} w" for i in range(5)))
    assert call(session, f"SNAPSHOT GET {old} k1") == b"v" * 50
    run(session, *(f"SET k{i} w" for i in range(40)))  # about 40 * 170 undo bytes
    assert run(session, f"SNAPSHOT GET {old} k1", f"SNAPSHOT RANGE {old} - +") == [EXPIRED, EXPIRED]
    statistics = session.keyspace.snapshots.statistics()
    assert statistics["snapshots_expired"] == 1 and statistics["snapshot_undo_bytes"] <= 2000
    fresh = call(session, "SNAPSHOT")  # a new one works
    assert call(session, f"SNAPSHOT GET {fresh} k1") == b"w"


def test_an_idle_snapshot_expires():
    session, _ = indexed_session(Config(snapshot_idle_timeout_seconds=30))
    seconds = FakeSeconds()
    session.keyspace.snapshots.clock_s = seconds
    used, idle = call(session, "SNAPSHOT"), call(session, "SNAPSHOT")
    seconds.now_s += 20
    assert call(session, f"SNAPSHOT GET {used} k") is None
    seconds.now_s += 20
    assert run(session, f"SNAPSHOT GET {used} k", f"SNAPSHOT GET {idle} k") == [None, EXPIRED]
    seconds.now_s += 31
    session.keyspace.snapshots.maintain()  # the expiry cycle: nobody reads it
    assert call(session, f"SNAPSHOT GET {used} k") == EXPIRED
    assert session.keyspace.undo_log is None


def test_info_reports_snapshots():
    session, _ = indexed_session()
    seconds = FakeSeconds()
    session.keyspace.snapshots.clock_s = seconds
    call(session, "SET a 1")
    call(session, "SNAPSHOT")
    seconds.now_s += 2.5
    call(session, "SET a 2")
    info = call(session, "INFO stats").data.decode()  # type: ignore[attr-defined]
    assert "snapshots_open:1\r\n" in info
    assert "snapshot_oldest_age_seconds:2.5\r\n" in info
    assert "snapshot_undo_bytes:" in info and "snapshot_undo_bytes:0\r\n" not in info


def test_a_big_range_runs_in_slices_and_stays_exact():
    session, _ = indexed_session()
    session.store.slice_seconds = 0  # one unit a slice
    run(session, *(f"SET k{i:05d} {i}" for i in range(3000)))
    snapshot_id = call(session, "SNAPSHOT")
    from .redis_session import job
    from trio_kv.store.engine import run_batch

    one = job(session, f"SNAPSHOT RANGE {snapshot_id} - + WITHVALUES")
    run_batch(session.store, [one])
    hops = 1
    while one.sliced is not None:
        # Writers run between slices: deletes, rewrites and new keys.
        run(session, f"DEL k{hops:05d}", f"SET k{2999 - hops:05d} changed", f"SET new{hops} x")
        run_batch(session.store, [one])
        hops += 1
    assert hops > 3
    reply = one.replies[0]
    assert reply[0::2] == [b"k%05d" % i for i in range(3000)]
    assert reply[1::2] == [b"%d" % i for i in range(3000)]


def test_in_cluster_mode_snapshot_is_refused():
    session, _ = make_session(Config(cluster_enabled=True))
    assert call(session, "SNAPSHOT") == Error("ERR SNAPSHOT is not available in cluster mode")


def test_the_store_level_api():
    session, _ = indexed_session()
    store = session.store
    run(session, "SET a 1", "SET b 2")
    with store.open_snapshot() as snapshot:
        run(session, "SET a 3", "DEL b", "SET c 4")
        assert snapshot.get(b"a") == b"1" and snapshot.get(b"b") == b"2" and snapshot.get(b"c") is None
        assert snapshot.range(None, None) == [b"a", b"b"]
        assert snapshot.range(b"a", None, min_inclusive=False, reverse=True) == [b"b"]
        assert snapshot.changed_since([b"a"]) and snapshot.changed_since([b"c"])
        assert not snapshot.changed_since([b"zz"])
        assert snapshot.changed_in_range(b"c", b"d") and not snapshot.changed_in_range(b"d", None)
    with pytest.raises(SnapshotExpired):
        snapshot.get(b"a")
    run(session, "SET a 5")
    assert session.keyspace.undo_log is None


def test_no_snapshot_open_no_undo_log():
    session, _ = make_session()
    run(session, "SET a 1", "DEL a", "HSET h f v", "FLUSHALL")
    assert session.keyspace.undo_log is None and session.keyspace.snapshots.undo_bytes == 0


def test_range_needs_the_sorted_index():
    session, _ = make_session(Config(sorted_index=False))
    snapshot_id = call(session, "SNAPSHOT")
    assert run(session, f"SNAPSHOT RANGE {snapshot_id} - +", f"SNAPSHOT GET {snapshot_id} k") == [
        Error("ERR SNAPSHOT RANGE needs the sorted key index (--sorted-index yes)"), None,
    ]
