"""Handlers that need the running server, driven without one: a fake
``ServerControl`` (commands.control) records every call, and the replies of
CONFIG (maxclients, port), INFO, CLIENT LIST/KILL, SAVE, BGSAVE and
SHUTDOWN are checked together with the calls the fake saw."""

from __future__ import annotations

import errno
import time
from collections import defaultdict
from collections.abc import Mapping

import pytest

from trio_kv.cluster.view import ClusterView
from trio_kv.commands.control import LogStatus, ServerControl
from trio_kv.commands.session import Session
from trio_kv.commands.wire import RESP
from trio_kv.config import Config
from trio_kv.protocol.replies import NO_REPLY, OK, Error, Map, SimpleString, Verbatim
from trio_kv.store.store import Store

from .redis_session import call, run


class FakeLog:
    """The append-only log as handlers read it (``LogStatus``)."""

    def __init__(self) -> None:
        self.rewrite_in_progress = False
        self.last_save_time = 1_700_000_000
        self.refused: str | None = None

    def refusal(self) -> str | None:
        return self.refused

    def info(self) -> Mapping[str, object]:
        # Every INFO persistence field the log reports, 0 unless named here.
        return defaultdict(int, {"aof_enabled": 1, "aof_last_write_status": "ok", "appendfsync": "everysec"})


class FakeControl:
    """A ``ServerControl`` that records what handlers ask of it."""

    def __init__(self, log: LogStatus | None = None) -> None:
        self.calls: list[tuple[object, ...]] = []
        self.started_at_s = 1_600_000_000.0
        self.log = log
        self.max_clients = 100
        self.tcp_port = 6379
        self.busy_port = 7001
        self.sessions: list[Session] = []
        self.compaction_ok = True
        self.bus_status: Mapping[str, object] | None = None

    def clients(self) -> list[Session]:
        self.calls.append(("clients",))
        return list(self.sessions)

    def kill_client(self, client_id: int) -> None:
        self.calls.append(("kill_client", client_id))

    def request_shutdown(self) -> None:
        self.calls.append(("request_shutdown",))

    def set_max_clients(self, requested: int) -> None:
        self.calls.append(("set_max_clients", requested))
        self.max_clients = min(requested, 500)  # as the server clamps it

    def change_port(self, port: int) -> None:
        self.calls.append(("change_port", port))
        if port == self.busy_port:
            raise OSError(errno.EADDRINUSE, "Address already in use")
        self.tcp_port = port

    def dispatcher_statistics(self) -> Mapping[str, int]:
        self.calls.append(("dispatcher_statistics",))
        return {"hops": 12, "jobs": 34}

    def request_compaction(self) -> None:
        self.calls.append(("request_compaction",))

    def compact_and_wait(self) -> bool:
        self.calls.append(("compact_and_wait",))
        return self.compaction_ok

    def cluster_view(self) -> ClusterView | None:
        return None  # cluster mode off

    def cluster_bus_status(self) -> Mapping[str, object] | None:
        return self.bus_status


def _session(control: FakeControl, client_id: int = 1) -> Session:
    checked: ServerControl = control  # the fake implements the Protocol
    session = Session(client_id, Store(Config()), checked, wire=RESP, address=f"127.0.0.1:{50000 + client_id}")
    session.created_ms = time.time_ns() // 1_000_000
    control.sessions.append(session)
    return session


def _other(session: Session, control: FakeControl, client_id: int) -> Session:
    other = Session(client_id, session.store, control, wire=RESP, address=f"127.0.0.1:{50000 + client_id}")
    other.created_ms = session.created_ms
    control.sessions.append(other)
    return other


def _info(session: Session, section: str) -> dict[str, str]:
    reply = call(session, f"INFO {section}")
    assert isinstance(reply, Verbatim)
    return dict(line.split(":", 1) for line in reply.data.decode().split("\r\n") if line and line[0] != "#")


def test_config_maxclients_reads_and_sets_through_the_control() -> None:
    control = FakeControl()
    session = _session(control)
    assert call(session, "CONFIG GET maxclients") == Map([(b"maxclients", b"100")])
    assert call(session, "CONFIG SET maxclients 900") == OK
    assert control.calls == [("set_max_clients", 900)]
    assert call(session, "CONFIG GET maxclients") == Map([(b"maxclients", b"500")])  # clamped by the server


