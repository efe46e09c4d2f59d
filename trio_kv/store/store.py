"""``Store``: the data every connection shares, and nothing else.

The keyspace, the reader-writer lock that guards it, the counters
(stats, slowlog, latency monitor), the configuration and the live settings
CONFIG SET changes (password, protected mode, maxmemory, query buffer
limit). What a handler needs of the running server (shutdown, clients,
ports, compaction) is not here: it is ``commands.control.ServerControl``,
reached through ``session.control``.

Rules kept here:

* Every field is set when the Store is built, with a comment saying why it
  exists; nothing outside ``store/`` attaches services to it afterwards.
  The one field filled later is ``persistence``: recovery makes the log
  from the store's own data, then hands it over before any client connects.
* Worker threads read and write the live settings without a lock: each is
  one attribute assignment of an immutable value.
"""

from __future__ import annotations

import os
import threading
import time
import tracemalloc
from typing import TYPE_CHECKING

from ..cluster.hlc import HybridClock, offset_clock, wall_clock_ms
from ..commands.auth import password_bytes
from ..commands.slicing import SLICE_SECONDS
from ..config import Config
from .durability.memory_snapshot import save_keyspace
from .eviction import Evictor
from .eviction_policy import LFU_POLICIES, LRU_POLICIES, NOEVICTION, AccessClock
from .keyspace import TABLES, Keyspace
from .latency_monitor import LatencyMonitor
from .rwlock import ReadWriteLock
from .slowlog import SlowLog
from .snapshot_api import Snapshot
from .sorted_index import KeyIndex, index_for_table
from .stats import Stats
from .versions import Versions

if TYPE_CHECKING:
    from .durability.append_log import Persistence


