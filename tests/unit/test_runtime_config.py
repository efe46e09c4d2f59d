"""CONFIG SET of the parameters whose apply step can fail or needs the
server shell: ``port`` (the server's ``ServerControl.change_port``, which
raises OSError when the port cannot be listened on) and
``client-query-buffer-limit`` (Redis' memory units and bounds).

A failed apply rolls back every parameter already applied, as Redis 7's
CONFIG SET does (tests/unit/introspection.tcl "CONFIG SET rollback on apply
error"); reply texts are redis-server 7.0's.
"""

from __future__ import annotations

import errno

import pytest

from trio_kv.commands.session import Session
from trio_kv.protocol.replies import OK, Error, Map
from trio_kv.store.local_control import LocalControl

from .redis_session import call, make_session


@pytest.fixture
def session() -> Session:
    return make_session()[0]


class PortHook(LocalControl):
    """A stand-in for the server's control: records moves, refuses ``busy``."""

    def __init__(self, session: Session, busy: int) -> None:
        super().__init__(session.store)
        self.busy = busy
        self.calls: list[int] = []
        session.control = self

    def change_port(self, port: int) -> None:
        self.calls.append(port)
        if port == self.busy:
            raise OSError(errno.EADDRINUSE, "Address already in use")
        self.tcp_port = port


def value(session: Session, name: str) -> bytes:
    reply = call(session, f"CONFIG GET {name}")
    assert isinstance(reply, Map) and len(reply.pairs) == 1
    return reply.pairs[0][1]


PORT_FAILED = Error(
    "ERR CONFIG SET failed (possibly related to argument 'port') - Unable to listen on this port. Check server logs."
)


def test_port_moves_through_the_hook(session: Session) -> None:
    hook = PortHook(session, busy=7001)
    assert call(session, "CONFIG SET port 7002") == OK
    assert hook.calls == [7002]
    assert value(session, "port") == b"7002"
    assert call(session, "INFO server").data.decode().count("tcp_port:7002\r\n") == 1


def test_apply_error_rolls_back_what_was_applied(session: Session) -> None:
    hook = PortHook(session, busy=7001)
    assert call(session, "CONFIG SET port 7000") == OK
    before = {name: value(session, name) for name in ("maxmemory", "port", "client-query-buffer-limit")}
    reply = call(session, "CONFIG SET maxmemory 10000001 port 7001 client-query-buffer-limit 10m")
    assert reply == PORT_FAILED
    assert {name: value(session, name) for name in before} == before
    assert session.store.maxmemory_bytes == 0
    assert session.store.client_query_buffer_limit_bytes == 1024 * 1024 * 1024
    assert hook.calls == [7000, 7001]


def test_the_port_is_applied_last_so_the_others_are_undone(session: Session) -> None:
    # Sent first, the port still moves after the others: they are the ones
    # undone, and a successful move never has to be moved back.
    hook = PortHook(session, busy=7001)
    session.store.stats.latency_percentiles = (12.3456789, 99.0)
    reply = call(
        session, "CONFIG SET port 7001 slowlog-max-len 5 latency-tracking-info-percentiles '50 99.9' requirepass s"
    )
    assert reply == PORT_FAILED
    assert session.store.slowlog.max_len == 128
    assert session.store.stats.latency_percentiles == (12.3456789, 99.0)  # exact, not as printed
    assert session.store.requirepass is None
    assert hook.calls == [7001]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("70000", "argument must be between 0 and 65535 inclusive"),
        ("-1", "argument must be between 0 and 65535 inclusive"),
        ("abc", "argument couldn't be parsed into an integer"),
    ],
)
def test_port_bounds_as_redis_server(session: Session, raw: str, reason: str) -> None:
    hook = PortHook(session, busy=7001)
    reply = call(session, f"CONFIG SET port {raw}")
    assert reply == Error(f"ERR CONFIG SET failed (possibly related to argument 'port') - {reason}")
    assert hook.calls == []


@pytest.mark.parametrize(
    ("raw", "stored"),
    [("10m", 10_000_000), ("1mb", 1024 * 1024), ("1048576", 1048576), ("2GB", 2 * 1024**3), ("10gb", 10 * 1024**3)],
)
def test_query_buffer_limit_takes_memory_units(session: Session, raw: str, stored: int) -> None:
    assert call(session, f"CONFIG SET client-query-buffer-limit {raw}") == OK
    assert session.store.client_query_buffer_limit_bytes == stored
    assert value(session, "client-query-buffer-limit") == str(stored).encode()


BETWEEN = "argument must be between 1048576 and 9223372036854775807 inclusive"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("1000", BETWEEN),
        ("1m", BETWEEN),  # 1,000,000 bytes: below Redis' minimum of 1mb
        ("100000000000000000000", BETWEEN),
        ("9223372036854775808", BETWEEN),
        ("abc", "argument must be a memory value"),
        ("-1", "argument must be a memory value"),
        ("10xb", "argument must be a memory value"),
    ],
)
def test_query_buffer_limit_refusals_as_redis_server(session: Session, raw: str, reason: str) -> None:
    reply = call(session, f"CONFIG SET client-query-buffer-limit {raw}")
    assert reply == Error(f"ERR CONFIG SET failed (possibly related to argument 'client-query-buffer-limit') - {reason}")
    assert session.store.client_query_buffer_limit_bytes == 1024 * 1024 * 1024
