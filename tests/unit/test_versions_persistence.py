"""Versions survive a restart (store/versions.py, VERSION effects in the
log, snapshots and dump.snapshot): the same clocks, siblings, tombstones
and values after recovery, whether from the log alone, a compaction's
snapshot plus the log after it, or SAVE's dump.snapshot; ``check-log``
reads them; a store without cluster mode loads the keys and skips them."""

from __future__ import annotations

import io
from pathlib import Path

from trio_kv.commands.session import Session
from trio_kv.config import Config
from trio_kv.store.durability.apply import load_keyspace
from trio_kv.store.durability.check import check_file, main as check_log
from trio_kv.store.durability.data_dir import DataDir
from trio_kv.store.durability.memory_snapshot import load_keyspace as load_dump
from trio_kv.store.keyspace import Keyspace

from ..fake_clock import FakeClock
from .cluster_store import NODE_A, NODE_B, close_durable, cluster_session, open_durable, versions_of
from .redis_session import call, run

KEYS = [b"plain", b"siblings", b"gone", b"hash", b"ttl", b"revived"]


def _write_history(node: Session, clock: FakeClock) -> None:
    """Siblings, tombstones (one a sibling of a later value), a hash, a TTL."""
    peer = cluster_session(NODE_B, clock)
    run(node, "SET plain p", "SET siblings mine", "SET gone x", "DEL gone", "HSET hash f v", "SET ttl t EX 1000")
    clock.advance(1)
    run(peer, "SET siblings theirs", "SET revived x", "DEL revived")
    clock.advance(1)
    run(node, "SET revived back")
    for key in (b"siblings", b"revived"):
        packed = versions_of(peer).clock_of(key)
        assert packed is not None
        assert call(node, [b"TKV.SIBLINGS", key])  # a read between the writes changes nothing
        versions_of(node).apply_remote(key, packed)
        node.keyspace.effects.end_command()


def _picture(session: Session) -> dict[bytes, object]:
    versions = versions_of(session)
    return {
        key: (versions.stored(key), versions.clock_of(key), call(session, [b"TKV.SIBLINGS", key]),
              call(session, [b"TYPE", key]), call(session, [b"PTTL", key]))
        for key in KEYS
    }


def test_restart_from_the_log_keeps_clocks_siblings_and_tombstones(tmp_path: Path) -> None:
    clock = FakeClock()
    node = open_durable(tmp_path, NODE_A, clock)
    _write_history(node, clock)
    before = _picture(node)
    assert call(node, "TKV.SIBLINGS siblings")[1] == [b"theirs", b"mine"]
    assert call(node, "TKV.SIBLINGS revived")[1] == [b"back", None]
    assert before[b"gone"][2][1] == [None]
    close_durable(node)
    again = open_durable(tmp_path, NODE_A, clock)
    assert _picture(again) == before
    assert versions_of(again).keys_with_siblings == 2
    # The hybrid clock moves past what it loaded: a new local write wins here.
    run(again, "SET siblings after")
    assert call(again, "TKV.SIBLINGS siblings")[1] == [b"after"]
    close_durable(again)


def test_restart_from_a_compaction_snapshot_and_the_log_after_it(tmp_path: Path) -> None:
    clock = FakeClock()
    node = open_durable(tmp_path, NODE_A, clock)
    _write_history(node, clock)
    persistence = node.store.persistence
    assert persistence is not None
    generation = persistence.begin_switch()
    persistence.flush()
    run(node, "SET plain after-switch")  # in the new log, also fuzzily in the snapshot
    persistence.write_snapshot(generation, node.keyspace, node.store.lock, lambda step: None, node.store.versions)
    run(node, "DEL hash")
    before = _picture(node)
    close_durable(node)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("log", "snap"))) == ["log.2", "snapshot.2"]
    # Five values and six clocks (the tombstone's alone); END counts them all.
    assert check_file(tmp_path / "snapshot.2").effects == 5 + 6 + 1
    again = open_durable(tmp_path, NODE_A, clock)
    assert _picture(again) == before
    close_durable(again)


def test_save_without_the_log_keeps_versions(tmp_path: Path) -> None:
    clock = FakeClock()
    node = cluster_session(NODE_A, clock, Config(data_dir=str(tmp_path), appendonly=False))
    _write_history(node, clock)
    before = _picture(node)
    node.store.save_memory_snapshot()
    again = cluster_session(NODE_A, clock)
    load_dump(again.keyspace, str(tmp_path), again.store.versions)
    assert _picture(again) == before


def test_check_log_reads_version_records(tmp_path: Path) -> None:
    clock = FakeClock()
    node = open_durable(tmp_path, NODE_A, clock)
    run(node, "SET a 1", "DEL a")
    close_durable(node)
    result = check_file(tmp_path / "log.1")
    assert result.clean and result.version == 4 and result.effects == 4  # SET, VERSION, DEL, VERSION
    out = io.StringIO()
    assert check_log([str(tmp_path / "log.1")], stdout=out) == 0
    assert "format version: 4" in out.getvalue() and "status: ok" in out.getvalue()


def test_a_store_without_cluster_mode_loads_the_keys_and_skips_versions(tmp_path: Path) -> None:
    clock = FakeClock()
    node = open_durable(tmp_path, NODE_A, clock)
    _write_history(node, clock)
    winner = call(node, "GET siblings")
    close_durable(node)
    keyspace = Keyspace(clock_ms=clock)
    load_keyspace(DataDir(tmp_path), keyspace)
    assert keyspace.get(b"siblings") == winner == b"theirs"
    assert keyspace.get(b"gone") is None and keyspace.get(b"revived") == b"back"
