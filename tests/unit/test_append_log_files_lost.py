"""The log notices that its file or the data directory was deleted, renamed
or replaced (``Persistence.check_files``, also run by every flush), and then
refuses writes for good; no server, a real directory."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from trio_kv.store.durability.apply import load_keyspace
from trio_kv.store.durability.append_log import Persistence
from trio_kv.store.durability.data_dir import DataDir
from trio_kv.store.keyspace import Keyspace


def open_log(directory: Path) -> Persistence:
    data_dir = DataDir(directory)
    load_keyspace(data_dir, Keyspace())
    return Persistence(data_dir, "everysec", rewrite_min_bytes=1, rewrite_percentage=100)


def break_files(directory: Path, how: str) -> None:
    if how == "delete the log":
        for path in directory.glob("log.*"):
            path.unlink()
    elif how == "rm -rf":
        shutil.rmtree(directory)
    elif how == "replace the directory":
        shutil.rmtree(directory)
        directory.mkdir()
    elif how == "rename the directory":
        os.rename(directory, directory.with_name("moved"))


@pytest.mark.parametrize("how", ["delete the log", "rm -rf", "replace the directory", "rename the directory"])
def test_flush_refuses_once_the_files_are_gone_and_stays_refusing(tmp_path: Path, how: str) -> None:
    directory = tmp_path / "data"
    persistence = open_log(directory)
    assert persistence.check_files() is None
    persistence.log([("SET", b"k", b"v", None)])
    persistence.flush()
    persistence.log([("SET", b"k2", b"v", None)])
    break_files(directory, how)
    assert persistence.refusal() is None  # not noticed yet: no flush, no check
    with pytest.raises(FileNotFoundError):
        persistence.flush()
    refusal = persistence.refusal()
    assert refusal is not None and refusal.endswith("; writes refused until BGREWRITEAOF rebuilds the files from memory")
    # rm -rf unlinks the log file too: its link count says so first.
    assert ("data directory" in refusal) == (how == "rename the directory")
    # Sticky: a directory that comes back does not hold the lost records.
    directory.mkdir(exist_ok=True)
    with pytest.raises(FileNotFoundError):
        persistence.flush()
    assert persistence.check_files() == refusal
    assert persistence.info()["aof_last_write_status"] == "err"


def test_check_files_alone_notices(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    persistence = open_log(directory)
    os.rename(directory, tmp_path / "moved")
    (tmp_path / "data").mkdir()
    assert "the data directory" in persistence.check_files() and "was replaced" in persistence.check_files()
    assert persistence.refusal() == persistence.check_files()
