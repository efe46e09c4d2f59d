"""Hinted handoff in INFO cluster (cluster_hints_*), in ``trio-kv cluster
status`` ("hints pending") and in /metrics."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from trio_kv.commands.cluster_bus_info import bus_info_fields
from trio_kv.http.prometheus import MetricsSnapshot, render_metrics
from trio_kv.server.cluster.hints import HINT_COUNTERS
from trio_kv.server.cluster.status import render

from .test_cluster_bus_info import STATUS

COUNTS = dict.fromkeys(HINT_COUNTERS, 0) | {
    "written": 10_000, "replayed": 4_000, "dropped_window": 3, "dropped_full": 2, "dropped_damaged": 1,
    "pending_records": 6_000, "pending_bytes": 600_000,
}
PENDING = [("127.0.0.12:7001", (6_000, 600_000))]


def test_info_cluster_and_cluster_status_show_hints_pending() -> None:
    fields = {name: str(value) for name, value in
              bus_info_fields({**STATUS, "hints": COUNTS, "hints_pending": PENDING})}
    assert fields["cluster_hints_written"] == "10000"
    assert fields["cluster_hints_pending_records"] == "6000"
    assert fields["cluster_hints_target0"] == "target=127.0.0.12:7001,records=6000,bytes=600000"
    text = render(fields)
    assert "HINTED HANDOFF" in text
    assert "hints pending         6000 (585.9 KiB)" in text
    assert "hints pending for 127.0.0.12:7001: 6000 (585.9 KiB)" in text
    assert "3 past the window, 2 over the size bound, 1 damaged" in text
    assert "HINTED HANDOFF" not in render({name: str(value) for name, value in bus_info_fields(STATUS)})


def test_metrics_count_hints_and_gauge_them_per_target() -> None:
    snapshot = MetricsSnapshot(
        counters={}, commands={}, latency={}, keys=0, value_bytes=0, expired_keys=0, connected_clients={},
        max_clients=1, ready=True, uptime_seconds=1.0, cluster_hints=COUNTS, cluster_hints_pending=PENDING,
    )
    families = {family.name: family for family in text_string_to_metric_families(render_metrics(snapshot).decode())}
    counters = {sample.labels["counter"]: sample.value for sample in families["trio_kv_cluster_hints"].samples
                if sample.name.endswith("_total")}
    assert counters["written"] == 10_000 and counters["replayed"] == 4_000 and "pending_records" not in counters
    pending = families["trio_kv_cluster_hints_pending"].samples
    assert [(s.labels["target"], s.value) for s in pending] == [("127.0.0.12:7001", 6_000)]
    assert families["trio_kv_cluster_hints_pending_bytes"].samples[0].value == 600_000
