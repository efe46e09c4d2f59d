"""INFO [section ...]: the server's state as Redis 7 reports it.

Sections, in Redis' order: server, clients, memory, persistence, stats,
replication, cpu, commandstats, errorstats, latencystats, cluster, keyspace.
``default`` (and no argument) is every section but commandstats and
latencystats;
``all`` and ``everything`` are all of them. Unknown section names add
nothing, as in Redis. The text is Redis': ``# Section`` headers,
``field:value`` lines ending in CRLF, a blank line between sections. RESP3
clients get a verbatim string (``txt``), RESP2 clients a bulk string.

Every value is measured, never a placeholder; where trio_kv has no such
machinery the value says so truthfully (``loading:0``: the data is loaded
before the server listens; ``role:master``). Notes on
what is measured:

* ``used_memory``: the bytes tracemalloc traces when it is tracing (set
  ``PYTHONTRACEMALLOC=1``), otherwise ``Store.used_memory_bytes``: the
  resident size at start (``used_memory_startup``) plus the keyspace's
  accounted bytes (``used_memory_dataset``, store/memory_accounting.py),
  which falls when keys are deleted, as Redis' does (RSS does not).
  ``used_memory_rss`` is the resident set size from /proc/self/statm.
  ``used_memory_peak`` is tracemalloc's peak or the highest used_memory
  INFO has seen. ``evicted_keys``: keys the maxmemory policy deleted.
* Persistence with the append-only log on (``aof_enabled:1``): the values
  come from ``session.control.log.info()`` (store.durability.append_log).
  SAVE, BGSAVE and BGREWRITEAOF all run one operation, a compaction, so the
  ``rdb_*`` save fields and the ``aof_*`` rewrite fields describe the same
  compactions; ``rdb_changes_since_last_save`` counts log records (write
  commands that changed something; a MULTI/EXEC is one) since the newest
  snapshot; ``aof_current_size`` and ``aof_base_size`` are the bytes of
  every file recovery would read, now and after the last compaction (or
  the start); ``appendfsync`` (trio_kv's) is the fsync policy.
* With ``--appendonly no`` (``aof_enabled:0``): ``rdb_changes_since_last_save``
  is the successful calls of write commands since the start (or the last
  CONFIG RESETSTAT); ``rdb_saves`` counts SAVEs (dump.snapshot) and
  ``rdb_last_save_time`` is the start of the last one, or the start time, as
  Redis reports before any save.
* ``db0:...avg_ttl=0``: the average TTL is not sampled.
* ``latency_percentiles_usec_*`` and ``cmdstat_*``: from ``store.stats``;
  latency is measured from the moment the request was read to the moment
  its reply was ready, and a percentile is read from the histogram's
  cumulative counts (within 1/8 + 1/32 above the true value). A subcommand
  has its own line (``cmdstat_client|id``), as in Redis. ``rejected_calls``
  counts requests refused before running (wrong arity, refused inside
  MULTI, writes refused by MISCONF); an unknown command is no command's
  call and counts in ``total_error_replies`` and errorstats only. The
  percentiles reported are ``CONFIG SET latency-tracking-info-percentiles``
  (default 50 99 99.9); with ``latency-tracking no`` new samples are not
  recorded.
* ``errorstat_<CODE>:count=N``: error replies by their first word (``ERR``,
  ``WRONGTYPE``, ``EXECABORT``...; the line protocol's are ``ERROR``).
"""

from __future__ import annotations

import math
import os
import platform
import resource
import secrets
import struct
import sys
import time
import tracemalloc
from typing import TYPE_CHECKING

from .. import __version__
from ..protocol.replies import Verbatim
from .cluster_bus_info import bus_info_fields
from .cluster_versions_info import versions_info_fields
from .connection import REDIS_VERSION
from .session import Session
from .table import CommandSpec, Lock

if TYPE_CHECKING:
    from ..store.store import Store
    from .control import ServerControl

# Fixed for the life of the process, as Redis' run_id and replication id.
RUN_ID = secrets.token_hex(20)
REPLICATION_ID = secrets.token_hex(20)
DEFAULT_SECTIONS = (
    "server", "clients", "memory", "persistence", "stats", "replication", "cpu", "errorstats", "cluster", "keyspace",
)
ALL_SECTIONS = (
    "server", "clients", "memory", "persistence", "stats", "replication", "cpu",
    "commandstats", "errorstats", "latencystats", "cluster", "keyspace",
)


