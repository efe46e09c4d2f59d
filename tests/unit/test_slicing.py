"""Long commands in slices (commands/slicing.py, store.engine), without
sockets: a slice budget of 0 makes every slice one unit of work, so the
interleavings are exact and the tests need no clock.

What is checked: a sliced command stops its job and resumes it in a later
batch with no lock held in between, other jobs of the same batch run
meanwhile, the job's later requests wait for it; KEYS returns every key
present throughout exactly once whatever writes (and resizes) run between
slices; FLUSHALL empties the keyspace in its first step and logs one CLEAR;
inside EXEC nothing is sliced.
"""

from __future__ import annotations

import random
import time

import pytest

from trio_kv.commands import slicing
from trio_kv.commands.redis import REDIS_COMMANDS
from trio_kv.commands.session import Session
from trio_kv.commands.slicing import FreeSlices, KeysSlices, ScanSlices
from trio_kv.commands.wire import LINE, RESP
from trio_kv.config import Config
from trio_kv.protocol.replies import OK, QUEUED
from trio_kv.store.engine import Job, Store, run_batch
from trio_kv.store.local_control import LocalControl
from trio_kv.store.hashtable import HashTable
from trio_kv.store.keyspace import TABLES, Keyspace

KEYS = 20_000


@pytest.fixture(autouse=True)
def small_units(monkeypatch):
    # Small units so a few thousand keys take many slices.
    monkeypatch.setattr(slicing, "KEYS_SLICE_SLOTS", 64)
    monkeypatch.setattr(slicing, "KEYS_SLICE_INDEX_SLOTS", 64)
    monkeypatch.setattr(slicing, "FREE_SLICE_CELLS", 256)
    monkeypatch.setattr(slicing, "DEDUPE_SLICE_KEYS", 64)


def _store(keys: int = KEYS) -> Store:
    store = Store(Config(appendonly=False))
    store.slice_seconds = 0  # one unit of work per slice
    for i in range(keys):
        store.keyspace.set(b"k%d" % i, b"v")
    store.keyspace.rehash_step(1 << 30)
    return store


def _job(store: Store, requests: list[list[bytes]], client_id: int = 1) -> Job:
    return Job(Session(client_id, store, LocalControl(store), wire=RESP), REDIS_COMMANDS, requests, time.perf_counter())


def _lock_free(store: Store) -> bool:
    lock = store.lock.statistics()
    return lock["readers_active"] == 0 and not lock["writer_active"]


def test_keys_job_stops_between_slices_and_other_jobs_run():
    store = _store()
    keys_job = _job(store, [[b"PING"], [b"KEYS", b"*"], [b"SET", b"after", b"1"], [b"PING"]], client_id=1)
    other = _job(store, [[b"SET", b"other", b"1"], [b"GET", b"other"]], client_id=2)
    run_batch(store, [keys_job, other])
    # The KEYS job stopped at KEYS; the other job ran to its end.
    assert keys_job.sliced is not None
    assert len(keys_job.replies) == 1  # PING's
    assert other.replies == [OK, b"1"]
    assert store.keyspace.get(b"after") is None  # after KEYS: not run yet
    assert _lock_free(store)  # no lock held between slices
    batches = 1
    while keys_job.sliced is not None:
        run_batch(store, [keys_job])
        assert _lock_free(store)
        batches += 1
    assert batches > 10
    assert len(keys_job.replies) == 4
    found = keys_job.replies[1]
    # "other" was added during the call: it may or may not be there.
    assert sorted(key for key in found if key != b"other") == sorted(b"k%d" % i for i in range(KEYS))
    assert found.count(b"other") <= 1
    assert keys_job.replies[2] == OK and store.keyspace.get(b"after") == b"1"
    # Counted once, as one call.
    assert store.stats.command_table()["keys"][0] == 1


def test_keys_with_pattern_filters_every_slice():
    store = _store()
    job = _job(store, [[b"KEYS", b"k1?"]])
    while True:
        run_batch(store, [job])
        if job.sliced is None:
            break
    assert sorted(job.replies[0]) == sorted(b"k%d" % i for i in range(10, 20))


