"""The engine without sockets: batches, ordering, errors, and exact counters
when eight threads run batches on one store at once."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import replace

from trio_kv.commands.session import Session
from trio_kv.commands.text import TEXT_COMMANDS
from trio_kv.commands.wire import LINE
from trio_kv.config import Config
from trio_kv.protocol.replies import OK, PONG, Error
from trio_kv.protocol.text import NOT_FOUND, Labelled
from trio_kv.store.engine import Job, Store, run_batch
from trio_kv.store.local_control import LocalControl


def _job(store: Store, requests: list[list[bytes]], client_id: int = 1) -> Job:
    return Job(Session(client_id, store, LocalControl(store), wire=LINE), TEXT_COMMANDS, requests, time.perf_counter())


def test_batch_answers_each_connection_in_order():
    store = Store(Config())
    first = _job(store, [[b"SET", b"a", b"1"], [b"GET", b"a"], [b"NOPE"], [b"get"]], client_id=1)
    second = _job(store, [[b"GET", b"a"], [b"DEL", b"a"], [b"GET", b"a"]], client_id=2)
    run_batch(store, [first, second])
    assert first.replies == [
        OK,
        Labelled(b"VALUE", b"1"),
        Error("unknown command"),
        Error("wrong number of arguments for 'get'"),
    ]
    assert second.replies == [Labelled(b"VALUE", b"1"), OK, NOT_FOUND]
    counters = store.stats.counters()
    assert (counters["gets"], counters["sets"], counters["dels"], counters["errors"]) == (3, 1, 1, 2)


def test_quit_stops_the_rest_of_the_batch():
    store = Store(Config())
    job = _job(store, [[b"PING"], [b"QUIT"], [b"SET", b"x", b"y"]])
    run_batch(store, [job])
    assert job.replies == [PONG, OK]
    assert store.keyspace.get(b"x") is None


def test_a_failing_handler_is_contained(monkeypatch):
    store = Store(Config())
    spec = TEXT_COMMANDS.get("ping")

    def broken(session, args):
        raise RuntimeError("bug")

    monkeypatch.setattr(TEXT_COMMANDS, "by_name", {**TEXT_COMMANDS.by_name, b"ping": replace(spec, handler=broken)})
    job = _job(store, [[b"PING"], [b"SET", b"k", b"v"]])
    run_batch(store, [job])
    assert isinstance(job.replies[0], Error)
    assert job.replies[1] == OK
    lock = store.lock.statistics()
    assert lock["readers_active"] == 0 and not lock["writer_active"]


def test_eight_threads_counters_exact():
    store = Store(Config())
    threads = 8
    batches = 300
    sent = [{"gets": 0, "sets": 0, "dels": 0} for _ in range(threads)]
    failures = []

    def worker(index: int) -> None:
        rng = random.Random(index)
        try:
            for _ in range(batches):
                requests = []
                for _ in range(rng.randint(1, 20)):
                    key = b"k%d" % rng.randrange(30)
                    op = rng.choice((b"SET", b"GET", b"DEL"))
                    requests.append([op, key, b"v"] if op == b"SET" else [op, key])
                    sent[index][op.decode().lower() + "s"] += 1
                job = _job(store, requests, client_id=index)
                run_batch(store, [job])
                assert len(job.replies) == len(requests)
        except Exception as error:  # reported to the main thread below
            failures.append(error)
            raise

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=60)
    assert not failures
    counters = store.stats.counters()
    for name in ("gets", "sets", "dels"):
        assert counters[name] == sum(s[name] for s in sent)
    assert counters["errors"] == 0
    keyspace = store.keyspace
    live = dict(keyspace.live_items())
    assert len(keyspace) == len(live)
    assert keyspace.value_bytes == sum(len(v) for v in live.values())
