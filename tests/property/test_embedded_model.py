"""The embedded library against a dict model, across restarts.

Hypothesis drives put (with and without a TTL), delete, atomic batches,
ordered scans (bounds, limit, reverse: the sorted model),
clock advances, the store's expiry sweep (at a write, on the library's
interval) and restarts: close and reopen the data directory, or drop the
store without closing it (what a killed process leaves: every write
returned was already written to the log) and reopen. After every step
the store agrees with the model on every key ever used, and after a
restart on the key count too: reopen equals the model.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import trio_kv
from trio_kv.embedded import open_store
from trio_kv.embedded.options import library_config
from trio_kv.store.keyspace import Keyspace
from trio_kv.store.store import Store

KEYS = st.binary(min_size=0, max_size=2)
VALUES = st.binary(max_size=6)
TTLS = st.none() | st.integers(1, 400)
OPS = st.lists(
    st.one_of(
        st.builds(trio_kv.Put, KEYS, VALUES, TTLS),
        st.builds(trio_kv.Delete, KEYS),
    ),
    max_size=6,
)


class EmbeddedModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now_ms = 1_000_000
        self.folder = Path(tempfile.mkdtemp(prefix="trio_kv_model_"))
        # key -> (value, expire_at_ms or None); expired entries linger as they may in the store.
        self.model: dict[bytes, tuple[bytes, int | None]] = {}
        self.seen: set[bytes] = set()
        self.db = self._open()

    def _open(self) -> trio_kv.DB:
        # Sweep at every write (interval 0): the sweep's deletions must not
        # change what anyone sees, now or after a restart.
        config = library_config(self.folder / "data", {"active_expire_interval_seconds": 0})
        return open_store(Store(config, Keyspace(lambda: self.now_ms)))

    def _expiry(self, ttl_ms: int | None) -> int | None:
        return None if ttl_ms is None else self.now_ms + ttl_ms

    def _live(self, key: bytes) -> bytes | None:
        entry = self.model.get(key)
        if entry is None or (entry[1] is not None and entry[1] <= self.now_ms):
            return None
        return entry[0]

    @rule(key=KEYS, value=VALUES, ttl_ms=TTLS)
    def put(self, key, value, ttl_ms):
        self.db.put(key, value, ttl_ms=ttl_ms)
        self.model[key] = (value, self._expiry(ttl_ms))
        self.seen.add(key)

    @rule(key=KEYS)
    def delete(self, key):
        assert self.db.delete(key) == (self._live(key) is not None)
        self.model.pop(key, None)
        self.seen.add(key)

    @rule(ops=OPS)
    def batch(self, ops):
        self.db.batch(ops)
        for op in ops:
            if isinstance(op, trio_kv.Put):
                self.model[op.key] = (op.value, self._expiry(op.ttl_ms))
            else:
                self.model.pop(op.key, None)
            self.seen.add(op.key)

    @rule(start=st.none() | KEYS, end=st.none() | KEYS, limit=st.none() | st.integers(0, 5), reverse=st.booleans())
    def scan(self, start, end, limit, reverse):
        live = {key: value for key in self.model if (value := self._live(key)) is not None}
        keys = sorted(key for key in live if (start is None or key >= start) and (end is None or key < end))
        if reverse:
            keys.reverse()
        assert list(self.db.scan(start, end, limit, reverse)) == [(key, live[key]) for key in keys][:limit]

    @rule(ms=st.integers(1, 300))
    def advance_clock(self, ms):
        self.now_ms += ms

    @rule()
    def restart(self):
        self.db.close()
        self.db = self._open()
        self._check_count()

    @rule()
    def crash(self):
        # No close: the log is not fsynced; its descriptors are dropped as a
        # dead process' are (nothing is buffered: every returned write was written).
        persistence = self.db.store.persistence
        assert persistence is not None and persistence.writer.pending_bytes == 0
        persistence.writer.close()
        persistence.data_dir.unlock()
        self.db = self._open()
        self._check_count()

    def _check_count(self):
        live = {key for key in self.model if self._live(key) is not None}
        assert len(self.db) == len(live)

    @invariant()
    def agrees_with_model(self):
        for key in self.seen:
            expected = self._live(key)
            assert self.db.get(key) == expected, key
            assert self.db.exists(key) == (expected is not None)

    def teardown(self):
        self.db.close()
        shutil.rmtree(self.folder, ignore_errors=True)


EmbeddedModel.TestCase.settings = settings(max_examples=30, stateful_step_count=30, deadline=None)
TestEmbeddedModel = EmbeddedModel.TestCase
