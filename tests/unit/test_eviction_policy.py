"""Eviction's pure logic and its keyspace side, without sockets: the LFU
counter's math, the LRU clock, the pool, access stamps kept through
resizes, the accounted memory, and the Evictor choosing keys by each policy
(store/eviction_policy.py, store/eviction.py, store/memory_accounting.py)."""

from __future__ import annotations

import random

import pytest

from trio_kv.config import Config
from trio_kv.store.eviction import MAX_EVICTIONS_PER_COMMAND, Evictor
from trio_kv.store.eviction_policy import (
    LFU_INIT_VAL, LRU_CLOCK_MAX, AccessClock, EvictionPool, lfu_decayed, lfu_log_incr, lfu_minutes, lfu_stamp,
    lru_clock, lru_idle_ms,
)
from trio_kv.store.hashtable import HashTable
from trio_kv.store.keyspace import Keyspace
from trio_kv.store.memory_accounting import object_bytes
from trio_kv.store.store import Store

from ..fake_clock import FakeClock


def test_lfu_counter_grows_logarithmically_as_redis_documents() -> None:
    """redis.conf's table for lfu-log-factor 10: about 100 hits give ~10,
    1,000 hits ~18, 100,000 hits ~142, 1M hits 255 (the counter's cap)."""
    draw = random.Random(7).random
    counter, hits = LFU_INIT_VAL, 0
    at = {}
    for target in (100, 1000, 100_000, 1_000_000):
        while hits < target:
            counter = lfu_log_incr(counter, draw)
            hits += 1
        at[target] = counter
    assert 8 <= at[100] <= 13 and 15 <= at[1000] <= 22 and 120 <= at[100_000] <= 160 and at[1_000_000] == 255


def test_lfu_counter_below_init_value_always_grows_and_255_is_the_cap() -> None:
    assert lfu_log_incr(0, lambda: 0.999) == 1
    assert lfu_log_incr(LFU_INIT_VAL, lambda: 0.999) == LFU_INIT_VAL + 1
    assert lfu_log_incr(255, lambda: 0.0) == 255


def test_lfu_counter_decays_one_per_minute_and_stops_at_zero() -> None:
    now_ms = 1_700_000_000_000
    stamp = lfu_stamp(lfu_minutes(now_ms), 10)
    assert lfu_decayed(stamp, now_ms) == 10
    assert lfu_decayed(stamp, now_ms + 3 * 60_000) == 7
    assert lfu_decayed(stamp, now_ms + 30 * 60_000) == 0
    assert lfu_decayed(stamp, now_ms + 30 * 60_000, decay_time_minutes=0) == 10


def test_lru_idle_time_survives_the_clock_wrapping() -> None:
    now_ms = 1_700_000_000_000
    assert lru_idle_ms(lru_clock(now_ms - 5_000), now_ms) == 5_000
    wrap_ms = (LRU_CLOCK_MAX + 1) * 1000 * 100  # a multiple of the clock's lap: the clock reads 0
    assert lru_clock(wrap_ms) == 0
    assert lru_idle_ms(lru_clock(wrap_ms - 2_000), wrap_ms + 1_000) == 2_000


def test_pool_keeps_the_best_sixteen_and_pops_the_highest_score() -> None:
    pool = EvictionPool()
    for score in random.Random(1).sample(range(100), 100):
        pool.offer(b"k%d" % score, score)
    pool.offer(b"k99", 0)  # already pooled: keeps its place
    assert len(pool) == 16
    assert [pool.pop_best() for _ in range(16)] == [b"k%d" % s for s in range(99, 83, -1)]
    assert pool.pop_best() is None


