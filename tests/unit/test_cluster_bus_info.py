"""INFO cluster's cluster_bus_* fields (commands.cluster_bus_info) from the
control's bus status, and ``trio-kv cluster status`` reading them back."""

from __future__ import annotations

from trio_kv.commands.cluster_bus_info import bus_info_fields
from trio_kv.commands.info import info_text
from trio_kv.config import Config
from trio_kv.server.cluster.status import render
from trio_kv.store.store import Store

from .test_server_control import FakeControl

STATUS = {
    "epoch": 1,
    "ring_hash": "0123456789abcdef",
    "myself": "127.0.0.11:7001",
    "members": [("127.0.0.11:7001", "a" * 40, True), ("127.0.0.12:7001", "b" * 40, False)],
    "links": [{
        "peer": "127.0.0.12:7001", "node_id": None, "state": "backoff", "up": False, "queued": 0, "in_flight": 0,
        "queued_bytes": 0, "sent_bytes": 2048, "received_bytes": 10, "sent_messages": 7, "received_messages": 6, "late_replies": 1,
        "connections": 2, "connected_since_s": None, "last_ping_rtt_seconds": 0.000412, "last_error": "x",
    }],
}


def test_no_bus_no_fields() -> None:
    control = FakeControl()
    assert bus_info_fields(None) == []
    assert info_text(Store(Config()), control, ["cluster"]) == "# Cluster\r\ncluster_enabled:0\r\n"


def test_info_cluster_lists_members_and_links() -> None:
    control = FakeControl()
    control.bus_status = STATUS
    text = info_text(Store(Config()), control, ["cluster"])
    assert "cluster_bus_members:2\r\ncluster_bus_members_up:1\r\n" in text
    assert f"cluster_bus_member1:address=127.0.0.12:7001,node_id={'b' * 40},up=0\r\n" in text
    assert ("cluster_bus_link0:peer=127.0.0.12:7001,node_id=-,state=backoff,up=0,queued=0,in_flight=0,"
            "sent_bytes=2048,received_bytes=10,sent_messages=7,received_messages=6,late_replies=1,"
            "connections=2,connected_since=0,ping_rtt_us=412,oldest_request_age_us=0\r\n") in text


def test_cluster_status_renders_the_fields() -> None:
    fields = {name: str(value) for name, value in bus_info_fields(STATUS)}
    text = render(fields)
    assert "members 2 (1 up)" in text
    assert "127.0.0.11:7001" in text and "(myself)" in text and "down" in text
    assert "backoff" in text and "0.41 ms" in text and "7 / 2.0 KiB" in text


def test_anti_entropy_progress_in_info_and_cluster_status() -> None:
    from trio_kv.server.cluster.anti_entropy import COUNTERS

    counts = dict.fromkeys(COUNTERS, 0) | {"rounds": 12, "keys_repaired": 345, "partitions_compared": 768}
    fields = {name: str(value) for name, value in bus_info_fields({**STATUS, "anti_entropy": counts})}
    assert fields["cluster_aae_rounds"] == "12" and fields["cluster_aae_keys_repaired"] == "345"
    text = render(fields)
    assert "ANTI-ENTROPY" in text and "keys repaired         345" in text and "partitions compared   768" in text
    assert "ANTI-ENTROPY" not in render({name: str(value) for name, value in bus_info_fields(STATUS)})


def test_anti_entropy_counters_in_metrics() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from trio_kv.http.prometheus import render_metrics
    from trio_kv.server.http_metrics import collect_metrics

    control = FakeControl()
    control.bus_status = {**STATUS, "anti_entropy": {"rounds": 3, "keys_repaired": 7}}
    text = render_metrics(collect_metrics(Store(Config()), control, {}, {}, True)).decode()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    samples = {sample.labels["counter"]: sample.value for sample in families["trio_kv_cluster_aae"].samples}
    assert samples == {"rounds": 3, "keys_repaired": 7}
    control.bus_status = STATUS
    assert "trio_kv_cluster_aae" not in render_metrics(collect_metrics(Store(Config()), control, {}, {}, True)).decode()


def test_anti_entropy_peers_and_tombstones_in_info_and_cluster_status() -> None:
    import time

    from trio_kv.server.cluster.anti_entropy import COUNTERS
    from trio_kv.server.cluster.tombstone_reaper import COUNTERS as REAPER_COUNTERS

    counts = dict.fromkeys((*COUNTERS, *REAPER_COUNTERS), 0) | {"tombstones_purged": 42, "tombstones_confirmed": 50,
                                                              "partitions_waiting": 3, "rate_waits": 9}
    peers = [
        {"peer": "127.0.0.12:7001", "rounds": 12, "failed": 1, "keys_repaired": 345,
         "last_exchange_unix_ms": int(time.time() * 1000) - 2500, "last_ok": 1, "last_repaired": 17,
         "last_partitions_differing": 2},
        {"peer": "127.0.0.13:7001", "rounds": 0, "failed": 0, "keys_repaired": 0,
         "last_exchange_unix_ms": 0, "last_ok": 0, "last_repaired": 0, "last_partitions_differing": 0},
    ]
    status = {**STATUS, "anti_entropy": counts, "anti_entropy_peers": peers}
    control = FakeControl()
    control.bus_status = status
    text = info_text(Store(Config()), control, ["cluster"])
    assert "cluster_aae_tombstones_purged:42\r\n" in text
    assert "cluster_aae_peer0:peer=127.0.0.12:7001,rounds=12,failed=1,keys_repaired=345,last_exchange_unix_ms=" in text
    assert "cluster_aae_peer1:peer=127.0.0.13:7001,rounds=0," in text
    rendered = render({name: str(value) for name, value in bus_info_fields(status)})
    assert "tombstones purged     42 (50 confirmed on every replica; 3 partition rounds waited" in rendered
    assert "(9 waits for the rate limit)" in rendered
    rows = {line.split()[0]: line.split()[1:] for line in rendered.splitlines() if line.startswith("127.0.0.1")}
    assert rows["127.0.0.12:7001"][2:] == ["ago", "ok", "17", "2", "12", "1", "345"]
    assert rows["127.0.0.13:7001"][:2] == ["never", "-"]


def test_cluster_status_says_when_a_change_is_staged_or_this_node_leaves_or_was_removed() -> None:
    expected = {"final": None, "staged": "a ring change is under way", "leaving": "LEAVING: a ring change removes",
                "removed": "REMOVED: this node is not a member"}
    for state, sentence in expected.items():
        fields = {name: str(value) for name, value in bus_info_fields({**STATUS, "ring_state": state})}
        assert fields["cluster_bus_ring_state"] == state
        text = render(fields)
        if sentence is None:
            assert "ring change" not in text and "REMOVED" not in text
        else:
            assert sentence in text


def test_ring_state_of_a_node_in_a_staged_change() -> None:
    from trio_kv.cluster.ring import Member, claim
    from trio_kv.cluster.ring_change import finished, reclaim, staged
    from trio_kv.server.cluster.node import ring_state

    members = [Member("127.0.0.1", port) for port in (7001, 7002, 7003, 7004)]
    old = claim(members)
    stage = staged(old, reclaim(old, members[:3], replicas=3))
    assert ring_state(old, members[3]) == "final"
    assert ring_state(stage, members[0]) == "staged" and ring_state(stage, members[3]) == "leaving"
    assert ring_state(finished(stage), members[3]) == "removed"
