"""Eviction: deleting keys to bring used memory under ``maxmemory``.

Redis' performEvictions, run by the engine before a command flagged
``denyoom`` while ``Store.used_memory_bytes()`` is above the limit and the
policy is not ``noeviction`` (store/engine.py). The rules:

* It runs on the worker thread, under the store's **write lock**, inside
  the hop of the command that needs the room, before that command; its
  deletions end as one effects unit of their own, so each evicted key
  leaves through the effects sink as a ``DEL`` (the append-only log and
  replicas agree with memory), and an open snapshot gets its pre-image
  first (``Keyspace.evict`` deletes as DEL does).
* It evicts until used memory is at or below the limit, or
  ``MAX_EVICTIONS_PER_COMMAND`` keys went (then the command runs anyway,
  a little over the limit, as Redis' eviction time limit lets it: the next
  write continues), or nothing is left to evict: then the command is
  refused with ``-OOM`` (a volatile policy with no key that has a TTL, or
  an empty keyspace).
* Choosing a key: the random policies draw one key (from every key, or
  from the keys with a TTL); the others sample ``maxmemory-samples`` keys,
  offer them to the pool (store/eviction_policy.py) with their score, and
  evict the pool's best that still exists, as evictionPoolPopulate does.
  The pool lives as long as the policy.
* Cluster mode: no eviction policy is accepted (commands/runtime_config.py):
  anti-entropy would restore an evicted replica from its peers, and a
  cluster-wide eviction needs a delete with versions. Only ``noeviction``.
"""

from __future__ import annotations

from collections.abc import Callable

from .eviction_policy import (
    ALLKEYS_RANDOM, LFU_POLICIES, LRU_CLOCK_MAX, LRU_POLICIES, NOEVICTION, VOLATILE_POLICIES, VOLATILE_RANDOM, VOLATILE_TTL,
    AccessClock, EvictionPool, lru_clock,
)
from .keyspace import Keyspace

# Most keys one command's eviction deletes before the command runs anyway
# (a big value may need many small keys to go; the next write continues).
MAX_EVICTIONS_PER_COMMAND = 1024
# Samplings of one choice that may find only stale or vanished keys.
MAX_POOL_REFILLS = 16
# A TTL score: the earlier a key expires, the higher (evicted first).
_TTL_SCORE_BASE = 1 << 62


class Evictor:
    """One policy's state: its clock (LRU/LFU), its pool, its sample size."""

    __slots__ = ("policy", "samples", "clock", "pool", "_volatile")

    def __init__(self, policy: str, samples: int, clock: AccessClock | None) -> None:
        self.policy = policy
        self.samples = samples
        self.clock = clock
        self.pool = EvictionPool()
        self._volatile = policy in VOLATILE_POLICIES

    def make_room(self, keyspace: Keyspace, used_memory: Callable[[], int], limit_bytes: int) -> bool:
        """Evict until ``used_memory() <= limit_bytes`` (write lock held).
        False: still over the limit and nothing is left to evict."""
        if self.policy == NOEVICTION:
            return used_memory() <= limit_bytes
        evicted = 0
        while used_memory() > limit_bytes:
            if evicted >= MAX_EVICTIONS_PER_COMMAND:
                return True
            key = self.choose(keyspace)
            if key is None:
                return False
            keyspace.evict(key)
            evicted += 1
        return True

    def choose(self, keyspace: Keyspace) -> bytes | None:
        """The next key to evict, or None when there is none to choose from."""
        if self.policy in (ALLKEYS_RANDOM, VOLATILE_RANDOM):
            sample = keyspace.eviction_sample(self._volatile, 1)
            return sample[0][0] if sample else None
        pool = self.pool
        offer = pool.offer
        now_ms = keyspace.access_clock_ms()
        lru_now = lru_clock(now_ms)
        for _ in range(MAX_POOL_REFILLS):
            sample = keyspace.eviction_sample(self._volatile, self.samples)
            if not sample and not len(pool):
                return None
            if self.policy in LRU_POLICIES:  # inlined: this runs for every evicted key
                for key, _value, stamp in sample:
                    offer(key, lru_now - stamp if lru_now >= stamp else lru_now + LRU_CLOCK_MAX - stamp)
            else:
                for key, value_or_expiry, stamp in sample:
                    offer(key, self._score(stamp, value_or_expiry, now_ms))
            best = pool.pop_best()
            while best is not None:
                if keyspace.is_eviction_candidate(best, self._volatile):
                    return best
                best = pool.pop_best()
        return None

    def _score(self, stamp: int, value_or_expiry: object, now_ms: int) -> int:
        if self.policy == VOLATILE_TTL:  # volatile: the sample holds expiry times
            return _TTL_SCORE_BASE - value_or_expiry  # type: ignore[operator]
        clock = self.clock
        assert clock is not None and (self.policy in LRU_POLICIES or self.policy in LFU_POLICIES)
        return clock.score(stamp, now_ms)
