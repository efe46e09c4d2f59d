"""The MULTI queue is bounded (``--multi-max-queued-commands``,
``--multi-max-queued-bytes``): a command past a limit is answered with an
error instead of QUEUED, and EXEC then aborts the whole transaction."""

from __future__ import annotations

from trio_kv.commands.transactions import EXEC_ABORTED
from trio_kv.config import Config
from trio_kv.protocol.replies import OK, QUEUED, Error

from .redis_session import make_session, run


def test_a_command_past_the_queue_length_limit_aborts_the_transaction() -> None:
    session, _ = make_session(Config(multi_max_queued_commands=3))
    replies = run(session, "MULTI", "SET a 1", "SET b 2", "SET c 3", "SET d 4", "EXEC", "GET a", "DBSIZE")
    assert replies[:4] == [OK, QUEUED, QUEUED, QUEUED]
    assert isinstance(replies[4], Error)
    assert replies[4].message.startswith("ERR Transaction queue is full (multi-max-queued-commands 3)")
    assert replies[5] == EXEC_ABORTED
    assert replies[5].message.startswith("EXECABORT")
    # Nothing ran, and the queue is gone.
    assert replies[6:] == [None, 0]
    assert session.multi is None


def test_the_queue_stops_growing_at_the_limit() -> None:
    session, _ = make_session(Config(multi_max_queued_commands=10))
    run(session, "MULTI", *(["SET k v"] * 1000))
    assert len(session.multi) == 10
    assert session.multi_failed


def test_a_transaction_at_the_limit_runs() -> None:
    session, _ = make_session(Config(multi_max_queued_commands=3))
    replies = run(session, "MULTI", "SET a 1", "INCR a", "GET a", "EXEC")
    assert replies == [OK, QUEUED, QUEUED, QUEUED, [OK, 2, b"2"]]


def test_the_queued_bytes_limit_counts_argument_bytes() -> None:
    session, _ = make_session(Config(multi_max_queued_bytes=1024))
    value = "x" * 500
    replies = run(session, "MULTI", f"SET a {value}", f"SET b {value}", f"SET c {value}", "EXEC", "DBSIZE")
    assert replies[:3] == [OK, QUEUED, QUEUED]
    assert isinstance(replies[3], Error)
    assert "multi-max-queued-bytes 1024" in replies[3].message
    assert replies[4:] == [EXEC_ABORTED, 0]


def test_the_byte_count_starts_again_at_each_multi() -> None:
    session, _ = make_session(Config(multi_max_queued_bytes=1024))
    value = "x" * 600
    first = run(session, "MULTI", f"SET a {value}", "EXEC")
    second = run(session, "MULTI", f"SET b {value}", "EXEC")
    assert first == second == [OK, QUEUED, [OK]]


def test_the_defaults_allow_a_million_queued_commands() -> None:
    config = Config()
    assert config.multi_max_queued_commands == 1_000_000
    assert config.multi_max_queued_bytes == 1024 * 1024 * 1024