def test_stamps_follow_keys_through_resizes_and_reads_touch_them() -> None:
    clock = FakeClock()
    table = HashTable()
    table.enable_stamps(AccessClock(False, clock), touch_reads=True)
    for i in range(50_000):  # many resizes, each key stamped at its insert second
        table.set(b"k%d" % i, i)
        if i % 1000 == 999:
            clock.advance(1000)
    assert all(table.stamp(b"k%d" % i) == lru_clock(1_700_000_000_000 + (i // 1000) * 1000) for i in range(50_000))
    clock.advance(60_000)
    assert table.get(b"k3") == 3
    assert table.stamp(b"k3") == lru_clock(clock())
    table.disable_stamps()
    assert table.stamp(b"k3") is None and table.get(b"k3") == 3


def test_a_sample_holds_live_entries_with_their_stamps() -> None:
    table = HashTable()
    table.enable_stamps(AccessClock(True, FakeClock()), touch_reads=False)
    for i in range(100):
        table.set(b"k%d" % i, i)
    for key, value, stamp in table.sample(10):
        assert table.get(key) == value and stamp == table.stamp(key)
    assert HashTable().sample(5) == []


def test_accounted_memory_follows_writes_and_falls_with_deletes() -> None:
    keyspace = Keyspace(clock_ms=FakeClock())
    empty = keyspace.memory_bytes()
    keyspace.set(b"key", b"v" * 100)
    assert keyspace.key_bytes == object_bytes(3) == 48
    grown = keyspace.memory_bytes()
    assert grown > empty + 100
    keyspace.set(b"ttl", b"v", expire_at_ms=FakeClock()() + 1000)
    keyspace.delete(b"ttl")
    keyspace.delete(b"key")
    assert keyspace.memory_bytes() <= grown - 100 and keyspace.key_bytes == 0
    keyspace.set(b"key", b"v")
    keyspace.clear()
    assert keyspace.key_bytes == 0 and keyspace.value_bytes == 0


def _filled(policy: str, clock: FakeClock, keys: int = 100, ttl_every: int = 0) -> tuple[Keyspace, Evictor]:
    keyspace = Keyspace(clock_ms=clock)
    keyspace._values.seed(keys)
    keyspace._expires.seed(keys)
    access = AccessClock("lfu" in policy, clock) if "lru" in policy or "lfu" in policy else None
    if access is not None:
        keyspace.set_access_clock(access)
    for i in range(keys):
        expire_at = clock() + 1_000_000 + i if ttl_every and i % ttl_every == 0 else None
        keyspace.set(b"k%03d" % i, b"v", expire_at_ms=expire_at)
        clock.advance(1000)
    return keyspace, Evictor(policy, 5, access)


def _make_room_to(evictor: Evictor, keyspace: Keyspace, keys_left: int) -> bool:
    """Evict until ``keys_left`` keys remain (the 'memory' is the key count)."""
    return evictor.make_room(keyspace, lambda: len(keyspace), keys_left)


def test_allkeys_lru_evicts_mostly_the_least_recently_used() -> None:
    clock = FakeClock()
    keyspace, evictor = _filled("allkeys-lru", clock)
    for i in range(50, 100):  # the newer half is read again now
        keyspace.get(b"k%03d" % i)
    assert _make_room_to(evictor, keyspace, 50)
    survivors = {int(key[1:]) for key in keyspace._values.keys()}
    assert len(survivors) == 50 and keyspace.evicted_keys == 50
    assert sum(1 for i in survivors if i >= 50) >= 40  # sampled: approximate, as Redis


def test_allkeys_lfu_keeps_the_frequently_read_keys() -> None:
    clock = FakeClock()
    keyspace, evictor = _filled("allkeys-lfu", clock)
    for _ in range(200):
        for i in range(0, 100, 4):  # every fourth key is hot
            keyspace.get(b"k%03d" % i)
    assert _make_room_to(evictor, keyspace, 25)
    survivors = {int(key[1:]) for key in keyspace._values.keys()}
    assert sum(1 for i in survivors if i % 4 == 0) >= 20


def test_volatile_policies_evict_only_keys_with_a_ttl_then_refuse() -> None:
    for policy in ("volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"):
        keyspace, evictor = _filled(policy, FakeClock(), ttl_every=2)
        assert not _make_room_to(evictor, keyspace, 10), policy  # only 50 have a TTL
        assert len(keyspace) == 50 and keyspace.keys_with_ttl == 0, policy


def test_volatile_ttl_evicts_the_soonest_to_expire_first() -> None:
    keyspace, evictor = _filled("volatile-ttl", FakeClock(), ttl_every=1)
    assert _make_room_to(evictor, keyspace, 90)
    evicted = set(range(100)) - {int(key[1:]) for key in keyspace._values.keys()}
    assert sum(evicted) / len(evicted) < 30  # sampled, so only mostly the first (random: 50)


def test_random_and_noeviction() -> None:
    keyspace, evictor = _filled("allkeys-random", FakeClock())
    assert _make_room_to(evictor, keyspace, 0) and len(keyspace) == 0
    assert not _make_room_to(evictor, keyspace, -1)  # nothing left to evict
    keyspace, evictor = _filled("noeviction", FakeClock())
    assert not _make_room_to(evictor, keyspace, 10) and len(keyspace) == 100


def test_one_command_evicts_a_bounded_number_of_keys() -> None:
    keyspace, evictor = _filled("allkeys-random", FakeClock(), keys=MAX_EVICTIONS_PER_COMMAND + 10)
    assert _make_room_to(evictor, keyspace, 0)  # the command runs anyway
    assert len(keyspace) == 10


def test_evictions_leave_as_del_effects_and_snapshots_keep_the_pre_image() -> None:
    keyspace, evictor = _filled("allkeys-random", FakeClock(), keys=10)
    units: list[list[tuple]] = []
    keyspace.effects.subscribe(units.append)
    view = keyspace.snapshots.open()
    assert _make_room_to(evictor, keyspace, 7)
    keyspace.effects.end_command()
    deleted = [effect[1] for effect in units[0]]
    assert len(deleted) == 3 and all(effect[0] == "DEL" for effect in units[0])
    assert all(view.get(key) == b"v" for key in deleted)
    view.release()


def test_every_policy_keeps_stamps_lfu_ones_a_counter_the_rest_the_lru_clock() -> None:
    store = Store(Config(sorted_index=False))
    clock = store.evictor.clock  # noeviction: the LRU clock, as Redis' lru field
    assert clock is not None and not clock.lfu
    with_stamps = store.keyspace.memory_bytes()
    store.set_maxmemory_policy("allkeys-lfu", 10)
    assert store.evictor.samples == 10 and store.evictor.clock is not None and store.evictor.clock.lfu
    store.set_maxmemory_policy("allkeys-random", 5)
    assert store.evictor.clock is not None and not store.evictor.clock.lfu
    assert store.keyspace.memory_bytes() == with_stamps
    store.keyspace.set_access_clock(None)
    assert store.keyspace.memory_bytes() < with_stamps  # the stamps are counted


@pytest.mark.parametrize("text, expected", [("100mb", 100 * 1024**2), ("1gb", 1024**3), ("5k", 5000), ("123", 123)])
def test_maxmemory_flag_takes_redis_units(text: str, expected: int) -> None:
    from trio_kv.config import parse_config

    assert parse_config(["--maxmemory", text], environ={}).maxmemory_bytes == expected


def test_cluster_mode_accepts_only_noeviction() -> None:
    from trio_kv.config import parse_config

    with pytest.raises(SystemExit):
        parse_config(["--cluster-enabled", "yes", "--maxmemory-policy", "allkeys-lru"], environ={})
    assert parse_config(["--cluster-enabled", "yes", "--maxmemory", "1gb"], environ={}).maxmemory_policy == "noeviction"


def test_metrics_report_evicted_keys_and_used_memory() -> None:
    from trio_kv.http.prometheus import MetricsSnapshot, render_metrics

    snapshot = MetricsSnapshot(
        counters={}, commands={}, latency={}, keys=1, value_bytes=1, expired_keys=0, connected_clients={},
        max_clients=1, ready=True, uptime_seconds=1.0, evicted_keys=7, used_memory_bytes=12345,
    )
    text = render_metrics(snapshot).decode()
    assert "trio_kv_evicted_keys_total 7" in text and "trio_kv_used_memory_bytes 12345" in text


def test_readers_survive_policy_changes_under_the_read_lock() -> None:
    """CONFIG SET maxmemory-policy runs under the read lock, beside readers
    that touch stamps: enabling and disabling must never break a get."""
    import sys
    import threading

    table = HashTable()
    for i in range(1000):
        table.set(b"k%d" % i, i)
    clock = AccessClock(False, FakeClock())
    failures: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                for i in range(0, 1000, 7):
                    assert table.get(b"k%d" % i) == i
                    table.peek(b"k%d" % i)
                    table.stamp(b"k%d" % i)
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            failures.append(error)
            raise

    threads = [threading.Thread(target=reader) for _ in range(2)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    for thread in threads:
        thread.start()
    try:
        for _ in range(300):
            table.enable_stamps(clock, touch_reads=True)
            table.disable_stamps()
    finally:
        sys.setswitchinterval(interval)
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    assert not failures
