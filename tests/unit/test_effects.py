"""The effects sink (``trio_kv/store/effects.py``): every applied write leaves
through it once, in apply order, one unit per write command, and any number
of subscribers get the same units as the append-only log."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from trio_kv.commands.redis import REDIS_COMMANDS
from trio_kv.commands.session import Session
from trio_kv.commands.wire import RESP
from trio_kv.config import Config
from trio_kv.protocol.replies import OK, QUEUED, Error
from trio_kv.store.durability.apply import load_keyspace
from trio_kv.store.durability.append_log import Persistence
from trio_kv.store.durability.data_dir import DataDir
from trio_kv.store.effects import Effect, EffectSink
from trio_kv.store.engine import Job, Store, run_batch
from trio_kv.store.keyspace import Keyspace
from trio_kv.store.local_control import LocalControl

from ..fake_clock import START_MS, FakeClock
from .redis_session import request


def open_log(directory: Path) -> Persistence:
    data_dir = DataDir(directory)
    load_keyspace(data_dir, Keyspace())
    return Persistence(data_dir, "always", rewrite_min_bytes=1, rewrite_percentage=100)


def log_records(directory: Path) -> list[list[Effect]]:
    """Every record of the logs in ``directory``, in order (its boundaries kept)."""
    records: list[list[Effect]] = []
    DataDir(directory).replay(records.append)
    return records


def run(store: Store, session: Session, *commands: str) -> Job:
    """One job, run to its end (slice after slice, as the dispatcher would)."""
    job = Job(session, REDIS_COMMANDS, [request(command) for command in commands], time.perf_counter())
    run_batch(store, [job])
    while job.sliced is not None:
        run_batch(store, [job])
    return job


def test_a_second_subscriber_sees_every_write_once_in_order_and_the_log_keeps_its_records(tmp_path: Path) -> None:
    clock = FakeClock()
    store = Store(Config(), keyspace=Keyspace(clock_ms=clock))
    persistence = open_log(tmp_path)
    store.keyspace.effects.subscribe(persistence.log)
    store.persistence = persistence
    second: list[list[Effect]] = []
    store.keyspace.effects.subscribe(second.append)
    session = Session(1, store, LocalControl(store), wire=RESP)

    transaction = run(store, session, "SET a 1", "MULTI", "SET b 2", "INCR a", "DEL nope", "EXPIRE b 100", "EXEC")
    assert transaction.replies == [OK, OK, QUEUED, QUEUED, QUEUED, QUEUED, [OK, 2, 0, 1]]
    assert transaction.logged == [0, 6]  # the SET, and the EXEC as a whole
    run(store, session, "MSET c 3 d 4", "GET c", "PEXPIRE c 10", "PEXPIRE d -1", "PERSIST c")
    run(store, session, "SET e 5 PX 5")
    clock.advance(5)
    assert store.keyspace.active_expire_step(100) == 1  # e expired: deleted, no effect
    run(store, session, "SET f 6 PX 5", "GET f")
    clock.advance(5)
    run(store, session, "SET f 7 KEEPTTL", "DEL f")  # f had expired: deleted first, no effect
    flush = run(store, session, "FLUSHALL", "SET g 8")
    assert flush.replies == [OK, OK]
    persistence.flush()
    persistence.close()

    expected = [
        [("SET", b"a", b"1", None)],
        [("SET", b"b", b"2", None), ("SET", b"a", b"2", None), ("EXPIRE", b"b", START_MS + 100_000)],
        [("SET", b"c", b"3", None), ("SET", b"d", b"4", None)],
        [("EXPIRE", b"c", START_MS + 10)],
        [("DEL", b"d")],
        [("PERSIST", b"c")],
        [("SET", b"e", b"5", START_MS + 5)],
        [("SET", b"f", b"6", START_MS + 10)],
        [("SET", b"f", b"7", None)],
        [("DEL", b"f")],
        [("CLEAR",)],
        [("SET", b"g", b"8", None)],
    ]
    assert second == expected
    assert log_records(tmp_path) == expected


def test_nobody_subscribed_means_nothing_pending() -> None:
    sink = EffectSink()
    sink.emit(("DEL", b"k"))
    sink.end_command()
    assert sink.pending is None and not sink.subscribed
    units: list[list[Effect]] = []
    sink.subscribe(units.append)
    sink.end_command()  # nothing emitted: no unit
    sink.emit(("DEL", b"k"))
    sink.emit(("CLEAR",))
    sink.end_command()
    assert units == [[("DEL", b"k"), ("CLEAR",)]] and sink.pending == []
    sink.unsubscribe(units.append)
    sink.emit(("DEL", b"j"))
    assert sink.pending is None and len(units) == 1


def test_a_unit_one_subscriber_cannot_keep_still_reaches_the_others_then_raises() -> None:
    sink = EffectSink()
    kept: list[list[Effect]] = []

    def refuse(unit: list[Effect]) -> None:
        raise ValueError("record too large")

    sink.subscribe(refuse)
    sink.subscribe(kept.append)
    sink.emit(("SET", b"k", b"v", None))
    with pytest.raises(ValueError, match="too large"):
        sink.end_command()
    assert kept == [[("SET", b"k", b"v", None)]]
    sink.emit(("DEL", b"k"))
    sink.unsubscribe(refuse)
    sink.end_command()  # the next unit is whole: nothing of the refused one is left
    assert kept[-1] == [("DEL", b"k")]


def test_the_engine_answers_a_write_a_subscriber_refused_with_an_error() -> None:
    store = Store(Config())
    units: list[list[Effect]] = []

    def refuse_big(unit: list[Effect]) -> None:
        if any(len(effect[2]) > 10 for effect in unit if effect[0] == "SET"):
            raise ValueError("too big for me")
        units.append(unit)

    store.keyspace.effects.subscribe(refuse_big)
    session = Session(1, store, LocalControl(store), wire=RESP)
    job = run(store, session, "SET big 0123456789abc", "SET small x")
    assert isinstance(job.replies[0], Error) and "too big for me" in job.replies[0].message
    assert job.replies[1] == OK
    assert units == [[("SET", b"small", b"x", None)]]
    assert store.keyspace.get(b"big") == b"0123456789abc"  # applied in memory all the same