def test_config_port_moves_through_the_control_and_rolls_back() -> None:
    control = FakeControl()
    session = _session(control)
    assert call(session, "CONFIG GET port") == Map([(b"port", b"6379")])
    assert call(session, "CONFIG SET port 7002") == OK
    assert call(session, "CONFIG SET port 7001 maxclients 7") == Error(
        "ERR CONFIG SET failed (possibly related to argument 'port') - "
        "Unable to listen on this port. Check server logs."
    )
    # maxclients applied first (it cannot fail), then undone with the value read before.
    assert control.calls == [
        ("change_port", 7002), ("set_max_clients", 7), ("change_port", 7001), ("set_max_clients", 100),
    ]
    assert call(session, "CONFIG GET port") == Map([(b"port", b"7002")])


def test_info_reads_clients_uptime_port_and_dispatcher_from_the_control() -> None:
    control = FakeControl(log=FakeLog())
    session = _session(control)
    watcher = _other(session, control, 2)
    run(watcher, "WATCH k")
    server = _info(session, "server")
    assert server["tcp_port"] == "6379"
    assert int(server["uptime_in_seconds"]) >= int(time.time() - control.started_at_s) - 5
    clients = _info(session, "clients")
    assert (clients["connected_clients"], clients["maxclients"], clients["watching_clients"]) == ("2", "100", "1")
    persistence = _info(session, "persistence")
    assert (persistence["aof_enabled"], persistence["appendfsync"]) == ("1", "everysec")
    stats = _info(session, "stats")
    assert (stats["dispatcher_hops"], stats["dispatcher_jobs"]) == ("12", "34")
    assert [call for call in control.calls if call != ("clients",)] == [("dispatcher_statistics",)]


def test_client_list_and_kill_use_the_control() -> None:
    control = FakeControl()
    session = _session(control)
    _other(session, control, 2)
    listed = call(session, "CLIENT LIST")
    assert isinstance(listed, Verbatim)
    assert [line.split()[0] for line in listed.data.decode().splitlines()] == ["id=1", "id=2"]
    assert call(session, "CLIENT KILL ID 2") == 1
    assert call(session, "CLIENT KILL ID 1") == 0  # SKIPME yes by default
    assert control.calls == [("clients",), ("clients",), ("kill_client", 2), ("clients",)]
    assert not session.closing


def test_save_and_bgsave_with_the_log_ask_the_control() -> None:
    log = FakeLog()
    control = FakeControl(log=log)
    session = _session(control)
    assert call(session, "SAVE") == OK
    control.compaction_ok = False
    log.refused = "disk full"
    assert call(session, "SAVE") == Error("ERR SAVE failed: disk full")
    assert call(session, "BGSAVE") == SimpleString("Background saving started")
    log.rewrite_in_progress = True
    assert call(session, "BGSAVE") == Error("ERR Background save already in progress")
    assert call(session, "BGSAVE SCHEDULE") == SimpleString("Background saving scheduled")
    assert call(session, "LASTSAVE") == log.last_save_time
    assert control.calls == [
        ("compact_and_wait",), ("compact_and_wait",), ("request_compaction",), ("request_compaction",),
    ]


def test_memory_only_save_writes_the_snapshot_and_bgsave_is_refused(tmp_path) -> None:
    control = FakeControl(log=None)
    session = Session(1, Store(Config(data_dir=str(tmp_path))), control, wire=RESP)
    assert call(session, "LASTSAVE") == int(control.started_at_s)
    assert call(session, "SAVE") == OK
    assert (tmp_path / "dump.snapshot").exists()
    assert call(session, "BGSAVE") == Error(
        "ERR the append-only log is off (--appendonly no): use SAVE to write a snapshot"
    )
    assert call(session, "SHUTDOWN SAVE") == Error(
        "ERR SHUTDOWN SAVE is not supported: trio_kv keeps no data on disk. Use SHUTDOWN NOSAVE."
    )
    assert control.calls == []


@pytest.mark.parametrize("command", ["SHUTDOWN", "SHUTDOWN NOSAVE", "SHUTDOWN SAVE NOW"])
def test_shutdown_asks_the_control_and_closes_without_a_reply(command: str) -> None:
    control = FakeControl(log=FakeLog())
    session = _session(control)
    assert run(session, command, "PING") == [NO_REPLY]
    assert control.calls == [("request_shutdown",)] and session.closing
