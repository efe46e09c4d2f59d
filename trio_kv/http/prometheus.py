"""``GET /metrics``: a snapshot of the server's counters in Prometheus' text
exposition format (version 0.0.4). Pure: the server layer
(``server.http_metrics``) takes the snapshot, this module only writes text.

Every metric, with its source:

    trio_kv_commands_total{command,result}   counter   calls per command, result ok|error
    trio_kv_command_latency_seconds{command} histogram request read -> reply ready
    trio_kv_errors_total                     counter   every error reply, any protocol
    trio_kv_keyspace_hits_total, _misses_total counter key lookups that found / missed
    trio_kv_keys                             gauge     keys stored (DBSIZE)
    trio_kv_value_bytes                      gauge     total length of all values
    trio_kv_expired_keys_total               counter   keys deleted because their TTL ran out
    trio_kv_evicted_keys_total               counter   keys deleted by the maxmemory policy
    trio_kv_used_memory_bytes                gauge     INFO used_memory (baseline + accounted data)
    trio_kv_connected_clients{protocol}      gauge     open connections: text, resp, http
    trio_kv_connections_received_total       counter   connections accepted, all listeners
    trio_kv_rejected_connections_total       counter   refused over --max-clients
    trio_kv_max_clients                      gauge     the effective --max-clients
    trio_kv_http_requests_total{route,method,code} counter HTTP responses sent
    trio_kv_dispatch_hops_total, _jobs_total counter  worker-thread hops, jobs they ran
    trio_kv_dispatch_pending, trio_kv_workers_busy gauge jobs waiting, workers in a hop
    trio_kv_ready                            gauge     1 when /readyz says ready
    trio_kv_uptime_seconds                   gauge     since the store was created
    trio_kv_cluster_link_<name>{peer}         with the cluster bus on, per peer link: up, connected,
                                                       queued, in_flight (gauges), sent_bytes_total,
                                                       received_bytes_total, sent_messages_total,
                                                       received_messages_total (counters),
                                                       ping_rtt_seconds (gauge, last ping),
                                                       oldest_request_age_seconds (gauge: the lag)
    trio_kv_cluster_<figure>                 gauge     in cluster mode, the versions (Versions.statistics()):
                                                       versioned_keys, keys_with_siblings, largest_siblings
                                                       (now), largest_siblings_peak, tombstone_keys,
                                                       version_bytes
    trio_kv_snapshots_open, trio_kv_snapshot_oldest_age_seconds, trio_kv_snapshot_undo_bytes
                                             gauge     open snapshots (store/snapshots.py), the oldest's age,
                                                       the undo logs' bytes
    trio_kv_snapshots_expired_total          counter   snapshots expired by a limit (undo bytes, idle)
    trio_kv_persistence_<name>               gauge     with the append-only log on: each number of
                                                       INFO persistence (aof_current_size, rdb_saves,
                                                       ...; statuses 1 = ok, 0 = err) and
                                                       writes_refused (1 while a disk error refuses writes)

Histogram buckets (``LATENCY_BUCKETS_SECONDS``) are read from the stats
histogram, whose own buckets are log-linear (1/8 of a power of two wide): a
sample is counted under ``le`` only when its whole histogram bucket lies at or
below ``le``, so a count is exact or a little low, never high, and ``+Inf``
is exact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

LATENCY_BUCKETS_SECONDS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)
LATENCY_BUCKETS_US = [round(bound * 1_000_000) for bound in LATENCY_BUCKETS_SECONDS]


@dataclass(frozen=True, slots=True)
class CommandLatency:
    count: int
    sum_seconds: float
    # Samples at or below each of LATENCY_BUCKETS_SECONDS.
    cumulative: list[int]


@dataclass(frozen=True)
class MetricsSnapshot:
    # Stats.counters(): errors, keyspace_hits, total_connections, ...
    counters: dict[str, int]
    # name -> (calls, failed calls)
    commands: dict[str, tuple[int, int]]
    latency: dict[str, CommandLatency]
    keys: int
    value_bytes: int
    expired_keys: int
    connected_clients: dict[str, int]
    max_clients: int
    ready: bool
    uptime_seconds: float
    # (route, method, status) -> responses
    http_requests: dict[tuple[str, str, int], int] = field(default_factory=dict)
    # Keys the maxmemory policy evicted, and INFO's used_memory.
    evicted_keys: int = 0
    used_memory_bytes: int = 0
    # Dispatcher.statistics(): hops, jobs, pending, workers_busy
    dispatcher: dict[str, int] = field(default_factory=dict)
    persistence: dict[str, float] = field(default_factory=dict)
    # The cluster bus's peer links (ServerControl.cluster_bus_status()["links"]); empty without a bus.
    cluster_links: list[Mapping[str, object]] = field(default_factory=list)
    # The cluster coordinator's quorum outcome counters (name -> count).
    cluster_data_path: Mapping[str, int] = field(default_factory=dict)
    # Anti-entropy's counters (server/cluster/anti_entropy.py), while it runs.
    cluster_anti_entropy: Mapping[str, int] = field(default_factory=dict)
    # Hinted handoff's counters (server/cluster/hints.py) and (target, (records, bytes)) pending.
    cluster_hints: Mapping[str, int] = field(default_factory=dict)
    cluster_hints_pending: list[tuple[str, tuple[int, int]]] = field(default_factory=list)
    # Versions.statistics() in cluster mode; empty otherwise.
    cluster_versions: dict[str, int] = field(default_factory=dict)
    # SnapshotChain.statistics(): snapshots_open, snapshot_oldest_age_seconds, ...
    snapshots: Mapping[str, float] = field(default_factory=dict)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: float, **labels: str) -> None:
        if labels:
            rendered = ",".join(f'{label}="{_escape(text)}"' for label, text in labels.items())
            self.lines.append(f"{name}{{{rendered}}} {_number(value)}")
        else:
            self.lines.append(f"{name} {_number(value)}")

    def single(self, name: str, kind: str, help_text: str, value: float) -> None:
        self.family(name, kind, help_text)
        self.sample(name, value)


_LINK_METRICS = (
    ("up", "gauge", "1 while this node believes the peer up.", lambda link: bool(link["up"])),
    ("connected", "gauge", "1 while the link to the peer is connected.", lambda link: link["state"] == "connected"),
    ("queued", "gauge", "Requests waiting to be sent to the peer.", lambda link: link["queued"]),
    ("in_flight", "gauge", "Requests sent to the peer and not answered yet.", lambda link: link["in_flight"]),
    ("sent_bytes_total", "counter", "Bytes sent to the peer.", lambda link: link["sent_bytes"]),
    ("received_bytes_total", "counter", "Bytes received from the peer.", lambda link: link["received_bytes"]),
    ("sent_messages_total", "counter", "Requests sent to the peer.", lambda link: link["sent_messages"]),
    ("received_messages_total", "counter", "Replies received from the peer.", lambda link: link["received_messages"]),
    ("ping_rtt_seconds", "gauge", "Round trip of the last answered TKV.PING (-1: none yet).",
     lambda link: -1 if link["last_ping_rtt_seconds"] is None else link["last_ping_rtt_seconds"]),
    ("oldest_request_age_seconds", "gauge", "How long the oldest unanswered request to the peer has waited (0: none).",
     lambda link: link.get("oldest_request_age_seconds") or 0),
)


def _cluster_links(out: _Writer, links: list[Mapping[str, object]]) -> None:
    if not links:
        return
    for suffix, kind, help_text, read in _LINK_METRICS:
        name = f"trio_kv_cluster_link_{suffix}"
        out.family(name, kind, help_text)
        for link in links:
            out.sample(name, float(read(link)), peer=str(link["peer"]))


def _labelled_counters(out: _Writer, name: str, help_text: str, label: str, counts: Mapping[str, int]) -> None:
    """One counter family, a sample per entry of ``counts`` (its name as
    the ``label`` label); nothing when ``counts`` is empty."""
    if not counts:
        return
    out.family(name, "counter", help_text)
    for entry, count in counts.items():
        out.sample(name, float(count), **{label: entry})


def _cluster_hints(out: _Writer, counts: Mapping[str, int], pending: list[tuple[str, tuple[int, int]]]) -> None:
    """Hinted handoff: its counters (the pending totals are gauges, per target)."""
    _labelled_counters(
        out, "trio_kv_cluster_hints_total",
        "Hints written, replayed and dropped (written, replayed, dropped_window, dropped_full, ...).",
        "counter", {name: count for name, count in counts.items() if not name.startswith("pending_")},
    )
    if not counts:
        return
    out.family("trio_kv_cluster_hints_pending", "gauge", "Hints kept for a target node, not yet acked by it.")
    for target, (records, _size) in pending:
        out.sample("trio_kv_cluster_hints_pending", float(records), target=target)
    out.family("trio_kv_cluster_hints_pending_bytes", "gauge", "Bytes of the hints kept for a target node.")
    for target, (_records, size) in pending:
        out.sample("trio_kv_cluster_hints_pending_bytes", float(size), target=target)


_VERSION_METRICS = {
    "versioned_keys": "Keys with versions on this node (tombstones included).",
    "keys_with_siblings": "Keys holding more than one sibling (concurrent writes not resolved yet).",
    "largest_siblings": "The most siblings one key holds now (127: 127 or more).",
    "largest_siblings_peak": "The most siblings one key held since the start.",
    "tombstone_keys": "Deleted keys kept as tombstones.",
    "version_bytes": "Bytes of the stored version clocks.",
}


def _cluster_versions(out: _Writer, versions: Mapping[str, int]) -> None:
    for name, help_text in _VERSION_METRICS.items():
        if name in versions:
            out.single(f"trio_kv_cluster_{name}", "gauge", help_text, versions[name])


_SNAPSHOT_METRICS = {
    "snapshots_open": ("trio_kv_snapshots_open", "gauge", "Open snapshots."),
    "snapshot_oldest_age_seconds": ("trio_kv_snapshot_oldest_age_seconds", "gauge", "Age of the oldest open snapshot."),
    "snapshot_undo_bytes": ("trio_kv_snapshot_undo_bytes", "gauge", "Bytes the snapshots' undo logs hold."),
    "snapshots_expired": ("trio_kv_snapshots_expired_total", "counter", "Snapshots expired by a limit."),
}


def _snapshots(out: _Writer, figures: Mapping[str, float]) -> None:
    for name, (metric, kind, help_text) in _SNAPSHOT_METRICS.items():
        if name in figures:
            out.single(metric, kind, help_text, figures[name])


def render_metrics(snapshot: MetricsSnapshot) -> bytes:
    out = _Writer()
    out.family("trio_kv_commands_total", "counter", "Commands executed, by command and result (ok or error).")
    for name, (calls, failed) in sorted(snapshot.commands.items()):
        out.sample("trio_kv_commands_total", calls - failed, command=name, result="ok")
        out.sample("trio_kv_commands_total", failed, command=name, result="error")

    histogram = "trio_kv_command_latency_seconds"
    out.family(histogram, "histogram", "Time from reading a request to its reply being ready, by command.")
    for name, latency in sorted(snapshot.latency.items()):
        for bound, count in zip(LATENCY_BUCKETS_SECONDS, latency.cumulative):
            out.sample(f"{histogram}_bucket", count, command=name, le=_number(bound))
        out.sample(f"{histogram}_bucket", latency.count, command=name, le="+Inf")
        out.sample(f"{histogram}_sum", latency.sum_seconds, command=name)
        out.sample(f"{histogram}_count", latency.count, command=name)

    counters = snapshot.counters
    out.single("trio_kv_errors_total", "counter", "Error replies sent, all protocols.", counters.get("errors", 0))
    out.single(
        "trio_kv_keyspace_hits_total", "counter", "Key lookups that found the key.", counters.get("keyspace_hits", 0)
    )
    out.single(
        "trio_kv_keyspace_misses_total", "counter", "Key lookups that missed.", counters.get("keyspace_misses", 0)
    )
    out.single("trio_kv_keys", "gauge", "Keys stored.", snapshot.keys)
    out.single("trio_kv_value_bytes", "gauge", "Total length of all stored values in bytes.", snapshot.value_bytes)
    out.single(
        "trio_kv_expired_keys_total", "counter", "Keys deleted because their TTL ran out.", snapshot.expired_keys
    )
    out.single(
        "trio_kv_evicted_keys_total", "counter", "Keys deleted by the maxmemory policy.", snapshot.evicted_keys
    )
    out.single(
        "trio_kv_used_memory_bytes", "gauge", "Used memory as INFO reports it.", snapshot.used_memory_bytes
    )

    out.family("trio_kv_connected_clients", "gauge", "Open client connections, by protocol.")
    for protocol, count in sorted(snapshot.connected_clients.items()):
        out.sample("trio_kv_connected_clients", count, protocol=protocol)
    out.single(
        "trio_kv_connections_received_total",
        "counter",
        "Connections accepted on every listener.",
        counters.get("total_connections", 0),
    )
    out.single(
        "trio_kv_rejected_connections_total",
        "counter",
        "Connections refused because --max-clients were connected.",
        counters.get("rejected_connections", 0),
    )
    out.single("trio_kv_max_clients", "gauge", "The effective --max-clients.", snapshot.max_clients)

    out.family("trio_kv_http_requests_total", "counter", "HTTP responses sent, by route, method and status code.")
    for (route, method, status), count in sorted(snapshot.http_requests.items()):
        out.sample("trio_kv_http_requests_total", count, route=route, method=method, code=str(status))

    dispatcher = snapshot.dispatcher
    if dispatcher:
        out.single("trio_kv_dispatch_hops_total", "counter", "Worker-thread hops.", dispatcher.get("hops", 0))
        out.single("trio_kv_dispatch_jobs_total", "counter", "Jobs the hops ran (client batches and internal work).", dispatcher.get("jobs", 0))
        out.single("trio_kv_dispatch_pending", "gauge", "Jobs waiting for a worker.", dispatcher.get("pending", 0))
        out.single("trio_kv_workers_busy", "gauge", "Workers running a hop.", dispatcher.get("workers_busy", 0))

    out.single("trio_kv_ready", "gauge", "1 when the server is ready (recovery finished, accepting).", snapshot.ready)
    out.single("trio_kv_uptime_seconds", "gauge", "Seconds since the server started.", snapshot.uptime_seconds)
    _cluster_links(out, snapshot.cluster_links)
    _labelled_counters(
        out, "trio_kv_cluster_requests_total",
        "Cluster coordinator outcomes (writes_ok, writes_noreplicas, reads_repaired, ...).",
        "outcome", snapshot.cluster_data_path,
    )
    _labelled_counters(
        out, "trio_kv_cluster_aae_total",
        "Anti-entropy rounds, comparisons, repairs and requests (rounds, keys_repaired, ...).",
        "counter", snapshot.cluster_anti_entropy,
    )
    _cluster_hints(out, snapshot.cluster_hints, snapshot.cluster_hints_pending)
    _cluster_versions(out, snapshot.cluster_versions)
    _snapshots(out, snapshot.snapshots)
    for name, value in sorted(snapshot.persistence.items()):
        out.single(f"trio_kv_persistence_{name}", "gauge", f"Persistence state: {name}.", value)
    out.lines.append("")
    return "\n".join(out.lines).encode()
