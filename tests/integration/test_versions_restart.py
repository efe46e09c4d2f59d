"""Versions survive ``kill -9`` of a real server process in cluster mode
(``--cluster-enabled yes``, ``--appendonly yes``, ``--appendfsync always``):
after acknowledged writes that leave siblings (a stale TKV.PUTCTX context),
tombstones, hashes and TTLs, the restarted server on the same data
directory answers TKV.SIBLINGS with the same contexts and values, GET the
same winners, and keeps its node id (a new write comes from a new actor
after kill -9: tests/integration/test_versions_incarnation.py)."""

from __future__ import annotations

import signal
from pathlib import Path

from .durable_server import EXIT_SECONDS, Resp, started

FLAGS = ("--cluster-enabled", "yes", "--appendonly", "yes", "--appendfsync", "always")
KEYS = [b"plain", b"siblings", b"gone", b"hash", b"ttl", b"resolved"]


def _picture(client: Resp) -> dict[bytes, object]:
    return {key: (client.call("TKV.SIBLINGS", key), client.call("TYPE", key)) for key in KEYS}


def test_versions_survive_kill_9(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with started(data_dir, *FLAGS) as server:
        with Resp(server.address) as client:
            stale, _ = client.call("TKV.SIBLINGS", "siblings")
            for command in (
                ("SET", "plain", "p"),
                ("SET", "siblings", "first"),
                ("TKV.PUTCTX", "siblings", stale, "second"),  # did not see "first": a sibling
                ("SET", "gone", "x"),
                ("DEL", "gone"),
                ("HSET", "hash", "f", "v"),
                ("SET", "ttl", "t", "EX", "1000"),
                ("SET", "resolved", "a"),
            ):
                assert not isinstance(client.call(*command), Exception), command
            context, values = client.call("TKV.SIBLINGS", "resolved")
            assert client.call("TKV.PUTCTX", "resolved", context, "b") == "OK"
            before = _picture(client)
        assert before[b"siblings"][0][1] == [b"second", b"first"]
        assert before[b"gone"][0][1] == [None]
        node_id = (data_dir / "node-id").read_text()
        server.send_signal(signal.SIGKILL)
        assert server.wait(EXIT_SECONDS) is not None
    with started(data_dir, *FLAGS) as server:
        with Resp(server.address) as client:
            assert _picture(client) == before
            assert client.call("GET", "siblings") == b"second"
            # The restarted node continues its own counter: a new write supersedes both.
            assert client.call("SET", "siblings", "third") == "OK"
            assert client.call("TKV.SIBLINGS", "siblings")[1] == [b"third"]
        assert (data_dir / "node-id").read_text() == node_id


def test_cluster_commands_answer_an_error_with_cluster_off(tmp_path: Path) -> None:
    with started(tmp_path / "data", "--appendonly", "yes") as server:
        with Resp(server.address) as client:
            reply = client.call("TKV.SIBLINGS", "k")
            assert str(reply) == "ERR This instance has cluster support disabled"
            assert client.call("SET", "k", "v") == "OK"
        assert not (tmp_path / "data" / "node-id").exists()
