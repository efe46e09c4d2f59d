"""Cluster mode through the engine (no sockets): CROSSSLOT at admission
(outside and inside MULTI, counted as Redis counts it), the per-connection
commands, SELECT, keys per slot, and the same requests with cluster mode
off (unchanged). Differential checks against redis-server are in
tests/integration/test_cluster_emulated.py."""

from __future__ import annotations

import pytest

from trio_kv.cluster.ring import Member
from trio_kv.cluster.slots import key_slot
from trio_kv.cluster.view import ClusterView
from trio_kv.commands.client import client_info_line
from trio_kv.commands.redis import REDIS_COMMANDS
from trio_kv.commands.slot_check import CROSSSLOT, request_keys, slot_refusal
from trio_kv.config import Config
from trio_kv.protocol.replies import OK, QUEUED, Error, NullArray
from trio_kv.store.local_control import LocalControl

from .redis_session import call, make_session, request, run

EXECABORT = Error("EXECABORT Transaction discarded because of previous errors.")


@pytest.fixture
def session():
    session, _clock = make_session(Config(cluster_enabled=True))
    return session


def test_local_control_builds_the_one_node_view(session) -> None:
    view = session.control.cluster_view()
    assert isinstance(view, ClusterView) and view.myself == Member("127.0.0.1", 9099)
    assert len(view.my_id) == 40 and int(view.my_id, 16) >= 0
    off, _ = make_session()
    assert off.control.cluster_view() is None
    assert isinstance(session.control, LocalControl)


@pytest.mark.parametrize(
    "command",
    ["MGET a b", "MSET a 1 b 2", "MSET a 1 b", "MSETNX a 1 b 2", "DEL a b", "UNLINK a b", "EXISTS a b",
     "RENAME a b", "RENAMENX a b", "WATCH a b", "DEL x{t} y{t} z"],
)
def test_keys_on_several_slots_are_refused(session, command: str) -> None:
    assert call(session, "SET a 1") == OK
    assert call(session, command) == CROSSSLOT
    assert call(session, "GET a") == b"1"  # nothing ran
    off, _ = make_session()
    assert call(off, command) != CROSSSLOT


def test_keys_on_one_slot_run(session) -> None:
    assert run(session, "MSET {u}a 1 {u}b 2", "MGET {u}a {u}b", "RENAME {u}a {u}c", "DEL {u}b {u}c") == [
        OK, [b"1", b"2"], OK, 2,
    ]


def test_refusals_are_counted_as_rejected_calls_and_errors(session) -> None:
    run(session, "MGET a b", "MGET a b")
    stats = session.store.stats
    info = call(session, "INFO commandstats").data.decode()
    assert "cmdstat_mget:calls=0,usec=0,usec_per_call=0.00,rejected_calls=2,failed_calls=0" in info
    assert "errorstat_CROSSSLOT:count=2" in call(session, "INFO errorstats").data.decode()
    assert stats is session.stats


def test_exec_of_queued_commands_on_several_slots_discards(session) -> None:
    assert run(session, "MULTI", "SET a 1", "SET b 2", "EXEC", "GET a", "EXEC") == [
        OK, QUEUED, QUEUED, CROSSSLOT, None, Error("ERR EXEC without MULTI"),
    ]


def test_a_queued_request_on_several_slots_fails_the_transaction(session) -> None:
    assert run(session, "MULTI", "MGET a b", "SET a 1", "EXEC", "GET a") == [OK, CROSSSLOT, QUEUED, EXECABORT, None]
    assert run(session, "MULTI", "WATCH a b", "EXEC") == [OK, CROSSSLOT, EXECABORT]


def test_a_transaction_on_one_slot_runs_and_watch_is_not_counted(session) -> None:
    assert run(session, "MULTI", "SET {t}1 1", "GET {t}2", "EXEC") == [OK, QUEUED, QUEUED, [OK, None]]
    assert run(session, "WATCH a", "MULTI", "SET b 1", "EXEC") == [OK, OK, QUEUED, [OK]]
    assert run(session, "WATCH a", "SET a 2", "MULTI", "SET b 1", "EXEC") == [OK, OK, OK, QUEUED, NullArray()]


def test_select_refused_but_zero(session) -> None:
    not_allowed = Error("ERR SELECT is not allowed in cluster mode")
    assert run(session, "SELECT 0", "SELECT 1", "SELECT -1", "SELECT abc") == [
        OK, not_allowed, not_allowed, Error("ERR value is not an integer or out of range"),
    ]
    off, _ = make_session()
    assert call(off, "SELECT 1") == Error("ERR DB index is out of range")


