"""Redis commands through the engine (``run_batch``), no sockets: the
helpers the Redis command tests share.

Commands are written as shell-quoted lines (``"SET k 'a b'"``) or given as
argument lists; ``run`` sends several as one job, as one read from a
connection would, and returns every reply. A session made here sits on a
store whose keyspace reads a ``FakeClock``, so TTLs are exact.
"""

from __future__ import annotations

import shlex
import time

from trio_kv.commands.redis import REDIS_COMMANDS
from trio_kv.commands.session import Session
from trio_kv.commands.wire import RESP
from trio_kv.config import Config
from trio_kv.protocol.replies import Error
from trio_kv.store.engine import Job, Store, run_batch
from trio_kv.store.local_control import LocalControl
from trio_kv.store.keyspace import Keyspace

from ..fake_clock import FakeClock


def make_session(config: Config | None = None) -> tuple[Session, FakeClock]:
    """A RESP session (id 1) on a fresh store on a fake clock, and the clock."""
    clock = FakeClock()
    store = Store(config or Config(), keyspace=Keyspace(clock_ms=clock))
    return Session(1, store, LocalControl(store), wire=RESP), clock


def request(command: str | list[bytes]) -> list[bytes]:
    """``"SET k 'a b'"`` -> [b"SET", b"k", b"a b"] (shell quoting; '' is empty)."""
    return command if isinstance(command, list) else [word.encode() for word in shlex.split(command)]


def job(session: Session, *commands: str | list[bytes]) -> Job:
    return Job(session, REDIS_COMMANDS, [request(command) for command in commands], time.perf_counter())


def run(session: Session, *commands: str | list[bytes]) -> list[object]:
    """Every reply to ``commands``, run as one job; a job whose sliced
    command (FLUSHALL, KEYS, a big SCAN) is unfinished after a hop runs
    again, as the dispatcher queues it again (a slice ends on the wall
    clock, so under load one hop may not finish it)."""
    one = job(session, *commands)
    run_batch(session.store, [one])
    while one.sliced is not None:
        run_batch(session.store, [one])
    return one.replies


def call(session: Session, command: str | list[bytes]) -> object:
    return run(session, command)[0]


def reply_after(setup: list[str], command: str) -> object:
    """The reply to ``command`` on a fresh session after ``setup``, which
    must succeed (no error replies)."""
    session, _ = make_session()
    setup_replies = run(session, *setup) if setup else []
    assert not any(isinstance(reply, Error) for reply in setup_replies), setup_replies
    return call(session, command)


def key_spec(name: str) -> tuple[int, set[str], int, int, int]:
    """A command's (arity, flags, first key, last key, key step), as
    ``COMMAND INFO`` in Redis shows them."""
    spec = REDIS_COMMANDS.get(name)
    assert spec is not None, name
    return spec.arity, set(spec.flags), spec.first_key, spec.last_key, spec.key_step
