"""Purging tombstones (store/versions.py ``purgeable`` / ``purge``, the
peer commands TKV.AAE.TOMBSTONES / TKV.AAE.REAP, store/key_trees.py): only
a key whose versions are exactly the confirmed lone tombstone loses them,
only once it is old enough; the trees drop it (two replicas that purge
stay equal), the figures follow, and the purge is in the log (a restart
does not bring the tombstone back)."""

from __future__ import annotations

import time
from pathlib import Path

from trio_kv.cluster.tictac import SEGMENT_COUNT
from trio_kv.commands.peer.wire import BUS
from trio_kv.commands.session import Session
from trio_kv.protocol.replies import Error
from trio_kv.store.engine import Job, run_batch

from ..fake_clock import FakeClock
from .cluster_store import NODE_A, close_durable, open_durable, versions_of
from .redis_session import run
from .test_peer_aae import _bus
from .test_versions_replication import pair, ship

HOUR_MS = 3_600_000


def _peer(session: Session, *args: bytes) -> object:
    job = Job(_bus(session), BUS.table, [list(args)], time.perf_counter())
    run_batch(session.store, [job])
    return job.replies[0]


def _tombstones(session: Session, key: bytes, min_age_ms: int = HOUR_MS) -> list[bytes]:
    partition = versions_of(session).trees.partition_of(key)
    return _peer(session, b"TKV.AAE.TOMBSTONES", b"%d" % partition, b"%d" % min_age_ms, b"100")  # type: ignore[return-value]


def _tree_state(session: Session) -> list[tuple[int, list[tuple[bytes, int]]]]:
    return [(tree.root, sorted(tree.entries(range(SEGMENT_COUNT)))) for tree in versions_of(session).trees.trees]


def test_a_lone_tombstone_old_enough_is_listed_with_its_clock_and_purged_everywhere_alike() -> None:
    a, b, clock = pair()
    run(a, "SET k v", "SET other v")
    ship(a, b, b"k")
    ship(a, b, b"other")
    run(a, "DEL k")
    ship(a, b, b"k")
    tombstone = versions_of(a).clock_of(b"k")
    assert tombstone is not None and versions_of(b).clock_of(b"k") == tombstone
    assert _tombstones(a, b"k") == []  # too young
    clock.advance(HOUR_MS + 1)
    assert _tombstones(a, b"k") == [b"k", tombstone]
    assert _tombstones(b, b"k") == [b"k", tombstone]
    for replica in (a, b):
        assert _peer(replica, b"TKV.AAE.REAP", b"k", tombstone) == [1]
        assert versions_of(replica).clock_of(b"k") is None
        stats = versions_of(replica).statistics()
        assert (stats["versioned_keys"], stats["tombstone_keys"]) == (1, 0)
        assert _tombstones(replica, b"k") == []
        assert _peer(replica, b"TKV.AAE.REAP", b"k", tombstone) == [0]  # already gone
    assert _tree_state(a) == _tree_state(b)
    before = _tree_state(a)
    versions_of(a).trees.rebuild()
    assert _tree_state(a) == before  # the purge left the trees as a rebuild makes them
    assert run(a, "GET k", "EXISTS k") == [None, 0]


def test_reap_leaves_a_key_whose_versions_are_not_exactly_that_tombstone() -> None:
    a, b, clock = pair()
    run(a, "SET k v", "DEL k")
    tombstone = versions_of(a).clock_of(b"k")
    assert tombstone is not None
    clock.advance(HOUR_MS + 1)
    run(a, "SET k again")  # written again after the confirm: a value, not that tombstone
    assert _peer(a, b"TKV.AAE.REAP", b"k", tombstone) == [0]
    assert run(a, "GET k") == [b"again"]
    run(a, "DEL k")  # another tombstone, not the one confirmed
    assert _peer(a, b"TKV.AAE.REAP", b"k", tombstone) == [0]
    assert versions_of(a).clock_of(b"k") is not None
    # A live key is never a candidate.
    run(b, "SET live v")
    clock.advance(HOUR_MS + 1)
    assert _tombstones(b, b"live") == []
    live = versions_of(b).clock_of(b"live")
    assert live is not None
    assert _peer(b, b"TKV.AAE.REAP", b"live", live) == [0]
    assert run(b, "GET live") == [b"v"]


def test_a_tombstone_with_a_concurrent_live_sibling_is_not_purged() -> None:
    a, b, clock = pair()
    run(a, "SET k 1")
    ship(a, b, b"k")
    run(a, "DEL k")
    run(b, "SET k 2")  # concurrent with a's delete
    ship(b, a, b"k")
    clock.advance(HOUR_MS + 1)
    assert _tombstones(a, b"k") == []
    merged = versions_of(a).clock_of(b"k")
    assert merged is not None
    assert _peer(a, b"TKV.AAE.REAP", b"k", merged) == [0]


def test_a_purge_is_logged_and_a_restart_does_not_bring_the_tombstone_back(tmp_path: Path) -> None:
    clock = FakeClock()
    session = open_durable(tmp_path, NODE_A, clock)
    run(session, "SET k v", "SET keep v", "DEL k")
    tombstone = versions_of(session).clock_of(b"k")
    assert tombstone is not None
    clock.advance(HOUR_MS + 1)
    assert _peer(session, b"TKV.AAE.REAP", b"k", tombstone) == [1]
    before = _tree_state(session)
    close_durable(session)
    again = open_durable(tmp_path, NODE_A, clock)
    assert versions_of(again).clock_of(b"k") is None
    assert versions_of(again).statistics()["tombstone_keys"] == 0
    assert _tree_state(again) == before
    close_durable(again)


def test_reap_wants_key_clock_pairs() -> None:
    a, _, _ = pair()
    assert _peer(a, b"TKV.AAE.REAP", b"k", b"c", b"odd") == Error("ERR wrong number of arguments")
