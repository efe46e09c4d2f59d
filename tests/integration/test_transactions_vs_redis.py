"""MULTI/EXEC's refusals against a real redis-server 7.0, reply for reply:
the same pipelines (each on a fresh connection, RESP2 and RESP3) to
trio_kv and to ``redis-server --save "" --appendonly no``; the reply
bytes must be identical. The cases Redis 7 answers in its own way: an
EXEC with arguments (``-EXECABORT Transaction discarded because of: wrong
number of arguments for 'exec' command``, the transaction and the watches
discarded at once, in MULTI or not), a nested MULTI (an error that does
not abort), MULTI/DISCARD/WATCH with the wrong arity inside MULTI (they
abort), and a WATCH that an EXEC with arguments forgot."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .durable_server import Resp, started
from .test_hashes_vs_redis import redis_server, replies

# Each a pipeline on its own connection.
PIPELINES: list[list[tuple]] = [
    [("MULTI",), ("EXEC", "x"), ("EXEC",)],
    [("MULTI",), ("SET", "k", "v"), ("EXEC", "x"), ("EXEC",), ("GET", "k")],
    [("MULTI",), ("EXEC", "x", "y"), ("DISCARD",)],
    [("MULTI",), ("GET",), ("EXEC", "x"), ("EXEC",)],
    [("EXEC", "x")],
    [("EXEC",)],
    [("MULTI",), ("MULTI",), ("SET", "k", "w"), ("EXEC",)],
    [("MULTI",), ("MULTI", "x"), ("EXEC",)],
    [("MULTI",), ("DISCARD", "x"), ("EXEC",)],
    [("MULTI",), ("DISCARD", "x"), ("DISCARD",)],
    [("MULTI",), ("WATCH", "k"), ("EXEC",)],
    [("MULTI",), ("WATCH",), ("EXEC",)],
    [("MULTI",), ("UNWATCH", "x"), ("EXEC",)],
    [("MULTI",), ("NOSUCH",), ("EXEC",)],
    [("DISCARD", "x")],
    [("MULTI", "x")],
]


def _watch_then_exec_with_arguments(address: tuple[str, int]) -> list[bytes]:
    """WATCH k, EXEC x, another connection writes k, MULTI GET k EXEC: the
    EXEC with arguments forgot the watch, so the last EXEC runs."""
    with Resp(address) as first, Resp(address) as second:
        first.call("SET", "wk", "1")
        first.call("WATCH", "wk")
        first.send(("EXEC", "x"))
        answers = [repr(first.read()).encode()]
        second.call("SET", "wk", "2")
        first.send(("MULTI",), ("GET", "wk"), ("EXEC",))
        answers += [repr(first.read()).encode() for _ in range(3)]
    return answers


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_transaction_refusals_match_redis_server(tmp_path: Path) -> None:
    with started(tmp_path / "data", "--appendonly", "no") as server:
        ours = [replies(server.address, pipeline, protocol) for protocol in (2, 3) for pipeline in PIPELINES]
        ours_watch = _watch_then_exec_with_arguments(server.address)
    with redis_server(tmp_path) as address:
        theirs = [replies(address, pipeline, protocol) for protocol in (2, 3) for pipeline in PIPELINES]
        theirs_watch = _watch_then_exec_with_arguments(address)
    for index, (mine, redis) in enumerate(zip(ours, theirs)):
        assert mine == redis, (PIPELINES[index % len(PIPELINES)], mine, redis)
    assert ours_watch == theirs_watch

