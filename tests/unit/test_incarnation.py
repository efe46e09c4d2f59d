"""The incarnation file and the clean-shutdown marker
(store/durability/incarnation.py): kept only after a clean stop, bumped
durably otherwise, never guessed over a damaged file; and what a new
incarnation costs a key (the bytes quoted in the module docstring)."""

from __future__ import annotations

from pathlib import Path

import pytest

from trio_kv.cluster.actor import actor_id
from trio_kv.store.durability.incarnation import (
    CLEAN_SHUTDOWN_FILE,
    INCARNATION_FILE,
    MAX_INCARNATION,
    BadIncarnationFile,
    begin_incarnation,
    mark_clean_shutdown,
)

from .cluster_store import cluster_session, versions_of
from .redis_session import call

NODE_ID = "0123456789abcdef0123456789abcdef01234567"


def test_a_new_node_starts_at_zero_and_a_clean_stop_keeps_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"  # not there yet
    assert begin_incarnation(data_dir) == 0
    assert (data_dir / INCARNATION_FILE).read_text() == "0\n"
    mark_clean_shutdown(data_dir, 0)
    assert (data_dir / CLEAN_SHUTDOWN_FILE).read_text() == "0\n"
    assert begin_incarnation(data_dir) == 0
    assert not (data_dir / CLEAN_SHUTDOWN_FILE).exists()  # removed at start: a crash now is unclean
    assert not list(data_dir.glob("*.tmp"))


def test_a_stop_without_the_marker_bumps_every_time(tmp_path: Path) -> None:
    assert begin_incarnation(tmp_path) == 0
    assert begin_incarnation(tmp_path) == 1  # kill -9, power loss: no marker
    assert begin_incarnation(tmp_path) == 2
    assert (tmp_path / INCARNATION_FILE).read_text() == "2\n"
    mark_clean_shutdown(tmp_path, 2)
    assert begin_incarnation(tmp_path) == 2


def test_a_marker_naming_another_incarnation_is_not_clean(tmp_path: Path) -> None:
    (tmp_path / INCARNATION_FILE).write_text("5\n")
    mark_clean_shutdown(tmp_path, 4)  # left by an earlier run: says nothing about run 5
    assert begin_incarnation(tmp_path) == 6
    assert not (tmp_path / CLEAN_SHUTDOWN_FILE).exists()


@pytest.mark.parametrize("marker", [b"", b"x", b"05\n", b"5\n\n"])
def test_a_damaged_marker_counts_as_unclean(tmp_path: Path, marker: bytes) -> None:
    (tmp_path / INCARNATION_FILE).write_text("5")
    (tmp_path / CLEAN_SHUTDOWN_FILE).write_bytes(marker)
    assert begin_incarnation(tmp_path) == 6


def test_a_directory_from_before_incarnations_gets_a_new_actor(tmp_path: Path) -> None:
    (tmp_path / "log.1").write_bytes(b"")  # its node id wrote with no marker to trust
    assert begin_incarnation(tmp_path) == 1


@pytest.mark.parametrize("content", [b"", b"-1\n", b"01\n", b"a\n", b"1 \n", b"4294967296\n", b"12345678901\n"])
def test_a_damaged_incarnation_file_stops_the_start(tmp_path: Path, content: bytes) -> None:
    (tmp_path / INCARNATION_FILE).write_bytes(content)
    mark_clean_shutdown(tmp_path, 1)
    with pytest.raises(BadIncarnationFile, match="not an incarnation number"):
        begin_incarnation(tmp_path)
    assert (tmp_path / INCARNATION_FILE).read_bytes() == content  # nothing changed


def test_the_last_incarnation_is_kept_after_a_clean_stop_and_never_wraps(tmp_path: Path) -> None:
    (tmp_path / INCARNATION_FILE).write_text(f"{MAX_INCARNATION}\n")
    mark_clean_shutdown(tmp_path, MAX_INCARNATION)
    assert begin_incarnation(tmp_path) == MAX_INCARNATION
    with pytest.raises(BadIncarnationFile, match="every incarnation"):
        begin_incarnation(tmp_path)


def test_a_new_incarnation_costs_a_rewritten_key_24_bytes() -> None:
    """The figure in store/durability/incarnation.py: a key written by
    incarnation 0, then by 1, then by 2 (a node restarted uncleanly twice;
    each restart modelled as a store that receives the key's clock and then
    overwrites it) grows by 21 bytes (the new actor's id in the clock's
    table) plus 3 (the old actor's entry: index, counter, no live values)
    per incarnation."""
    sizes = []
    previous = None
    for incarnation in range(3):
        session = cluster_session(actor_id(NODE_ID, incarnation))
        if previous is not None:
            packed = versions_of(previous).clock_of(b"k")
            assert packed is not None
            versions_of(session).apply_remote(b"k", packed)
            session.keyspace.effects.end_command()
        call(session, f"SET k v{incarnation}")
        stored = versions_of(session).stored(b"k")
        assert stored is not None
        sizes.append(len(stored))
        previous = session
    assert [size - sizes[0] for size in sizes] == [0, 24, 48]
