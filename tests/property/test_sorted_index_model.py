"""The sorted key index stays exact through every mutation path: a
hypothesis state machine drives Redis commands through the engine
(``run_batch``, so the effects sink, the sliced FLUSHALL and the sliced
KRANGE run as in the server; slices of one unit, so a KRANGE of a few
hundred keys resumes between slices) against a model of the live keys.

Paths covered: SET with and without TTL, MSET of many keys at once
(table resizes), DEL, PEXPIRE (a time in the past deletes), PERSIST,
RENAME, APPEND, hash values created and emptied (HSET/HDEL), FLUSHALL,
expiry by time (lazy: a write to an expired key; active: the sweep) and a
restart: the append-only log closed and replayed into a new store, whose
index is rebuilt from the table after the load.

Invariants after every step: ``KRANGE - +`` is the sorted live keys,
``KRANGE + - REV`` the same backwards, the index holds exactly the keys
the table stores (expired ones not yet removed included), so its size is
DBSIZE; a KRANGE with random bounds, REV and LIMIT answers the model's
slice."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from trio_kv.commands.redis import REDIS_COMMANDS
from trio_kv.commands.session import Session
from trio_kv.commands.wire import RESP
from trio_kv.config import Config
from trio_kv.protocol.replies import Error
from trio_kv.store.durability.append_log import Persistence
from trio_kv.store.durability.apply import load_keyspace
from trio_kv.store.durability.data_dir import DataDir
from trio_kv.store.engine import Job, Store, run_batch
from trio_kv.store.keyspace import Keyspace
from trio_kv.store.local_control import LocalControl

from ..fake_clock import FakeClock

KEYS = st.integers(0, 40).map(lambda n: b"k%02d" % n) | st.sampled_from([b"", b"\x00", b"\xff", b"k", b"k0"])
VALUES = st.binary(max_size=3)


class SortedIndexModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.directory = Path(tempfile.mkdtemp(prefix="sorted-index-"))
        # key -> (type, absolute expiry or None, a hash's fields); live
        # while the expiry is later than now.
        self.model: dict[bytes, tuple[str, int | None, frozenset[bytes]]] = {}
        self._open()

    def teardown(self) -> None:
        self.store.persistence.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _open(self) -> None:
        self.store = Store(Config(), keyspace=Keyspace(clock_ms=self.clock))
        self.store.slice_seconds = 0  # one unit a slice: walks resume between slices
        data_dir = DataDir(self.directory)
        load_keyspace(data_dir, self.store.keyspace)
        self.store.persistence = Persistence(data_dir, "no", rewrite_min_bytes=1 << 40, rewrite_percentage=0)
        self.store.keyspace.effects.subscribe(self.store.persistence.log)
        self.session = Session(1, self.store, LocalControl(self.store), wire=RESP)

    def run(self, *command: bytes) -> object:
        job = Job(self.session, REDIS_COMMANDS, [list(command)], time.perf_counter())
        run_batch(self.store, [job])
        while job.sliced is not None:
            run_batch(self.store, [job])
        return job.replies[0]

    def live(self) -> dict[bytes, tuple[str, int | None, frozenset[bytes]]]:
        now = self.clock.now_ms
        return {key: state for key, state in self.model.items() if state[1] is None or state[1] > now}

    # --- writes ------------------------------------------------------------

    @rule(key=KEYS, value=VALUES, ttl_ms=st.none() | st.integers(1, 50))
    def set(self, key, value, ttl_ms):
        command = [b"SET", key, value] + ([] if ttl_ms is None else [b"PX", b"%d" % ttl_ms])
        assert self.run(*command) is not None
        self.model[key] = ("string", None if ttl_ms is None else self.clock.now_ms + ttl_ms, frozenset())

    @rule(first=st.integers(0, 2000), count=st.integers(50, 400))
    def mset_many(self, first, count):
        keys = [b"m%05d" % n for n in range(first, first + count)]
        self.run(b"MSET", *[part for key in keys for part in (key, b"v")])
        self.model.update({key: ("string", None, frozenset()) for key in keys})

    @rule(key=KEYS)
    def delete(self, key):
        self.run(b"DEL", key)
        self.model.pop(key, None)

    @rule(key=KEYS, ttl_ms=st.integers(-5, 50))
    def pexpire(self, key, ttl_ms):
        self.run(b"PEXPIRE", key, b"%d" % ttl_ms)
        state = self.live().get(key)
        if state is not None:
            if ttl_ms <= 0:
                del self.model[key]
            else:
                self.model[key] = (state[0], self.clock.now_ms + ttl_ms, state[2])

    @rule(key=KEYS)
    def persist(self, key):
        self.run(b"PERSIST", key)
        state = self.live().get(key)
        if state is not None:
            self.model[key] = (state[0], None, state[2])

    @rule(source=KEYS, destination=KEYS)
    def rename(self, source, destination):
        reply = self.run(b"RENAME", source, destination)
        state = self.live().get(source)
        assert isinstance(reply, Error) == (state is None)
        if state is not None:
            del self.model[source]
            self.model[destination] = state

    @rule(key=KEYS, value=VALUES)
    def append(self, key, value):
        reply = self.run(b"APPEND", key, value)
        state = self.live().get(key)
        if state is None:
            self.model[key] = ("string", None, frozenset())  # even APPEND of nothing creates the key
        else:
            assert isinstance(reply, Error) == (state[0] == "hash")

    @rule(key=KEYS, field=st.sampled_from([b"f", b"g"]), delete=st.booleans())
    def hash_write(self, key, field, delete):
        state = self.live().get(key)
        reply = self.run(b"HDEL" if delete else b"HSET", key, field, *([] if delete else [b"v"]))
        if state is not None and state[0] != "hash":
            assert isinstance(reply, Error)
            return
        fields = set() if state is None else set(state[2])
        if delete:
            fields.discard(field)
        else:
            fields.add(field)
        if fields:
            self.model[key] = ("hash", None if state is None else state[1], frozenset(fields))
        elif state is not None:
            del self.model[key]

    @rule()
    def flushall(self):
        self.run(b"FLUSHALL")
        self.model.clear()

    @rule(ms=st.integers(0, 60))
    def advance(self, ms):
        self.clock.advance(ms)

    @rule(checks=st.integers(1, 40))
    def sweep(self, checks):
        with self.store.lock.write_locked():
            self.store.keyspace.active_expire_step(checks)

    @precondition(lambda self: len(self.model) < 3000)
    @rule()
    def restart(self):
        self.store.persistence.close()
        self._open()

    # --- reads ---------------------------------------------------------------

    @rule(
        low=st.none() | KEYS, high=st.none() | KEYS, low_open=st.booleans(), high_open=st.booleans(),
        reverse=st.booleans(), limit=st.none() | st.tuples(st.integers(-1, 5), st.integers(-1, 60)),
    )
    def krange(self, low, high, low_open, high_open, reverse, limit):
        start = b"-" if low is None else (b"(" if low_open else b"[") + low
        stop = b"+" if high is None else (b"(" if high_open else b"[") + high
        command = [b"KRANGE", stop, start, b"REV"] if reverse else [b"KRANGE", start, stop]
        if limit is not None:
            command += [b"LIMIT", b"%d" % limit[0], b"%d" % limit[1]]
        expected = [
            key for key in sorted(self.live())
            if (low is None or key > low or (key == low and not low_open))
            and (high is None or key < high or (key == high and not high_open))
        ]
        if reverse:
            expected.reverse()
        if limit is not None:
            offset, count = limit
            expected = [] if offset < 0 else expected[offset:] if count < 0 else expected[offset : offset + count]
        assert self.run(*command) == expected

    @invariant()
    def whole_range_is_the_sorted_model(self):
        live = sorted(self.live())
        assert self.run(b"KRANGE", b"-", b"+") == live
        assert self.run(b"KRANGE", b"+", b"-", b"REV") == live[::-1]

    @invariant()
    def index_holds_exactly_the_stored_keys(self):
        index = self.store.sorted_index
        assert index is not None
        stored = sorted(key for key, _value in self.store.keyspace._values.items())
        assert list(index.irange(None, None)) == stored
        assert len(index) == self.run(b"DBSIZE")


SortedIndexModel.TestCase.settings = settings(max_examples=40, stateful_step_count=40, deadline=None)
test_sorted_index_model = SortedIndexModel.TestCase