class Store:
    def __init__(
        self,
        config: Config,
        keyspace: Keyspace | None = None,
        *,
        actor_id: bytes | None = None,
        hlc: HybridClock | None = None,
    ) -> None:
        self.config: Config = config
        self.keyspace: Keyspace = Keyspace(table=TABLES[config.table]) if keyspace is None else keyspace
        # Every stored key in byte order (store/sorted_index.py; the kind
        # that suits the table), kept by the keyspace; None with
        # --sorted-index no (KRANGE, RANGE, /range refuse).
        self.sorted_index: KeyIndex | None = index_for_table(config.table) if config.sorted_index else None
        self.keyspace.attach_sorted_index(self.sorted_index)
        if config.cluster_enabled:
            # CLUSTER COUNTKEYSINSLOT reads a count (kept only in cluster mode).
            self.keyspace.count_keys_per_slot()
        # Cluster mode: every key's versions (store/versions.py), the node id's
        # raw bytes as their actor, the hybrid logical clock (wall-clock time
        # unless given; shifted by the --debug-clock-offset-ms test input) for
        # their timestamps. None (no actor id): no versions, nothing of them on any path.
        if hlc is None:
            hlc = HybridClock(offset_clock(wall_clock_ms, config.debug_clock_offset_ms))
        self.versions: Versions | None = (
            None if actor_id is None else Versions(self.keyspace, actor_id, hlc, partitions=config.cluster_partitions)
        )
        # Guards the keyspace: readers share it, a write has it alone (store.rwlock).
        self.lock: ReadWriteLock = ReadWriteLock()
        self.stats: Stats = Stats()
        self.slowlog: SlowLog = SlowLog(config.slowlog_log_slower_than_us, config.slowlog_max_len)
        # LATENCY LATEST/HISTORY/...: off (threshold 0) until CONFIG SET
        # latency-monitor-threshold, as in Redis.
        self.latency_monitor: LatencyMonitor = LatencyMonitor()
        # Live authentication settings (commands.auth): the default user's
        # password (None: none) and protected mode; CONFIG SET changes both.
        self.requirepass: bytes | None = password_bytes(config.requirepass)
        self.protected_mode: bool = config.protected_mode
        # --maxmemory / CONFIG SET maxmemory (0: no limit). Above it, a
        # command flagged denyoom first evicts by the policy
        # (store/eviction.py) or, under noeviction or with nothing left to
        # evict, is refused (-OOM), as Redis does.
        self.maxmemory_bytes: int = config.maxmemory_bytes
        # The process's resident size before any data: used_memory is this
        # plus the keyspace's accounted bytes (store/memory_accounting.py).
        self.memory_baseline_bytes: int = resident_bytes()
        # The highest used_memory INFO has seen (used_memory_peak).
        self.used_memory_peak_bytes: int = 0
        # The eviction policy in force (set_maxmemory_policy; its lock makes
        # two CONFIG SETs, which run under the read lock, change it in turn).
        self._policy_lock = threading.Lock()
        self.evictor: Evictor = Evictor(NOEVICTION, config.maxmemory_samples, None)
        self.set_maxmemory_policy(config.maxmemory_policy, config.maxmemory_samples)
        # CONFIG SET client-query-buffer-limit: read by each new RESP connection.
        self.client_query_buffer_limit_bytes: int = config.client_query_buffer_limit_bytes
        # False while data is being loaded: HTTP /readyz answers "not ready".
        self.ready: bool = True
        # The append-only log (store.durability.append_log.Persistence) when
        # --appendonly yes, set once recovery finished; None: memory only.
        # The engine appends every applied write to it.
        self.persistence: Persistence | None = None
        # How long one slice of a sliced command runs (tests set 0: one unit).
        self.slice_seconds: float = SLICE_SECONDS
        # SAVE with --appendonly no (dump.snapshot): how many, and when the
        # last one started (LASTSAVE, INFO rdb_*); None before the first.
        self.memory_saves: int = 0
        self.memory_last_save_s: int | None = None
        # CONFIG SET hash-max-listpack-entries / -value (and their ziplist
        # aliases): kept for CONFIG GET, no effect (a hash is always a dict).
        self.hash_max_listpack_entries: int = 128
        self.hash_max_listpack_value_bytes: int = 64
        # CONFIG SET sanitize-dump-payload (yes/no/clients): kept for CONFIG
        # GET; RESTORE always validates the whole payload (protocol.rdb_payload).
        self.sanitize_dump_payload: str = "no"
        self._memory_save_lock = threading.Lock()
        # Snapshots (store/snapshots.py): their limits.
        snapshots = self.keyspace.snapshots
        snapshots.max_undo_bytes = config.snapshot_max_undo_bytes
        snapshots.idle_timeout_seconds = config.snapshot_idle_timeout_seconds

    def open_snapshot(self) -> Snapshot:
        """A point-in-time view of the keyspace that never blocks writers
        (store/snapshot_api.py); takes the read lock for the open, so the
        caller must not hold the store lock (handlers use
        ``keyspace.snapshots.open()``)."""
        with self.lock.read_locked():
            view = self.keyspace.snapshots.open()
        return Snapshot(view, self.lock)

    def set_maxmemory_policy(self, policy: str, samples: int) -> None:
        """Put ``policy`` (a name of eviction_policy.POLICIES) in force with
        ``samples`` keys per eviction. Every key keeps an access stamp, as
        every Redis object keeps its 24-bit ``lru`` field: an LFU counter
        under an LFU policy, else the LRU clock (so OBJECT IDLETIME answers
        under every other policy, noeviction included, as in Redis);
        switching between the two kinds restamps every key (allocated
        now). Any store lock, or none before clients connect (the hash
        table's docstring says why a change under the read lock is safe for
        concurrent readers)."""
        with self._policy_lock:
            lfu = policy in LFU_POLICIES
            clock = self.evictor.clock
            if clock is None or clock.lfu != lfu:
                clock = AccessClock(lfu, self.keyspace.access_clock_ms)
                self.keyspace.set_access_clock(clock)
            self.evictor = Evictor(policy, samples, clock)

    def used_memory_bytes(self) -> int:
        """What INFO reports as used_memory and maxmemory is compared with:
        the bytes tracemalloc traces when it is on, else the baseline
        resident size plus the keyspace's accounted bytes
        (store/memory_accounting.py): O(1), falls when keys go."""
        if tracemalloc.is_tracing():
            return tracemalloc.get_traced_memory()[0]
        return self.memory_baseline_bytes + self.keyspace.memory_bytes()

    def make_room(self) -> bool:
        """Evict by the policy until used memory is under maxmemory (write
        lock held; store/eviction.py). False: still over, nothing to evict."""
        return self.evictor.make_room(self.keyspace, self.used_memory_bytes, self.maxmemory_bytes)

    def save_memory_snapshot(self) -> None:
        """SAVE with --appendonly no: write <data-dir>/dump.snapshot (worker
        thread, no store lock held; see store.durability.memory_snapshot).
        Raises OSError when the file cannot be written."""
        with self._memory_save_lock:  # two SAVEs at once would share the .tmp
            started = time.time()
            save_keyspace(self.keyspace, self.lock, self.config.data_dir, self.versions)
            self.memory_saves += 1
            self.memory_last_save_s = int(started)


def resident_bytes() -> int:
    """The process's resident set size (/proc/self/statm); 0 if unknown."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0  # cannot be measured
