"""A deleted data directory refuses writes (issue 8, item 9).

Before, ``rm -rf`` of the data directory under a running server left it
appending to a log file that no longer had a name: 200 more writes were
acknowledged and all were lost on restart. Now the log notices, at its next
flush or within about a second with no writes at all, that its file has no
links left or that the directory is gone or replaced, and refuses writes
(``-MISCONF ...``; ``ERROR writes refused: ...`` on the line protocol).
Reads keep working, and BGREWRITEAOF or SAVE rebuilds the files from memory
(into an empty directory only). Real server processes, redis-py and a raw
line-protocol socket.
"""

from __future__ import annotations

import re
import shutil
import socket
from pathlib import Path

import pytest
import redis

from harness.server_process import ServerProcess

from ..conftest import REPO

SOCKET_SECONDS = 10.0
NOTICE_SECONDS = 10.0  # the check runs about once a second; generous for a loaded machine
WRITES_AFTER = 200
NOTICED = re.compile(r"CRITICAL .*(was deleted|was replaced); writes refused")


def client(server: ServerProcess) -> redis.Redis:
    return redis.Redis(*server.address, socket_timeout=SOCKET_SECONDS)


def text_command(server: ServerProcess, line: bytes) -> bytes:
    with socket.create_connection(server.address, timeout=SOCKET_SECONDS) as sock:
        sock.sendall(line + b"\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = sock.recv(4096)
            assert chunk, reply
            reply += chunk
    return reply


def write_and_collect_acknowledged(server: ServerProcess, prefix: str) -> list[str]:
    """SET ``WRITES_AFTER`` keys; the ones answered OK (each other reply must be MISCONF)."""
    acknowledged = []
    with client(server) as redis_client:
        for index in range(WRITES_AFTER):
            key = f"{prefix}:{index}"
            try:
                redis_client.set(key, "v")
            except redis.ResponseError as error:
                assert str(error).startswith("MISCONF Errors writing to the AOF file: "), error
            else:
                acknowledged.append(key)
    return acknowledged


def acknowledged_survive_restart(data_dir: Path, keys: list[str]) -> list[str]:
    """Which of ``keys`` a server restarted on ``data_dir`` has."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with ServerProcess.start(REPO, data_dir=data_dir) as restarted, client(restarted) as redis_client:
        return [key for key in keys if redis_client.exists(key)]


@pytest.mark.parametrize("how", ["rm -rf", "rm -rf, then mkdir", "rm log"])
def test_writes_refused_at_once_after_the_data_dir_is_deleted(tmp_path: Path, how: str) -> None:
    data_dir = tmp_path / "data"
    with ServerProcess.start(REPO, data_dir=data_dir) as server:
        with client(server) as redis_client:
            assert redis_client.set("before", "1")
        if how == "rm log":
            for path in data_dir.glob("log.*"):
                path.unlink()
        else:
            shutil.rmtree(data_dir)
            if how == "rm -rf, then mkdir":
                data_dir.mkdir()
        # No wait: the first write's flush notices; none is ever acknowledged.
        acknowledged = write_and_collect_acknowledged(server, "after")
        assert acknowledged == []
        assert server.wait_for_log(NOTICED, timeout=NOTICE_SECONDS) is not None
        with client(server) as redis_client:
            assert redis_client.get("before") == b"1"  # reads keep working
            info = redis_client.info("persistence")
            assert info["aof_last_write_status"] == "err"
        assert text_command(server, b"SET t 1").startswith(b"ERROR writes refused: error writing the log (")
        assert text_command(server, b"GET before") == b"VALUE 1\n"
        status = server.terminate()
        assert status == 0, server.log()
        assert "Traceback" not in server.log()


def test_noticed_within_a_second_without_any_write(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with ServerProcess.start(REPO, data_dir=data_dir) as server:
        with client(server) as redis_client:
            assert redis_client.set("before", "1")
        shutil.rmtree(data_dir)
        # The background check notices with no write in flight ...
        assert server.wait_for_log(NOTICED, timeout=NOTICE_SECONDS) is not None
        with client(server) as redis_client:
            # ... so a write is refused before it runs: nothing applied.
            with pytest.raises(redis.ResponseError, match="^MISCONF .*was deleted; writes refused"):
                redis_client.set("after", "1")
            assert redis_client.exists("after") == 0
            assert redis_client.get("before") == b"1"
    # And nothing acknowledged was lost: there was nothing acknowledged.
    assert acknowledged_survive_restart(data_dir, ["after"]) == []


def test_acknowledged_writes_before_the_deletion_are_the_only_ones(tmp_path: Path) -> None:
    # The scenario: write, rm -rf, 200 more writes, restart.
    data_dir = tmp_path / "data"
    with ServerProcess.start(REPO, data_dir=data_dir) as server:
        with client(server) as redis_client:
            for index in range(50):
                assert redis_client.set(f"before:{index}", "v")
        shutil.rmtree(data_dir)
        acknowledged = write_and_collect_acknowledged(server, "after")
    assert acknowledged == []
    assert acknowledged_survive_restart(data_dir, acknowledged) == acknowledged


@pytest.mark.parametrize("command", ["BGREWRITEAOF", "SAVE"])
def test_a_compaction_rebuilds_the_files_from_memory(tmp_path: Path, command: str) -> None:
    data_dir = tmp_path / "data"
    with ServerProcess.start(REPO, data_dir=data_dir) as server:
        with client(server) as redis_client:
            for index in range(50):
                assert redis_client.set(f"before:{index}", "v")
            shutil.rmtree(data_dir)
            with pytest.raises(redis.ResponseError, match="^MISCONF "):
                redis_client.set("refused", "1")
            redis_client.execute_command(command)
            assert server.wait_for_log(re.compile(r"rebuilt .* from memory"), timeout=NOTICE_SECONDS) is not None
            assert redis_client.set("after", "1")
            assert redis_client.info("persistence")["aof_last_write_status"] == "ok"
        assert server.terminate() == 0, server.log()
    # Everything in memory at the rebuild (the keys written before the
    # deletion were only there), and every write acknowledged since, survives a restart.
    expected = [f"before:{index}" for index in range(50)] + ["after"]
    assert acknowledged_survive_restart(data_dir, expected) == expected


def test_no_rebuild_over_other_files(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    other = tmp_path / "other"
    with ServerProcess.start(REPO, data_dir=other) as other_server:
        with client(other_server) as redis_client:
            assert redis_client.set("other", "1")
    with ServerProcess.start(REPO, data_dir=data_dir) as server:
        with client(server) as redis_client:
            assert redis_client.set("mine", "1")
            shutil.rmtree(data_dir)
            shutil.copytree(other, data_dir)
            (data_dir / "LOCK").unlink(missing_ok=True)
            with pytest.raises(redis.ResponseError, match="^MISCONF .*was (deleted|replaced)"):
                redis_client.set("refused", "1")
            redis_client.execute_command("BGREWRITEAOF")
            assert server.wait_for_log(re.compile(r"cannot rebuild the lost data files: .*holds other trio_kv files"),
                                       timeout=NOTICE_SECONDS) is not None
            with pytest.raises(redis.ResponseError, match="^MISCONF "):
                redis_client.set("still refused", "1")
    assert acknowledged_survive_restart(data_dir, ["other", "mine"]) == ["other"]
