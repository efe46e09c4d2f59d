"""Take the snapshot ``GET /metrics`` renders (``http.prometheus``).

Runs on the event loop and takes no store lock: ``Stats`` is safe to read
from any thread, and the keyspace figures (key count, value bytes, expired keys) are single
integers that writers update under the write lock, so a read sees a value
at most one command old. The live connections come from the registry (the
event loop's), copied with ``list(...)`` first so a copy is consistent even
when this runs on a helper thread.
"""

from __future__ import annotations

import re
import time
from typing import Any

from ..commands.control import ServerControl
from ..commands.wire import LINE, RESP
from ..http.prometheus import LATENCY_BUCKETS_US, CommandLatency, MetricsSnapshot
from ..http.wire import HTTP
from ..store.engine import Store
from .listener import ConnectionRegistry

# Every protocol, in the order the metrics list their connection counts.
WIRE_PROTOCOLS = (LINE, RESP, HTTP)
_METRIC_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def _persistence(control: ServerControl) -> dict[str, float]:
    """INFO persistence's numbers when the append-only log is on (its
    ``info()`` is safe from any thread): statuses as 1 (ok) or 0 (err),
    other text left out; plus ``writes_refused`` (1 while a disk error
    refuses writes)."""
    persistence = control.log
    if persistence is None:
        return {}
    numbers: dict[str, float] = {}
    for name, value in persistence.info().items():
        if not _METRIC_NAME.fullmatch(name):
            continue
        if isinstance(value, (int, float)):
            numbers[name] = value
        elif name.endswith("_status"):
            numbers[name] = 1 if value == "ok" else 0
    numbers["writes_refused"] = 0 if persistence.refusal() is None else 1
    return numbers


def connection_protocols(registry: ConnectionRegistry) -> dict[str, int]:
    """Live connections by their protocol's metrics label (every label of
    ``WIRE_PROTOCOLS`` present, 0 when none; a main-port client whose first
    byte has not arrived counts as the line protocol)."""
    counts = dict.fromkeys((wire.label for wire in WIRE_PROTOCOLS), 0)
    for connection in list(registry.connections.values()):
        label = connection.session.wire.label
        counts[label] = counts.get(label, 0) + 1
    return counts


def collect_metrics(
    store: Store,
    control: ServerControl,
    connected_clients: dict[str, int],
    http_requests: dict[tuple[str, str, int], int],
    ready: bool,
) -> MetricsSnapshot:
    stats = store.stats
    table = stats.command_table()
    keyspace = store.keyspace
    return MetricsSnapshot(
        counters=stats.counters(),
        commands={name: (calls, failed) for name, (calls, failed, _usec) in table.items()},
        latency={
            name: CommandLatency(count, sum_us / 1_000_000, cumulative)
            for name, (count, sum_us, cumulative) in stats.latency_histograms(LATENCY_BUCKETS_US).items()
        },
        keys=len(keyspace),
        value_bytes=keyspace.value_bytes,
        expired_keys=keyspace.expired_keys,
        evicted_keys=keyspace.evicted_keys,
        used_memory_bytes=store.used_memory_bytes(),
        connected_clients=connected_clients,
        max_clients=control.max_clients,
        ready=ready,
        uptime_seconds=time.time() - control.started_at_s,
        http_requests=http_requests,
        dispatcher=dict(control.dispatcher_statistics()),
        persistence=_persistence(control),
        cluster_links=_cluster_links(control),
        cluster_data_path=_cluster_data_path(control),
        cluster_anti_entropy=_cluster_anti_entropy(control),
        cluster_hints=_cluster_status_part(control, "hints", {}),
        cluster_hints_pending=_cluster_status_part(control, "hints_pending", []),
        # Integers the writers keep (a scan of 128 slots): at most a write old.
        cluster_versions={} if store.versions is None else store.versions.statistics(),
        # Integers and a list copy: safe without the lock (store/snapshots.py).
        snapshots=keyspace.snapshots.statistics(),
    )


def _cluster_links(control: ServerControl) -> list:
    status = control.cluster_bus_status()
    links = [] if status is None else status["links"]
    assert isinstance(links, list)
    return links


def _cluster_data_path(control: ServerControl) -> dict[str, int]:
    status = control.cluster_bus_status()
    data_path = {} if status is None else status.get("data_path") or {}
    assert isinstance(data_path, dict)
    return data_path


def _cluster_status_part(control: ServerControl, name: str, empty: Any) -> Any:
    """One part of the bus status (hinted handoff's counters or pending hints)."""
    status = control.cluster_bus_status()
    return empty if status is None else status.get(name) or empty


def _cluster_anti_entropy(control: ServerControl) -> dict[str, int]:
    status = control.cluster_bus_status()
    counts = {} if status is None else status.get("anti_entropy") or {}
    assert isinstance(counts, dict)
    return counts
