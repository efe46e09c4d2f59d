"""Eviction policies: per-key access stamps, their scores, and the pool.

Pure logic (no locks, no clock of its own: every function takes ``now``),
as Redis' evict.c and the LFU parts of db.c/object.c:

* A key's access metadata is one 32-bit **stamp**, kept by the hash table
  beside the key (``HashTable.enable_stamps``). Under an LRU policy it is
  Redis' 24-bit LRU clock (unix seconds, ``LRU_CLOCK_RESOLUTION_MS`` a
  tick, wrapping); under LFU it is Redis' 24-bit LFU field: the last
  decrement time in minutes (16 bits) above an 8-bit logarithmic counter.
* The LFU counter grows with probability ``1 / ((counter - 5) * factor + 1)``
  (``lfu-log-factor`` 10: about a million hits saturate it at 255) and
  falls by one per ``lfu-decay-time`` minutes (1) of idleness; a new key
  starts at ``LFU_INIT_VAL`` (5) so it is not evicted before it had a
  chance to be read.
* The score of a candidate ("idle" in Redis): higher is evicted first.
  LRU: idle time in clock ticks; LFU: ``255 - counter``; TTL: the earlier
  the expiry, the higher.
* The **pool** (``EvictionPool``) keeps the ``POOL_SIZE`` best candidates
  seen so far across samplings, sorted by score, so each eviction looks at
  ``maxmemory-samples`` new keys but chooses among many more (Redis'
  evictionPoolPopulate). Entries may go stale (the key was deleted or
  touched since); the evictor re-checks a key exists before deleting it,
  and a stale score only makes the choice less exact, as in Redis.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable

NOEVICTION = "noeviction"
ALLKEYS_LRU = "allkeys-lru"
ALLKEYS_LFU = "allkeys-lfu"
ALLKEYS_RANDOM = "allkeys-random"
VOLATILE_LRU = "volatile-lru"
VOLATILE_LFU = "volatile-lfu"
VOLATILE_RANDOM = "volatile-random"
VOLATILE_TTL = "volatile-ttl"
POLICIES = (
    NOEVICTION, ALLKEYS_LRU, ALLKEYS_LFU, ALLKEYS_RANDOM, VOLATILE_LRU, VOLATILE_LFU, VOLATILE_RANDOM, VOLATILE_TTL,
)
LRU_POLICIES = frozenset({ALLKEYS_LRU, VOLATILE_LRU})
LFU_POLICIES = frozenset({ALLKEYS_LFU, VOLATILE_LFU})
VOLATILE_POLICIES = frozenset({VOLATILE_LRU, VOLATILE_LFU, VOLATILE_RANDOM, VOLATILE_TTL})

# Redis' defaults (redis.conf): keys sampled per eviction, the LFU counter's
# logarithm factor and its decay period in minutes.
DEFAULT_SAMPLES = 5
DEFAULT_LFU_LOG_FACTOR = 10
DEFAULT_LFU_DECAY_TIME_MINUTES = 1
# Candidates the pool keeps (Redis' EVPOOL_SIZE).
POOL_SIZE = 16
# The LRU clock: 24 bits of seconds (Redis' LRU_CLOCK_MAX, LRU_CLOCK_RESOLUTION).
LRU_CLOCK_BITS = 24
LRU_CLOCK_MAX = (1 << LRU_CLOCK_BITS) - 1
LRU_CLOCK_RESOLUTION_MS = 1000
# LFU: a new key's counter, and the counter's ceiling.
LFU_INIT_VAL = 5
LFU_COUNTER_MAX = 255
# LFU time: minutes, 16 bits (wraps every 45 days, as in Redis).
LFU_MINUTES_MAX = 0xFFFF


def lru_clock(now_ms: int) -> int:
    """Redis' LRU clock at ``now_ms``: seconds, 24 bits."""
    return (now_ms // LRU_CLOCK_RESOLUTION_MS) & LRU_CLOCK_MAX


def lru_idle_ms(stamp: int, now_ms: int) -> int:
    """How long ago (ms) an LRU ``stamp`` was taken (estimateObjectIdleTime):
    the clock wraps, so a stamp "ahead" of now is one lap behind."""
    clock = lru_clock(now_ms)
    ticks = clock - stamp if clock >= stamp else clock + (LRU_CLOCK_MAX - stamp)
    return ticks * LRU_CLOCK_RESOLUTION_MS


def lfu_minutes(now_ms: int) -> int:
    return (now_ms // 60_000) & LFU_MINUTES_MAX


def lfu_stamp(minutes: int, counter: int) -> int:
    return (minutes << 8) | counter


def lfu_counter(stamp: int) -> int:
    return stamp & 0xFF


def lfu_elapsed_minutes(stamp: int, now_ms: int) -> int:
    """Minutes since the stamp's decrement time (LFUTimeElapsed, wrapping)."""
    now, then = lfu_minutes(now_ms), stamp >> 8
    return now - then if now >= then else LFU_MINUTES_MAX - then + now


def lfu_decayed(stamp: int, now_ms: int, decay_time_minutes: int = DEFAULT_LFU_DECAY_TIME_MINUTES) -> int:
    """The counter after decay (LFUDecrAndReturn): one less per
    ``decay_time_minutes`` elapsed, never below 0; 0 minutes: no decay."""
    counter = lfu_counter(stamp)
    periods = lfu_elapsed_minutes(stamp, now_ms) // decay_time_minutes if decay_time_minutes else 0
    return counter - periods if periods < counter else 0


def lfu_log_incr(counter: int, draw: Callable[[], float] = random.random,
                 log_factor: int = DEFAULT_LFU_LOG_FACTOR) -> int:
    """Redis' LFULogIncr: a logarithmic, probabilistic increment."""
    if counter >= LFU_COUNTER_MAX:
        return LFU_COUNTER_MAX
    base = counter - LFU_INIT_VAL if counter > LFU_INIT_VAL else 0
    if draw() < 1.0 / (base * log_factor + 1):
        return counter + 1
    return counter


class AccessClock:
    """What a hash table calls to stamp keys (``HashTable.enable_stamps``):
    ``fresh()`` for a new key, ``touch(stamp)`` for a key read or written.
    ``now_ms`` is the wall clock (a test passes its own)."""

    __slots__ = ("lfu", "now_ms", "log_factor", "decay_time_minutes", "draw")

    def __init__(self, lfu: bool, now_ms: Callable[[], int],
                 log_factor: int = DEFAULT_LFU_LOG_FACTOR,
                 decay_time_minutes: int = DEFAULT_LFU_DECAY_TIME_MINUTES,
                 draw: Callable[[], float] = random.random) -> None:
        self.lfu = lfu
        self.now_ms = now_ms
        self.log_factor = log_factor
        self.decay_time_minutes = decay_time_minutes
        self.draw = draw

    def fresh(self) -> int:
        now_ms = self.now_ms()
        if self.lfu:
            return lfu_stamp(lfu_minutes(now_ms), LFU_INIT_VAL)
        return lru_clock(now_ms)

    def touch(self, stamp: int) -> int:
        """Redis' updateLFU (decay, then a logarithmic increment) or the LRU clock."""
        now_ms = self.now_ms()
        if not self.lfu:
            return lru_clock(now_ms)
        counter = lfu_log_incr(lfu_decayed(stamp, now_ms, self.decay_time_minutes), self.draw, self.log_factor)
        return lfu_stamp(lfu_minutes(now_ms), counter)

    def score(self, stamp: int, now_ms: int) -> int:
        """Higher: evicted first (LRU: idle ms; LFU: 255 - decayed counter)."""
        if self.lfu:
            return LFU_COUNTER_MAX - lfu_decayed(stamp, now_ms, self.decay_time_minutes)
        return lru_idle_ms(stamp, now_ms)


class EvictionPool:
    """The best ``POOL_SIZE`` candidates seen, ascending by score (the best
    at the end), each key at most once (evictionPoolPopulate's rules)."""

    __slots__ = ("_scores", "_keys", "size")

    def __init__(self, size: int = POOL_SIZE) -> None:
        self._scores: list[int] = []
        self._keys: list[bytes] = []
        self.size = size

    def __len__(self) -> int:
        return len(self._keys)

    def offer(self, key: bytes, score: int) -> None:
        """Consider a sampled key: kept if the pool has room or it beats the
        worst entry; a key already pooled keeps its place (Redis skips it)."""
        if key in self._keys:
            return
        scores = self._scores
        if len(scores) >= self.size and score <= scores[0]:
            return
        at = bisect.bisect_left(scores, score)
        scores.insert(at, score)
        self._keys.insert(at, key)
        if len(scores) > self.size:
            del scores[0], self._keys[0]

    def pop_best(self) -> bytes | None:
        """The key with the highest score, removed from the pool; None if empty."""
        if not self._keys:
            return None
        self._scores.pop()
        return self._keys.pop()

    def clear(self) -> None:
        self._scores.clear()
        self._keys.clear()