def _percentile_bounds_us() -> list[int]:
    """Where percentiles are read from ``Stats.latency_cumulative``: every
    value below 128 us, then steps of 1/32 up to 2**40 us. The stats
    histogram's own buckets are 1/8 wide, so this adds at most 3% to its
    resolution (and the commands layer does not import the store's)."""
    bounds = list(range(128))
    bound = 128
    while bound < 1 << 40:
        bounds.append(bound)
        bound += bound >> 5
    return bounds


_PERCENTILE_BOUNDS_US = _percentile_bounds_us()


def human_bytes(size: int) -> str:
    """Redis' bytesToHuman: 1023B, 1.50K, 2.00M..."""
    if size < 1024:
        return f"{size}B"
    units = "KMGTP"
    exponent = min(len(units), (size.bit_length() - 1) // 10)
    return f"{size / 1024**exponent:.2f}{units[exponent - 1]}"


def _resident_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as statm:
            resident_pages = int(statm.read().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return _peak_resident_bytes()


def _peak_resident_bytes() -> int:
    # ru_maxrss is in KiB on Linux (bytes on macOS; trio_kv targets Linux).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _server(store: Store, control: ServerControl, now: float) -> list[tuple[str, object]]:
    uptime_s = int(now - control.started_at_s)
    return [
        ("redis_version", REDIS_VERSION),
        ("redis_git_sha1", "00000000"),
        ("redis_git_dirty", 0),
        ("redis_mode", "standalone" if control.cluster_view() is None else "cluster"),
        ("trio_kv_version", __version__),
        ("python_version", platform.python_version()),
        ("os", f"{platform.system()} {platform.release()} {platform.machine()}"),
        ("arch_bits", struct.calcsize("P") * 8),
        ("process_id", os.getpid()),
        ("run_id", RUN_ID),
        ("tcp_port", control.tcp_port),
        ("server_time_usec", int(now * 1_000_000)),
        ("uptime_in_seconds", uptime_s),
        ("uptime_in_days", uptime_s // 86400),
        ("executable", sys.executable),
        ("config_file", ""),
        ("io_threads_active", 0),
        ("workers", store.config.workers),
    ]


def _clients(store: Store, control: ServerControl) -> list[tuple[str, object]]:
    sessions = control.clients()
    watched = [len(session.transaction.watched) for session in sessions]
    return [
        ("connected_clients", len(sessions)),
        ("cluster_connections", 0),
        ("maxclients", control.max_clients),
        ("blocked_clients", 0),
        ("tracking_clients", 0),
        ("pubsub_clients", 0),
        ("watching_clients", sum(1 for count in watched if count)),
        ("clients_in_timeout_table", 0),
        ("total_watched_keys", sum(watched)),
        ("total_blocking_keys", 0),
    ]


def _memory(store: Store) -> list[tuple[str, object]]:
    used = store.used_memory_bytes()
    if tracemalloc.is_tracing():
        peak = tracemalloc.get_traced_memory()[1]
    else:
        # Racy max under the read lock: a lost update only lowers a peak
        # another INFO will raise again.
        peak = store.used_memory_peak_bytes = max(used, store.used_memory_peak_bytes)
    resident = _resident_bytes()
    dataset = store.keyspace.memory_bytes()
    total_system = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    # The sorted key index (store/sorted_index.py), with --sorted-index yes:
    # the keys it holds (DBSIZE) and what it costs beyond the keys (an estimate).
    index = store.sorted_index
    index_fields: list[tuple[str, object]] = (
        [] if index is None else [("sorted_index_keys", len(index)), ("sorted_index_bytes", index.bytes_estimate())]
    )
    return [
        ("used_memory", used),
        ("used_memory_human", human_bytes(used)),
        ("used_memory_rss", resident),
        ("used_memory_rss_human", human_bytes(resident)),
        ("used_memory_peak", peak),
        ("used_memory_peak_human", human_bytes(peak)),
        ("used_memory_startup", store.memory_baseline_bytes),
        ("used_memory_dataset", dataset),
        ("used_memory_values", store.keyspace.value_bytes),
        ("used_memory_grown_values_capacity", store.keyspace.grown_capacity_bytes),  # store.growable buffers
        *index_fields,
        ("total_system_memory", total_system),
        ("total_system_memory_human", human_bytes(total_system)),
        ("maxmemory", store.maxmemory_bytes),
        ("maxmemory_human", human_bytes(store.maxmemory_bytes)),
        ("maxmemory_policy", store.evictor.policy),
        ("mem_allocator", "pymalloc (tracemalloc)" if tracemalloc.is_tracing() else "pymalloc"),
    ]


# INFO persistence's fields in Redis 7's order, with the append-only log on.
_LOG_FIELDS = (
    "rdb_changes_since_last_save", "rdb_bgsave_in_progress", "rdb_last_save_time", "rdb_last_bgsave_status",
    "rdb_last_bgsave_time_sec", "rdb_current_bgsave_time_sec", "rdb_saves", "rdb_last_load_keys_expired",
    "rdb_last_load_keys_loaded", "aof_enabled", "aof_rewrite_in_progress", "aof_rewrite_scheduled",
    "aof_last_rewrite_time_sec", "aof_current_rewrite_time_sec", "aof_last_bgrewrite_status", "aof_rewrites",
    "aof_rewrites_consecutive_failures", "aof_last_write_status",
)
_LOG_SIZE_FIELDS = (
    "aof_current_size", "aof_base_size", "aof_pending_rewrite", "aof_buffer_length", "aof_pending_bio_fsync",
    "aof_delayed_fsync", "appendfsync",
)


def _persistence(store: Store, control: ServerControl) -> list[tuple[str, object]]:
    persistence = control.log
    if persistence is not None:
        fields = persistence.info()
        return [
            ("loading", 0),
            ("async_loading", 0),
            *((name, fields[name]) for name in _LOG_FIELDS),
            ("module_fork_in_progress", 0),
            *((name, fields[name]) for name in _LOG_SIZE_FIELDS),
        ]
    from .redis import REDIS_COMMANDS  # the table imports this module

    changes = sum(
        calls - failed
        for name, (calls, failed, _usec) in store.stats.command_table().items()
        if (spec := REDIS_COMMANDS.get(name)) is not None and spec.is_write
    )
    return [
        ("loading", 0),
        ("async_loading", 0),
        ("rdb_changes_since_last_save", changes),
        ("rdb_bgsave_in_progress", 0),
        ("rdb_last_save_time", store.memory_last_save_s or int(control.started_at_s)),
        ("rdb_last_bgsave_status", "ok"),
        ("rdb_last_bgsave_time_sec", -1),
        ("rdb_current_bgsave_time_sec", -1),
        ("rdb_saves", store.memory_saves),
        ("aof_enabled", 0),
        ("aof_rewrite_in_progress", 0),
        ("aof_rewrite_scheduled", 0),
        ("aof_last_rewrite_time_sec", -1),
        ("aof_current_rewrite_time_sec", -1),
        ("aof_last_bgrewrite_status", "ok"),
        ("aof_rewrites", 0),
        ("aof_last_write_status", "ok"),
        ("module_fork_in_progress", 0),
    ]


def _stats(store: Store, control: ServerControl) -> list[tuple[str, object]]:
    counters = store.stats.counters()
    dispatcher = control.dispatcher_statistics()
    return [
        ("total_connections_received", counters["total_connections"]),
        ("total_commands_processed", counters["total_commands"]),
        ("rejected_connections", counters["rejected_connections"]),
        ("expired_keys", store.keyspace.expired_keys),
        ("evicted_keys", store.keyspace.evicted_keys),
        ("evicted_clients", 0),
        ("keyspace_hits", counters["keyspace_hits"]),
        ("keyspace_misses", counters["keyspace_misses"]),
        ("pubsub_channels", 0),
        ("pubsub_patterns", 0),
        ("pubsubshard_channels", 0),
        ("total_forks", 0),
        ("total_error_replies", counters["errors"]),
        ("text_gets", counters["gets"]),
        ("text_sets", counters["sets"]),
        ("text_dels", counters["dels"]),
        *((f"dispatcher_{name}", value) for name, value in dispatcher.items()),
        *store.keyspace.snapshots.statistics().items(),
    ]


def _replication(store: Store) -> list[tuple[str, object]]:
    return [
        ("role", "master"),
        ("connected_slaves", 0),
        ("master_failover_state", "no-failover"),
        ("master_replid", REPLICATION_ID),
        ("master_replid2", "0" * 40),
        ("master_repl_offset", 0),
        ("second_repl_offset", -1),
        ("repl_backlog_active", 0),
    ]


def _cpu(store: Store) -> list[tuple[str, object]]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return [
        ("used_cpu_sys", f"{own.ru_stime:.6f}"),
        ("used_cpu_user", f"{own.ru_utime:.6f}"),
        ("used_cpu_sys_children", f"{children.ru_stime:.6f}"),
        ("used_cpu_user_children", f"{children.ru_utime:.6f}"),
    ]


def _commandstats(store: Store) -> list[tuple[str, object]]:
    rejected = store.stats.command_rejections()
    return [
        (
            f"cmdstat_{name}",
            f"calls={calls},usec={usec},usec_per_call={usec / calls if calls else 0:.2f},"
            f"rejected_calls={rejected.get(name, 0)},failed_calls={failed}",
        )
        for name, (calls, failed, usec) in store.stats.command_table().items()
    ]


def _errorstats(store: Store) -> list[tuple[str, object]]:
    return [(f"errorstat_{code}", f"count={count}") for code, count in store.stats.error_counts().items()]


def percentile_label(percent: float) -> str:
    """Redis prints a percentile with %f, trailing zeros cut: 50, 99.9, 12.345."""
    text = f"{percent:f}".rstrip("0").rstrip(".")
    return text or "0"


def percentile_from_cumulative(cumulative: list[int], total: int, percent: float) -> int:
    """The smallest bound (us) at or below which ``percent``% of the samples lie."""
    rank = max(1, math.ceil(round(percent / 100 * total, 9)))
    for bound, seen in zip(_PERCENTILE_BOUNDS_US, cumulative):
        if seen >= rank:
            return bound
    return _PERCENTILE_BOUNDS_US[-1]


def _latencystats(store: Store) -> list[tuple[str, object]]:
    lines: list[tuple[str, object]] = []
    for name in store.stats.command_table():
        total, cumulative = store.stats.latency_cumulative(name, _PERCENTILE_BOUNDS_US)
        if not total:
            continue
        values = ",".join(
            f"p{percentile_label(percent)}={percentile_from_cumulative(cumulative, total, percent):.3f}"
            for percent in store.stats.latency_percentiles
        )
        lines.append((f"latency_percentiles_usec_{name}", values))
    return lines


def _cluster(control: ServerControl) -> list[tuple[str, object]]:
    return [("cluster_enabled", 0 if control.cluster_view() is None else 1)]


def _keyspace(store: Store) -> list[tuple[str, object]]:
    statistics = store.keyspace.statistics()
    if not statistics["keys"]:
        return []
    return [("db0", f"keys={statistics['keys']},expires={statistics['expires']},avg_ttl=0")]


_SECTIONS = {
    "server": ("Server", lambda store, control, now: _server(store, control, now)),
    "clients": ("Clients", lambda store, control, now: _clients(store, control)),
    "memory": ("Memory", lambda store, control, now: _memory(store)),
    "persistence": ("Persistence", lambda store, control, now: _persistence(store, control)),
    "stats": ("Stats", lambda store, control, now: _stats(store, control)),
    "replication": ("Replication", lambda store, control, now: _replication(store)),
    "cpu": ("CPU", lambda store, control, now: _cpu(store)),
    "commandstats": ("Commandstats", lambda store, control, now: _commandstats(store)),
    "errorstats": ("Errorstats", lambda store, control, now: _errorstats(store)),
    "latencystats": ("Latencystats", lambda store, control, now: _latencystats(store)),
    "cluster": ("Cluster", lambda store, control, now: _cluster(control) + bus_info_fields(control.cluster_bus_status())
                + versions_info_fields(store, control)),
    "keyspace": ("Keyspace", lambda store, control, now: _keyspace(store)),
}


def requested_sections(args: list[bytes]) -> list[str]:
    """The sections to report, in Redis' order."""
    wanted: set[str] = set()
    for arg in args[1:] or [b"default"]:
        name = arg.decode("utf-8", "replace").lower()
        if name == "default":
            wanted.update(DEFAULT_SECTIONS)
        elif name in ("all", "everything"):
            wanted.update(ALL_SECTIONS)
        elif name in _SECTIONS:
            wanted.add(name)
    return [name for name in ALL_SECTIONS if name in wanted]


def info_text(store: Store, control: ServerControl, sections: list[str]) -> str:
    now = time.time()
    blocks = []
    for name in sections:
        title, build = _SECTIONS[name]
        lines = [f"# {title}\r\n"]
        lines.extend(f"{field}:{value}\r\n" for field, value in build(store, control, now))
        blocks.append("".join(lines))
    return "\r\n".join(blocks)


def cmd_info(session: Session, args: list[bytes]) -> Verbatim:
    return Verbatim("txt", info_text(session.store, session.control, requested_sections(args)).encode())


SPECS: list[CommandSpec] = [
    CommandSpec(
        name="info", arity=-1, lock=Lock.READ, flags=("loading", "stale"), categories=("dangerous",),
        reads_stats=True, since="1.0.0", group="server", handler=cmd_info,
        summary="Returns information and statistics about the server.",
    ),
]
