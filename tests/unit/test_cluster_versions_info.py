"""The versions' figures (``Versions.statistics()``) in INFO cluster (only
while the bus runs: a lone node's INFO cluster stays redis-server's) and in
/metrics (whenever the store has versions), and the peer links' lag."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from trio_kv.commands.info import info_text
from trio_kv.http.prometheus import render_metrics
from trio_kv.server.http_metrics import collect_metrics

from ..fake_clock import FakeClock
from .cluster_store import NODE_A, NODE_B, cluster_session, versions_of
from .redis_session import call, make_session, run
from .test_cluster_bus_info import STATUS
from .test_server_control import FakeControl


def _node_with_siblings():
    clock = FakeClock()
    a, b = cluster_session(NODE_A, clock), cluster_session(NODE_B, clock)
    run(a, "SET k from-a", "SET gone 1", "DEL gone")
    call(b, "SET k from-b")
    versions_of(a).apply_remote(b"k", versions_of(b).clock_of(b"k"))
    a.keyspace.effects.end_command()
    return a


def test_info_cluster_shows_the_versions_only_with_the_bus() -> None:
    node = _node_with_siblings()
    control = FakeControl()
    alone = info_text(node.store, control, ["cluster"])
    assert "cluster_versions" not in alone
    control.bus_status = STATUS
    text = info_text(node.store, control, ["cluster"])
    stored = versions_of(node).statistics()["version_bytes"]
    assert (
        "cluster_versions_keys:2\r\ncluster_versions_keys_with_siblings:1\r\ncluster_versions_largest_siblings:2\r\n"
        "cluster_versions_largest_siblings_peak:2\r\ncluster_versions_tombstones:1\r\n"
        f"cluster_versions_bytes:{stored}\r\n"
    ) in text
    assert text.index("cluster_bus_link0") < text.index("cluster_versions_keys")


def test_metrics_show_the_versions_and_the_link_lag() -> None:
    node = _node_with_siblings()
    control = FakeControl()
    links = [dict(STATUS["links"][0], oldest_request_age_seconds=0.25)]
    control.bus_status = dict(STATUS, links=links)
    snapshot = collect_metrics(node.store, control, {}, {}, True)
    families = {family.name: family for family in text_string_to_metric_families(render_metrics(snapshot).decode())}
    values = {name: families[f"trio_kv_cluster_{name}"].samples[0].value
              for name in ("versioned_keys", "keys_with_siblings", "largest_siblings", "tombstone_keys")}
    assert values == {"versioned_keys": 2, "keys_with_siblings": 1, "largest_siblings": 2, "tombstone_keys": 1}
    assert families["trio_kv_cluster_version_bytes"].samples[0].value > 0
    lag = families["trio_kv_cluster_link_oldest_request_age_seconds"].samples[0]
    assert lag.value == 0.25 and lag.labels == {"peer": "127.0.0.12:7001"}
    plain, _ = make_session()
    off = render_metrics(collect_metrics(plain.store, FakeControl(), {}, {}, True)).decode()
    assert "trio_kv_cluster_" not in off