@pytest.mark.parametrize("seed", range(6))
def test_keys_returns_keys_present_throughout_exactly_once_despite_writes_and_resizes(seed):
    # Between slices: inserts (the table grows, keys change bucket), deletes
    # of other keys (it shrinks again), overwrites and re-inserts. Keys
    # never touched must all come back once; nothing comes back twice.
    rng = random.Random(seed)
    keyspace = Keyspace()
    stable = [b"s%d" % i for i in range(3000)]
    churn = [b"c%d" % i for i in range(3000)]
    for key in stable + churn:
        keyspace.set(key, b"v")
    work = KeysSlices(keyspace, None)
    layout = keyspace.layout_version
    extra = 0
    steps = 0
    while not work.step(0):
        steps += 1
        if steps > 120:
            continue  # let the walk finish
        action = rng.random()
        if action < 0.4:
            for _ in range(rng.randrange(1, 100)):
                keyspace.set(b"n%d" % extra, b"v")
                extra += 1
        elif action < 0.7:
            for key in rng.sample(churn, 200):
                keyspace.delete(key)
        elif action < 0.85:
            for key in rng.sample(churn, 200):
                keyspace.set(key, b"again")
        else:
            keyspace.rehash_step(rng.randrange(1, 64))
    found = work.reply()
    assert steps > 20
    assert keyspace.layout_version != layout  # resizes happened mid-call
    assert len(found) == len(set(found)), "a key was returned twice"
    assert set(stable) <= set(found)
    assert set(found) <= set(stable) | set(churn) | {b"n%d" % i for i in range(extra)}


def test_keys_skips_expired_keys():
    now = [1_000]
    keyspace = Keyspace(clock_ms=lambda: now[0])
    for i in range(500):
        keyspace.set(b"k%d" % i, b"v", expire_at_ms=2_000 if i % 2 else None)
    work = KeysSlices(keyspace, None)
    assert not work.step(0)
    now[0] = 3_000  # the odd keys expire mid-call
    while not work.step(0):
        pass
    assert {b"k%d" % i for i in range(0, 500, 2)} <= set(work.reply())


def test_big_scan_is_sliced_and_small_scan_is_not():
    store = _store()
    job = _job(store, [[b"SCAN", b"0", b"COUNT", b"1000000000"]])
    run_batch(store, [job])
    assert job.sliced is not None
    while job.sliced is not None:
        run_batch(store, [job])
    cursor, keys = job.replies[0]
    assert cursor == b"0"
    assert sorted(set(keys)) == sorted(b"k%d" % i for i in range(KEYS))
    small = _job(store, [[b"SCAN", b"0", b"COUNT", b"100"]])
    run_batch(store, [small])
    assert small.sliced is None and small.replies[0][0] != b"0"


def test_big_scan_stops_at_its_count_with_a_cursor_that_continues():
    store = _store()
    seen: list[bytes] = []
    cursor = b"0"
    while True:
        job = _job(store, [[b"SCAN", cursor, b"COUNT", b"5000", b"MATCH", b"k*"]])
        while True:
            run_batch(store, [job])
            if job.sliced is None:
                break
        cursor, keys = job.replies[0]
        seen.extend(keys)
        if cursor == b"0":
            break
        assert len(keys) >= 5000
    assert sorted(set(seen)) == sorted(b"k%d" % i for i in range(KEYS))


class _FakeLog:
    """What the engine reads from the append-only log, and its subscription
    to the keyspace's effects (one record per unit)."""

    def __init__(self) -> None:
        self.records: list[list[tuple]] = []

    def refusal(self) -> None:
        return None

    @property
    def appended_lsn(self) -> int:
        return len(self.records)

    def log(self, effects: list[tuple]) -> int:
        self.records.append(effects)
        return len(self.records)