def test_readonly_is_per_connection_and_reset_clears_it(session) -> None:
    assert call(session, "READONLY") == OK
    assert " flags=r " in client_info_line(session, 0)
    assert run(session, "MULTI")[0] == OK
    assert " flags=xr " in client_info_line(session, 0)
    run(session, "DISCARD", "READWRITE")
    assert " flags=N " in client_info_line(session, 0)
    run(session, "READONLY", "RESET")
    assert not session.cluster_readonly
    assert call(session, "ASKING") == OK


def test_wait_answers_at_once_in_both_modes(session) -> None:
    off, _ = make_session()
    for each in (session, off):
        assert run(each, "SET k v", "WAIT 1 0", "WAIT 0 100", "WAIT 0 -1", "WAIT x 0", "WAIT 0 x") == [
            OK, 0, 0, Error("ERR timeout is negative"), Error("ERR value is not an integer or out of range"),
            Error("ERR timeout is not an integer or out of range"),
        ]
    disabled = Error("ERR This instance has cluster support disabled")
    assert run(off, "READONLY", "READWRITE", "ASKING", "CLUSTER INFO", "CLUSTER HELP") == [disabled] * 5


def test_info_and_hello_say_cluster(session) -> None:
    assert "cluster_enabled:1" in call(session, "INFO cluster").data.decode()
    assert "redis_mode:cluster" in call(session, "INFO server").data.decode()
    assert dict(call(session, "HELLO 2").pairs)[b"mode"] == b"cluster"
    off, _ = make_session()
    assert "cluster_enabled:0" in call(off, "INFO cluster").data.decode()
    assert dict(call(off, "HELLO 2").pairs)[b"mode"] == b"standalone"


def test_countkeysinslot_and_getkeysinslot(session) -> None:
    keys = [f"{{s}}{index}" for index in range(30)] + [f"other{index}" for index in range(30)]
    for key in keys:
        call(session, f"SET {key} v")
    slot = key_slot(b"{s}")
    run(session, "DEL {s}0", "RENAME {s}1 {s}renamed", "HSET {s}h f v", "HDEL {s}h f", "HSET {s}h2 f v")
    expected = sorted(k.encode() for k in keys if k.startswith("{s}") and k not in ("{s}0", "{s}1"))
    expected = sorted(expected + [b"{s}renamed", b"{s}h2"])
    assert call(session, f"CLUSTER COUNTKEYSINSLOT {slot}") == len(expected)
    assert sorted(call(session, f"CLUSTER GETKEYSINSLOT {slot} 1000")) == expected
    assert len(call(session, f"CLUSTER GETKEYSINSLOT {slot} 3")) == 3
    assert call(session, f"CLUSTER GETKEYSINSLOT {slot} 0") == []
    empty = next(s for s in range(16384) if not call(session, f"CLUSTER COUNTKEYSINSLOT {s}"))
    assert call(session, f"CLUSTER GETKEYSINSLOT {empty} 10") == []
    run(session, "FLUSHALL")
    assert call(session, f"CLUSTER COUNTKEYSINSLOT {slot}") == 0


def test_expired_keys_count_until_removed() -> None:
    session, clock = make_session(Config(cluster_enabled=True))
    slot = key_slot(b"gone")
    run(session, "SET gone v PX 10")
    clock.advance(50)
    assert call(session, f"CLUSTER COUNTKEYSINSLOT {slot}") == 1  # expired, still stored
    assert call(session, "GET gone") is None
    session.keyspace.active_expire_step(100)
    assert call(session, f"CLUSTER COUNTKEYSINSLOT {slot}") == 0


def test_request_keys_follow_the_table_positions() -> None:
    table = REDIS_COMMANDS

    def keys(line: str) -> list[bytes]:
        args = request(line)
        spec = table.get(args[0].decode())
        assert spec is not None
        return request_keys(spec, args)

    assert keys("MSET a 1 b 2 c 3") == [b"a", b"b", b"c"]
    assert keys("MSET a 1 b") == [b"a", b"b"]
    assert keys("RENAME a b") == [b"a", b"b"]
    assert keys("GET a") == [b"a"]
    assert keys("DEL a b c") == [b"a", b"b", b"c"]
    assert keys("PING") == []
    get, mget = table.get("get"), table.get("mget")
    assert get is not None and mget is not None
    assert slot_refusal([(get, request("GET {x}a")), (mget, request("MGET {x}b x"))]) is None
    assert slot_refusal([(get, request("GET a")), (get, request("GET b"))]) == CROSSSLOT
    several = {name for name, spec in table.specs.items() if spec.several_keys}
    assert several == {"del", "exists", "mget", "mset", "msetnx", "rename", "renamenx", "unlink", "watch"}
