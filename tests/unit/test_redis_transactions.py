"""MULTI / EXEC / DISCARD / WATCH / UNWATCH through the engine, no sockets.

Two sessions share one store, as two connections would. Every scenario's
replies were checked against a real redis-server 7.0 with two connections.
"""

from __future__ import annotations

import pytest

from trio_kv.commands.redis import REDIS_COMMANDS
from trio_kv.commands.session import Session
from trio_kv.commands.table import InMulti
from trio_kv.commands.wire import RESP
from trio_kv.protocol.replies import OK, QUEUED, Error, NullArray
from trio_kv.protocol.resp_encoder import encode_reply
from trio_kv.store.engine import run_batch

from ..fake_clock import FakeClock
from .redis_session import job, make_session, run

EXECABORT = Error("EXECABORT Transaction discarded because of previous errors.")
# An EXEC with arguments (Redis 7's rejectCommand: execCommandAbort, in MULTI or not).
EXEC_ARITY = Error("EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command")


def make_sessions() -> tuple[Session, Session, FakeClock]:
    """Two connections (ids 1 and 2) on one store, and its clock."""
    first, clock = make_session()
    return first, Session(2, first.store, first.control, wire=RESP), clock


def play(steps: list[str]) -> list[object]:
    """Run "1 CMD" / "2 CMD" steps on two sessions in order; all replies."""
    first, second, _ = make_sessions()
    sessions = {"1": first, "2": second}
    replies = []
    for step in steps:
        who, command = step.split(" ", 1)
        replies += run(sessions[who], command)
    return replies