def test_flushall_empties_at_once_logs_one_clear_and_frees_in_slices():
    store = _store()
    store.persistence = _FakeLog()
    store.keyspace.effects.subscribe(store.persistence.log)
    flush = _job(store, [[b"FLUSHALL"], [b"SET", b"after", b"1"]], client_id=1)
    reader = _job(store, [[b"DBSIZE"]], client_id=2)
    run_batch(store, [flush, reader])
    assert flush.sliced is not None and isinstance(flush.sliced.work, FreeSlices)
    # Every observer sees the flush whole from the first step on.
    assert reader.replies == [0]
    assert store.persistence.records == [[("CLEAR",)]]
    assert flush.log_lsn == 1 and flush.logged == [0]
    assert _lock_free(store)
    while flush.sliced is not None:
        run_batch(store, [flush])
    assert flush.replies == [OK, OK]
    assert store.persistence.records == [[("CLEAR",)], [("SET", b"after", b"1", None)]]
    assert flush.logged == [0, 1]


@pytest.mark.parametrize("table", sorted(TABLES))
def test_flushall_frees_every_cell_of_the_detached_tables(table):
    keyspace = Keyspace(table=TABLES[table])
    for i in range(5000):
        keyspace.set(b"k%d" % i, b"v", expire_at_ms=None if i % 3 else 1 << 60)
    lists = keyspace.detach_all()
    assert len(keyspace) == 0 and keyspace.value_bytes == 0
    work = FreeSlices(lists, OK)
    steps = 0
    while not work.step(0):
        steps += 1
    # The object table hands over lists of cells; the compact one a few
    # arena chunks and mapped slot lists: both in several slices.
    assert steps > (10 if table == "objects" else 3)
    assert all(not cells for cells in lists) and work.reply() is OK


def test_exec_runs_sliced_commands_unsliced():
    store = _store()
    job = _job(store, [[b"MULTI"], [b"KEYS", b"*"], [b"FLUSHALL"], [b"DBSIZE"], [b"EXEC"]])
    run_batch(store, [job])
    assert job.sliced is None
    assert job.replies[:4] == [OK, QUEUED, QUEUED, QUEUED]
    keys, flushed, size = job.replies[4]
    assert len(keys) == KEYS and flushed == OK and size == 0


def test_slice_budget_bounds_one_slice():
    # With the real budget, one batch runs about SLICE_SECONDS of KEYS, not
    # the whole keyspace (a work check, not a timing assertion: the count
    # of slices only has to exceed one).
    store = _store(200_000)
    store.slice_seconds = slicing.SLICE_SECONDS
    job = _job(store, [[b"KEYS", b"*"]])
    batches = 0
    while True:
        run_batch(store, [job])
        batches += 1
        if job.sliced is None:
            break
    assert batches > 1
    assert len(job.replies[0]) == 200_000


def test_line_protocol_keys_is_sliced_sorted_and_bounded():
    from trio_kv.commands.text import TEXT_COMMANDS
    from trio_kv.protocol.replies import Error
    from trio_kv.protocol.text import Listing, encode_text_reply

    store = _store()

    def run(requests):
        job = Job(Session(1, store, LocalControl(store), wire=LINE), TEXT_COMMANDS, requests, time.perf_counter())
        batches = 0
        while True:
            run_batch(store, [job])
            batches += 1
            if job.sliced is None:
                return job.replies, batches

    replies, batches = run([[b"KEYS", b"k1"]])
    expected = sorted(key for key in (b"k%d" % i for i in range(KEYS)) if key.startswith(b"k1"))
    assert batches > 1
    assert replies == [Listing(b"KEYS", expected)]
    assert encode_text_reply(replies[0]) == b"\n".join([b"KEYS %d" % len(expected), *expected]) + b"\n"
    store = Store(Config(appendonly=False, max_keys_reply=100))
    store.slice_seconds = 0
    for i in range(KEYS):
        store.keyspace.set(b"k%d" % i, b"v")
    replies, _ = run([[b"KEYS"]])
    assert isinstance(replies[0], Error) and "too many keys" in replies[0].message


def test_commands_that_may_slice_are_flagged():
    # The engine tests replies for Sliced only when the spec says so.
    from trio_kv.commands.text import TEXT_COMMANDS

    for name in ("keys", "scan", "flushall", "flushdb"):
        assert REDIS_COMMANDS.get(name).may_slice, name
    assert TEXT_COMMANDS.get("keys").may_slice
    assert not REDIS_COMMANDS.get("get").may_slice


