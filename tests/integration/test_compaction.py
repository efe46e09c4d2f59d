"""Compaction of a real server process while writers run: automatic
compactions (a small ``--aof-rewrite-min-size-bytes`` and
``--aof-rewrite-percentage``), then BGREWRITEAOF, BGSAVE and SAVE, all
under load, then ``kill -9`` and a restart: nothing acknowledged is lost and
the old generations are retired. INFO persistence tells the truth along the
way."""

from __future__ import annotations

import re
import time
from pathlib import Path

from .durable_server import Resp, RespError, WriterGroup, data_files, started, verify_restart

DEPTHS = [1, 2, 4, 8]
AUTO_FLAGS = ["--aof-rewrite-min-size-bytes", "65536", "--aof-rewrite-percentage", "50"]
# Keys loaded first, so a snapshot takes a while and the writers run
# between its chunks (a chunk is 1000 keys under the read lock).
PRELOAD_KEYS = 30_000
PRELOAD_PER_MSET = 1000
AUTO_COMPACTIONS = 2
MANUAL_COMPACTIONS = 3
WAIT_SECONDS = 15.0
FILE_NAME = re.compile(r"(log|snapshot)\.([0-9]+)")


def persistence_info(client: Resp) -> dict[str, str]:
    text = client.call("INFO", "persistence")
    assert isinstance(text, bytes), text
    return dict(line.split(":", 1) for line in text.decode().splitlines() if ":" in line)


def wait_for(client: Resp, what: str, condition) -> dict[str, str]:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        info = persistence_info(client)
        if condition(info):
            return info
        assert time.monotonic() < deadline, f"{what} within {WAIT_SECONDS} s; INFO persistence: {info}"
        time.sleep(0.02)


def generations(data_dir: Path) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {"log": [], "snapshot": []}
    for name in data_files(data_dir):
        match = FILE_NAME.fullmatch(name)
        assert match, f"unexpected file {name} in the data dir"
        found[match[1]].append(int(match[2]))
    return {kind: sorted(numbers) for kind, numbers in found.items()}


def test_compactions_under_load_lose_nothing_and_retire_old_files(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with started(data_dir, "--appendfsync", "everysec", *AUTO_FLAGS) as server:
        preload = {b"pre:%06d" % index: b"p%d" % index for index in range(PRELOAD_KEYS)}
        with Resp(server.address) as client:
            items = list(preload.items())
            for start in range(0, len(items), PRELOAD_PER_MSET):
                pairs = [part for item in items[start : start + PRELOAD_PER_MSET] for part in item]
                assert client.call("MSET", *pairs) == "OK"
        group = WriterGroup(server.address, "load", DEPTHS).start()
        with Resp(server.address) as client:
            info = wait_for(client, f"{AUTO_COMPACTIONS} automatic compactions",
                            lambda info: int(info["aof_rewrites"]) >= AUTO_COMPACTIONS)
            automatic = int(info["aof_rewrites"])
            assert info["aof_enabled"] == "1" and info["appendfsync"] == "everysec"
            assert info["aof_last_bgrewrite_status"] == "ok" and info["aof_last_write_status"] == "ok"
            started_manually = 0
            acked_before_manual = group.acked
            for command in ["BGREWRITEAOF", "BGSAVE", "BGREWRITEAOF"][:MANUAL_COMPACTIONS]:
                wait_for(client, "the last compaction to finish", lambda info: info["aof_rewrite_in_progress"] == "0")
                before = int(persistence_info(client)["aof_rewrites"])
                reply = client.call(command)
                if isinstance(reply, RespError):
                    # An automatic one started in between: Redis' "already in progress".
                    assert "already in progress" in str(reply), reply
                    continue
                assert reply in ("Background append only file rewriting started", "Background saving started")
                started_manually += 1
                wait_for(client, f"{command} to finish", lambda info: int(info["aof_rewrites"]) > before)
            assert started_manually >= 1
            assert group.acked > acked_before_manual, "the writers made no progress during the compactions"
            assert client.call("SAVE") == "OK"
            info = persistence_info(client)
            completed = int(info["aof_rewrites"])
            assert completed >= automatic + started_manually + 1
            assert info["aof_rewrites_consecutive_failures"] == "0"
            assert int(info["rdb_last_save_time"]) >= int(time.time()) - 5
            assert client.call("LASTSAVE") == int(info["rdb_last_save_time"])
            assert int(info["aof_current_size"]) >= int(info["aof_base_size"]) > 0
        time.sleep(0.2)  # more writes on top of the newest snapshot
        server.kill()
        group.stop()

    with started(data_dir) as restarted:
        with Resp(restarted.address) as client:
            verify_restart(client, preload, group)
            assert int(persistence_info(client)["rdb_last_load_keys_loaded"]) == client.call("DBSIZE")
        # Every generation older than the newest snapshot is retired (a
        # compaction the kill interrupted is finished or undone at start).
        files = generations(data_dir)
        assert len(files["snapshot"]) == 1 and min(files["log"]) == files["snapshot"][0], files
        assert files["snapshot"][0] >= 1 + completed, files