# (steps, replies to every step). "1 ..." is the session under test, "2 ..."
# another connection.
SCENARIOS = {
    "exec runs the queue": (
        ["1 MULTI", "1 SET k v", "1 INCR n", "1 GET k", "1 EXEC"],
        [OK, QUEUED, QUEUED, QUEUED, [OK, 1, b"v"]],
    ),
    "an error inside exec does not stop the rest": (
        ["1 SET k v", "1 MULTI", "1 INCR k", "1 SET k 5", "1 INCR k", "1 EXEC"],
        [OK, OK, QUEUED, QUEUED, QUEUED, [Error("ERR value is not an integer or out of range"), OK, 6]],
    ),
    "empty transaction": (["1 MULTI", "1 EXEC"], [OK, []]),
    "exec without multi": (["1 EXEC"], [Error("ERR EXEC without MULTI")]),
    "discard without multi": (["1 DISCARD"], [Error("ERR DISCARD without MULTI")]),
    "discard drops the queue": (
        ["1 MULTI", "1 SET k v", "1 DISCARD", "1 GET k", "1 EXEC"],
        [OK, QUEUED, OK, None, Error("ERR EXEC without MULTI")],
    ),
    "nested multi is an error that does not abort": (
        ["1 MULTI", "1 MULTI", "1 SET a 1", "1 EXEC"],
        [OK, Error("ERR MULTI calls can not be nested"), QUEUED, [OK]],
    ),
    "watch inside multi is an error that does not abort": (
        ["1 MULTI", "1 WATCH x", "1 EXEC"],
        [OK, Error("ERR WATCH inside MULTI is not allowed"), []],
    ),
    "unknown command aborts": (
        ["1 MULTI", "1 FOO", "1 SET k v", "1 EXEC", "1 GET k"],
        [
            OK,
            Error("ERR unknown command 'FOO', with args beginning with: "),
            QUEUED,
            EXECABORT,
            None,
        ],
    ),
    "wrong arity aborts": (
        ["1 MULTI", "1 GET", "1 SET k v", "1 EXEC", "1 GET k"],
        [OK, Error("ERR wrong number of arguments for 'get' command"), QUEUED, EXECABORT, None],
    ),
    "exec with arguments discards the transaction at once": (
        ["1 MULTI", "1 SET k v", "1 EXEC x", "1 EXEC", "1 GET k"],
        [OK, QUEUED, EXEC_ARITY, Error("ERR EXEC without MULTI"), None],
    ),
    "exec with arguments after a refused request": (
        ["1 MULTI", "1 GET", "1 EXEC x y", "1 DISCARD"],
        [OK, Error("ERR wrong number of arguments for 'get' command"), EXEC_ARITY,
         Error("ERR DISCARD without MULTI")],
    ),
    "exec with arguments outside multi": (["1 EXEC x"], [EXEC_ARITY]),
    "exec with arguments forgets the watches": (
        ["1 SET k v", "1 WATCH k", "1 EXEC x", "2 SET k w", "1 MULTI", "1 GET k", "1 EXEC"],
        [OK, OK, EXEC_ARITY, OK, OK, QUEUED, [b"w"]],
    ),
    "multi or discard with arguments inside multi aborts, still inside": (
        ["1 MULTI", "1 MULTI x", "1 DISCARD x", "1 SET k v", "1 EXEC", "1 GET k"],
        [OK, Error("ERR wrong number of arguments for 'multi' command"),
         Error("ERR wrong number of arguments for 'discard' command"), QUEUED, EXECABORT, None],
    ),
    "execabort wins over a broken watch": (
        ["1 WATCH k", "2 SET k w", "1 MULTI", "1 NOPE", "1 EXEC"],
        [OK, OK, OK, Error("ERR unknown command 'NOPE', with args beginning with: "), EXECABORT],
    ),
    "watch: other session writes": (
        ["1 SET k v", "1 WATCH k", "2 SET k w", "1 MULTI", "1 GET k", "1 EXEC"],
        [OK, OK, OK, OK, QUEUED, NullArray()],
    ),
    "watch: other session creates and deletes": (
        ["1 WATCH k", "2 SET k w", "2 DEL k", "1 MULTI", "1 GET k", "1 EXEC"],
        [OK, OK, 1, OK, QUEUED, NullArray()],
    ),
    "watch: unrelated key": (
        ["1 WATCH k", "2 SET j w", "1 MULTI", "1 GET k", "1 EXEC"],
        [OK, OK, OK, QUEUED, [None]],
    ),
    "watch: own write counts": (
        ["1 WATCH k", "1 SET k x", "1 MULTI", "1 GET k", "1 EXEC"],
        [OK, OK, OK, QUEUED, NullArray()],
    ),
    "watch: flush of an existing key": (
        ["1 SET k v", "1 WATCH k", "2 FLUSHALL", "1 MULTI", "1 GET k", "1 EXEC"],
        [OK, OK, OK, OK, QUEUED, NullArray()],
    ),
    "watch: flush without the key": (
        ["1 WATCH k", "2 SET j v", "2 FLUSHDB", "1 MULTI", "1 GET k", "1 EXEC"],
        [OK, OK, OK, OK, QUEUED, [None]],
    ),
    "watch: expire": (
        ["1 SET k v", "1 WATCH k", "2 EXPIRE k 100", "1 MULTI", "1 GET k", "1 EXEC"],
        [OK, OK, 1, OK, QUEUED, NullArray()],
    ),
    "watch: expire into the past": (
        ["1 SET k v", "1 WATCH k", "2 EXPIRE k -1", "1 MULTI", "1 GET k", "1 EXEC"],
        [OK, OK, 1, OK, QUEUED, NullArray()],
    ),
    "watch: persist with nothing to remove": (
        ["1 SET k v", "1 WATCH k", "2 PERSIST k", "1 MULTI", "1 GET k", "1 EXEC"],
        [OK, OK, 0, OK, QUEUED, [b"v"]],
    ),
    "watch: persist": (
        ["1 SET k v EX 100", "1 WATCH k", "2 PERSIST k", "1 MULTI", "1 GET k", "1 EXEC"],
        [OK, OK, 1, OK, QUEUED, NullArray()],
    ),
    "watch: failed setnx": (
        ["1 SET k v", "1 WATCH k", "2 SETNX k z", "1 MULTI", "1 GET k", "1 EXEC"],
        [OK, OK, 0, OK, QUEUED, [b"v"]],
    ),
    "watch: del of a missing key": (
        ["1 WATCH k", "2 DEL k", "1 MULTI", "1 GET k", "1 EXEC"],
        [OK, 0, OK, QUEUED, [None]],
    ),
    "watch: getex without options": (
        ["1 SET k v", "1 WATCH k", "2 GETEX k", "1 MULTI", "1 GET k", "1 EXEC"],
        [OK, OK, b"v", OK, QUEUED, [b"v"]],
    ),
    "watch: getex persist": (
        ["1 SET k v EX 100", "1 WATCH k", "2 GETEX k PERSIST", "1 MULTI", "1 GET k", "1 EXEC"],
        [OK, OK, b"v", OK, QUEUED, NullArray()],
    ),
    "watch: rename onto": (
        ["1 SET j v", "1 WATCH k", "2 RENAME j k", "1 MULTI", "1 GET k", "1 EXEC"],
        [OK, OK, OK, OK, QUEUED, NullArray()],
    ),
    "watch: rename from": (
        ["1 SET k v", "1 WATCH k", "2 RENAME k j", "1 MULTI", "1 GET k", "1 EXEC"],
        [OK, OK, OK, OK, QUEUED, NullArray()],
    ),
    "watch: several keys, one touched": (
        ["1 WATCH a b c", "1 WATCH a", "2 SET c 1", "1 MULTI", "1 PING", "1 EXEC"],
        [OK, OK, OK, OK, QUEUED, NullArray()],
    ),
    "unwatch forgets": (
        ["1 SET k v", "1 WATCH k", "1 UNWATCH", "2 SET k w", "1 MULTI", "1 GET k", "1 EXEC"],
        [OK, OK, OK, OK, OK, QUEUED, [b"w"]],
    ),
    "unwatch inside multi is queued": (
        ["1 SET k v", "1 WATCH k", "1 MULTI", "1 UNWATCH", "2 SET k w", "1 GET k", "1 EXEC"],
        [OK, OK, OK, QUEUED, OK, QUEUED, NullArray()],
    ),
    "exec forgets the watches": (
        ["1 WATCH k", "1 MULTI", "1 EXEC", "2 SET k w", "1 MULTI", "1 GET k", "1 EXEC"],
        [OK, OK, [], OK, OK, QUEUED, [b"w"]],
    ),
    "discard forgets the watches": (
        ["1 WATCH k", "1 MULTI", "1 DISCARD", "2 SET k w", "1 MULTI", "1 GET k", "1 EXEC"],
        [OK, OK, OK, OK, OK, QUEUED, [b"w"]],
    ),
    "a broken watch is forgotten by the aborted exec": (
        ["1 WATCH k", "2 SET k w", "1 MULTI", "1 EXEC", "1 MULTI", "1 GET k", "1 EXEC"],
        [OK, OK, OK, NullArray(), OK, QUEUED, [b"w"]],
    ),
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario(name: str) -> None:
    steps, expected = SCENARIOS[name]
    assert play(steps) == expected


def test_watched_key_that_expires_breaks_exec() -> None:
    first, _, clock = make_sessions()
    assert run(first, "SET k v PX 100", "WATCH k") == [OK, OK]
    clock.advance(100)  # expired, but nobody deleted it yet
    assert run(first, "MULTI", "GET k", "EXEC") == [OK, QUEUED, NullArray()]


def test_watched_key_deleted_by_the_sweep_breaks_exec() -> None:
    first, _, clock = make_sessions()
    run(first, "SET k v PX 100", "WATCH k")
    clock.advance(100)
    assert first.keyspace.active_expire_step(100) == 1
    assert run(first, "MULTI", "GET k", "EXEC") == [OK, QUEUED, NullArray()]


def test_key_already_expired_when_watched() -> None:
    # Redis: its deletion is no visible change, so EXEC still runs...
    first, second, clock = make_sessions()
    run(first, "SET k v PX 100")
    clock.advance(100)
    run(first, "WATCH k")
    assert first.keyspace.active_expire_step(100) == 1
    assert run(first, "MULTI", "GET k", "EXEC") == [OK, QUEUED, [None]]
    # ... but writing a value into it is.
    run(first, "SET k v PX 100")
    clock.advance(100)
    run(first, "WATCH k")
    run(second, "SET k again")
    assert run(first, "MULTI", "GET k", "EXEC") == [OK, QUEUED, NullArray()]


def test_watch_registry_is_emptied() -> None:
    first, second, _ = make_sessions()
    keyspace = first.keyspace
    run(first, "WATCH a b")
    run(second, "WATCH b c")
    assert keyspace.watched_keys() == 3
    run(first, "UNWATCH")
    assert keyspace.watched_keys() == 2 and first.transaction.watched == {}
    run(second, "MULTI", "EXEC")
    assert keyspace.watched_keys() == 0
    run(first, "WATCH a", "MULTI", "DISCARD")
    assert keyspace.watched_keys() == 0
    run(first, "WATCH a")
    run(second, "SET a 1")
    assert first.transaction.dirty
    first.transaction.discard()  # what the shell does when a connection closes
    assert keyspace.watched_keys() == 0 and not first.transaction.dirty
    run(second, "SET a 2")  # nobody watches: nothing is marked
    assert not first.transaction.dirty


def test_sessions_in_one_batch() -> None:
    # One worker hop may carry both connections: the writer's SET lands
    # between the watcher's WATCH and EXEC.
    first, second, _ = make_sessions()
    jobs = [job(first, "WATCH k", "MULTI", "GET k"), job(second, "SET k w"), job(first, "EXEC")]
    run_batch(first.store, jobs)
    assert [one.replies for one in jobs] == [[OK, OK, QUEUED], [OK], [NullArray()]]


def test_exec_records_each_queued_command() -> None:
    first, _, _ = make_sessions()
    run(first, "MULTI", "SET k v", "GET k", "INCR k", "EXEC")
    table = first.stats.command_table()
    assert table["set"][:2] == (1, 0)
    assert table["get"][:2] == (1, 0)
    assert table["incr"][:2] == (1, 1)
    assert table["exec"][:2] == (1, 0)
    counters = first.stats.counters()
    assert (counters["sets"], counters["gets"]) == (2, 1)


def test_exec_reply_encodings() -> None:
    first, second, _ = make_sessions()
    run(first, "WATCH k")
    run(second, "SET k v")
    reply = run(first, "MULTI", "EXEC")[1]
    assert encode_reply(reply, 2) == b"*-1\r\n"
    assert encode_reply(reply, 3) == b"_\r\n"
    assert encode_reply(EXECABORT, 2) == b"-EXECABORT Transaction discarded because of previous errors.\r\n"


def test_specs() -> None:
    for name, arity in [("multi", 1), ("exec", 1), ("discard", 1), ("watch", -2), ("unwatch", 1)]:
        spec = REDIS_COMMANDS.get(name)
        assert spec is not None and spec.arity == arity and spec.group == "transactions" and spec.summary
        # UNWATCH is queued inside MULTI, as in Redis; the others run at once.
        assert (spec.in_multi is InMulti.RUN) == (name != "unwatch"), name
    assert REDIS_COMMANDS.get("exec").is_write
    watch = REDIS_COMMANDS.get("watch")
    assert (watch.first_key, watch.last_key, watch.key_step) == (1, -1, 1)