class _RepeatingKeyspace:
    """A keyspace whose SCAN repeats keys after a layout change, as a real
    table may when it shrinks between two slices."""

    def __init__(self) -> None:
        self.layout_version = 1
        self._batches = [[b"a", b"b"], [b"c", b"a"], [b"b", b"d"]]

    def scan_keys(self, cursor: int, slot_budget: int, out: list[bytes]) -> tuple[int, int]:
        out.extend(self._batches[cursor])
        if cursor == 0:
            self.layout_version += 1  # a resize between the first two slices
        next_cursor = cursor + 1
        return (0 if next_cursor == len(self._batches) else next_cursor), slot_budget


def test_keys_removes_repeats_when_the_layout_changed_mid_call():
    work = KeysSlices(_RepeatingKeyspace(), None, index_walk=False)
    while not work.step(0):
        pass
    assert sorted(work.reply()) == [b"a", b"b", b"c", b"d"]


@pytest.mark.parametrize("seed", range(4))
def test_keys_survives_a_shrink_mid_call(seed):
    # Most keys deleted mid-call: the table shrinks while the walk goes on.
    rng = random.Random(seed)
    keyspace = Keyspace()
    stable = [b"s%d" % i for i in range(2000)]
    churn = [b"c%d" % i for i in range(14000)]
    keys = stable + churn
    rng.shuffle(keys)
    for key in keys:
        keyspace.set(key, b"v")
    layout = keyspace.layout_version
    work = KeysSlices(keyspace, None)
    steps = 0
    while not work.step(0):
        steps += 1
        if steps == 100 + seed * 20:
            for key in churn:
                keyspace.delete(key)
        if steps > 100:
            keyspace.rehash_step(8)
    found = work.reply()
    assert keyspace.layout_version != layout
    assert len(found) == len(set(found))
    assert set(stable) <= set(found) <= set(keys)


# --- the fast path: walking slot indices (KeysSlices.walk == "slots") -------


def _grown_keyspace(stable: list[bytes], table=None) -> Keyspace:
    keyspace = Keyspace() if table is None else Keyspace(table=table)
    for key in stable:
        keyspace.set(key, b"v")
    keyspace.rehash_step(1 << 30)
    assert keyspace.slot_counts()[1] == 0  # no resize in progress
    return keyspace


def _insert_until_resize_starts(keyspace: Keyspace, prefix: bytes) -> int:
    install = keyspace.install_version
    added = 0
    while keyspace.install_version == install:
        keyspace.set(prefix + b"%d" % added, b"v")
        added += 1
    return added


def test_keys_walks_slot_indices_and_returns_each_key_once():
    stable = [b"s%d" % i for i in range(5000)]
    keyspace = _grown_keyspace(stable)
    work = KeysSlices(keyspace, None)
    assert work.walk == "slots"
    steps = 1
    while not work.step(0):
        steps += 1
    found = work.reply()
    assert work.walk == "slots" and work.lock == slicing.READ  # no repeats possible: no pass
    slots, _ = keyspace.slot_counts()
    assert steps == -(-slots // slicing.KEYS_SLICE_INDEX_SLOTS) or steps == slots // slicing.KEYS_SLICE_INDEX_SLOTS + 1
    assert sorted(found) == sorted(stable)


def test_keys_fast_path_finds_the_empty_key_and_skips_tombstones():
    keyspace = _grown_keyspace([b"", b"a", b"b", b"c"] + [b"x%d" % i for i in range(300)])
    for i in range(0, 300, 2):
        keyspace.delete(b"x%d" % i)  # tombstones (or emptied cells)
    work = KeysSlices(keyspace, None)
    while not work.step(0):
        pass
    found = work.reply()
    assert sorted(found) == sorted([b"", b"a", b"b", b"c"] + [b"x%d" % i for i in range(1, 300, 2)])


def test_keys_continues_in_the_old_list_when_a_resize_starts_mid_call():
    stable = [b"s%d" % i for i in range(3000)]
    keyspace = _grown_keyspace(stable)
    work = KeysSlices(keyspace, None)
    for _ in range(10):
        assert not work.step(0)
    added = _insert_until_resize_starts(keyspace, b"n")
    assert keyspace.slot_counts()[1] > 0  # the walked list is now the old one
    steps = 0
    while not work.step(0):
        steps += 1
        keyspace.set(b"m%d" % steps, b"v")  # writes move old keys on
    found = work.reply()
    assert work.walk == "slots"  # no fallback: one resize is followed
    assert len(found) == len(set(found)), "a key was returned twice"
    added_keys = {b"n%d" % i for i in range(added)} | {b"m%d" % i for i in range(1, steps + 1)}
    assert set(stable) <= set(found) <= set(stable) | added_keys


def test_keys_falls_back_to_the_cursor_walk_after_two_resizes_mid_call():
    stable = [b"s%d" % i for i in range(3000)]
    keyspace = _grown_keyspace(stable)
    work = KeysSlices(keyspace, None)
    for _ in range(10):
        assert not work.step(0)
    install = keyspace.install_version
    added = _insert_until_resize_starts(keyspace, b"n")
    keyspace.rehash_step(1 << 30)
    added += _insert_until_resize_starts(keyspace, b"n%d_" % added)
    assert keyspace.install_version == install + 2
    while not work.step(0):
        pass
    found = work.reply()
    assert work.walk == "cursor"
    assert len(found) == len(set(found)), "a key was returned twice"
    assert set(stable) <= set(found)


def test_keys_falls_back_after_a_flush_mid_call():
    stable = [b"s%d" % i for i in range(2000)]
    keyspace = _grown_keyspace(stable)
    work = KeysSlices(keyspace, None)
    assert not work.step(0)
    keyspace.clear()
    keyspace.set(b"late", b"v")
    while not work.step(0):
        pass
    found = work.reply()
    assert work.walk == "cursor"
    assert len(found) == len(set(found))
    assert set(found) <= set(stable) | {b"late"}


def test_keys_started_during_a_resize_walks_the_old_list_then_the_current_one():
    stable = [b"s%d" % i for i in range(3000)]
    keyspace = _grown_keyspace(stable)
    added = _insert_until_resize_starts(keyspace, b"n")
    assert keyspace.slot_counts()[1] > 0
    present = set(stable) | {b"n%d" % i for i in range(added)}
    work = KeysSlices(keyspace, None)
    steps = 0
    while not work.step(0):
        steps += 1
        keyspace.rehash_step(16)  # keys move from the walked old list on
        if steps == 2:
            # How far 16-bucket steps get depends on the hash seed: end the
            # resize here, so it always ends mid-call.
            while keyspace.slot_counts()[1]:
                keyspace.rehash_step(1024)
    found = work.reply()
    assert steps > 2
    assert work.walk == "slots"
    assert keyspace.slot_counts()[1] == 0  # the resize ended mid-call
    assert len(found) == len(set(found)), "a key was returned twice"
    assert set(found) == present


def test_keys_removes_a_key_reinserted_in_a_later_slot_and_runs_that_pass_unlocked():
    # A key met early, deleted, and re-inserted where the walk has not been:
    # the table's insert count moved, so the last pass removes the repeat.
    # (On the object table: the test places keys by its cell layout.)
    keyspace = _grown_keyspace([b"s%d" % i for i in range(2000)], table=HashTable)
    work = KeysSlices(keyspace, None)
    assert not work.step(0)
    seen_early = list(work._keys)
    assert seen_early
    table = keyspace._values
    victim = seen_early[0]
    home = hash(victim) & table._mask
    # Delete it, then fill every free cell from its home up to the first
    # unwalked slot with keys of the same home, so its re-insert lands past
    # the part already walked.
    keyspace.delete(victim)
    candidate = 0
    while True:
        keyspace.set(victim, b"v")
        if table._find_current(victim) >> 1 >= slicing.KEYS_SLICE_INDEX_SLOTS:
            break
        keyspace.delete(victim)
        while hash(b"f%d" % candidate) & table._mask != home:
            candidate += 1
        keyspace.set(b"f%d" % candidate, b"v")
        candidate += 1
    assert keyspace.slot_counts()[1] == 0 and keyspace.install_version == work._install
    steps = 0
    locks = []
    while not work.step(0):
        steps += 1
        locks.append(work.lock)
    found = work.reply()
    assert found.count(victim) == 1
    assert len(found) == len(set(found))
    assert None in locks  # the duplicate-removal pass holds no lock


def test_keys_fast_path_skips_expired_keys_with_few_or_many_ttls():
    for ttl_every in (1, 400):  # every key has a TTL / few keys have one
        now = [1_000]
        keyspace = Keyspace(clock_ms=lambda: now[0])
        for i in range(2000):
            keyspace.set(b"k%d" % i, b"v", expire_at_ms=2_000 if i % ttl_every == 0 else None)
        keyspace.set(b"far", b"v", expire_at_ms=10_000)
        now[0] = 3_000
        work = KeysSlices(keyspace, None)
        while not work.step(0):
            pass
        expected = {b"k%d" % i for i in range(2000) if i % ttl_every != 0} | {b"far"}
        assert set(work.reply()) == expected
        assert len(work.reply()) == len(expected)


def test_whole_table_scan_takes_the_fast_path_and_a_partial_one_does_not():
    keyspace = _grown_keyspace([b"s%d" % i for i in range(3000)])
    whole = ScanSlices(keyspace, 0, 10**9, 10, lambda cursor, keys: [cursor, keys])
    partial = ScanSlices(keyspace, 0, 1500, 10, lambda cursor, keys: [cursor, keys])
    assert whole.walk == "slots" and partial.walk == "cursor"
    for work in (whole, partial):
        while not work.step(0):
            pass
    cursor, keys = whole.reply()
    assert cursor == 0 and sorted(keys) == sorted(b"s%d" % i for i in range(3000))
    cursor, keys = partial.reply()
    assert cursor != 0 and 1500 <= len(keys) < 3000


def test_keys_prefix_pattern_uses_startswith_and_matches_as_the_glob():
    from trio_kv.commands.keys import key_predicate
    from trio_kv.protocol.glob import glob_match

    subjects = [b"user:1", b"user:", b"user", b"xuser:1", b"user:*", b"", b"u\\ser:"]
    for pattern in (b"user:*", b"*", b"user\\:*", b"us?r:*", b"user:\\*", b"[u]ser:*"):
        predicate = key_predicate(pattern)
        for subject in subjects:
            expected = glob_match(pattern, subject)
            assert (predicate is None or predicate(subject)) == expected, (pattern, subject)


def test_keys_started_during_a_resize_falls_back_when_the_next_resize_starts():
    # Walking the old list A when A's resize ends and the next one starts:
    # A is gone and the list that is old now (B) was never walked, so the
    # walk cannot go on from its position: it falls back to the cursor.
    stable = [b"s%d" % i for i in range(3000)]
    keyspace = _grown_keyspace(stable)
    added = _insert_until_resize_starts(keyspace, b"n")
    work = KeysSlices(keyspace, None)
    for _ in range(5):
        assert not work.step(0)
    install = keyspace.install_version
    added_more = _insert_until_resize_starts(keyspace, b"m")
    assert keyspace.install_version == install + 1 and keyspace.slot_counts()[1] > 0
    while not work.step(0):
        pass
    found = work.reply()
    assert work.walk == "cursor"
    assert len(found) == len(set(found))
    present = set(stable) | {b"n%d" % i for i in range(added)} | {b"m%d" % i for i in range(added_more)}
    assert set(stable) | {b"n%d" % i for i in range(added)} <= set(found) <= present


def test_the_shared_session_helper_finishes_a_sliced_command() -> None:
    # tests/unit/redis_session.run is what most engine tests call: a
    # FLUSHALL whose slice budget runs out (under load, or here at 0 s)
    # must still get its reply there, as the dispatcher's requeue gives it.
    from .redis_session import call, make_session, run

    session, _ = make_session()
    run(session, *[f"SET k{i} v" for i in range(2_000)])
    session.store.slice_seconds = 0.0
    assert call(session, "FLUSHALL") == OK
    assert call(session, "DBSIZE") == 0
