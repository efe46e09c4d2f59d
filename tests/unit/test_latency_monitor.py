"""The latency monitor's time series (store.latency_monitor) and the error
statistics (store.stats), with explicit times: no clock, no sockets."""

from __future__ import annotations

from trio_kv.store.latency_monitor import SAMPLES_PER_EVENT, LatencyMonitor
from trio_kv.store.stats import MAX_ERROR_CODES, Stats, error_code


def test_off_until_a_threshold_is_set() -> None:
    monitor = LatencyMonitor()
    monitor.add_sample_if_needed("command", 10_000)
    assert monitor.latest() == []
    monitor.threshold_ms = 100
    monitor.add_sample_if_needed("command", 99)
    assert monitor.latest() == []
    monitor.add_sample_if_needed("command", 100)
    assert [event for event, *_ in monitor.latest()] == ["command"]


def test_one_sample_per_second_keeps_the_worst() -> None:
    monitor = LatencyMonitor(threshold_ms=1)
    monitor.add_sample("command", 5, now_s=1000)
    monitor.add_sample("command", 9, now_s=1000)
    monitor.add_sample("command", 7, now_s=1000)
    monitor.add_sample("command", 3, now_s=1001)
    assert monitor.history("command") == [(1000, 9), (1001, 3)]
    assert monitor.latest() == [("command", 1001, 3, 9)]


def test_the_ring_keeps_the_newest_samples_and_the_all_time_max() -> None:
    monitor = LatencyMonitor(threshold_ms=1)
    monitor.add_sample("fast-command", 500, now_s=1)
    for second in range(2, SAMPLES_PER_EVENT + 10):
        monitor.add_sample("fast-command", 2, now_s=second)
    history = monitor.history("fast-command")
    assert len(history) == SAMPLES_PER_EVENT
    assert history[-1] == (SAMPLES_PER_EVENT + 9, 2) and (1, 500) not in history
    assert monitor.max_ms("fast-command") == 500


def test_reset_by_name_any_case_or_all() -> None:
    monitor = LatencyMonitor(threshold_ms=1)
    for event in ("command", "fast-command", "expire-cycle"):
        monitor.add_sample(event, 10, now_s=5)
    assert monitor.reset(["COMMAND", "nosuch"]) == 1
    assert sorted(monitor.events()) == ["expire-cycle", "fast-command"]
    assert monitor.reset() == 2
    assert monitor.latest() == [] and monitor.reset() == 0


def test_summary_as_redis_doctor_computes_it() -> None:
    monitor = LatencyMonitor(threshold_ms=1)
    for second, latency in ((100, 10), (101, 20), (102, 60)):
        monitor.add_sample("command", latency, now_s=second)
    summary = monitor.summary("command", now_s=110)
    assert (summary.samples, summary.average_ms, summary.mean_deviation_ms) == (3, 30, 20)
    assert (summary.period_s, summary.max_ms) == (10, 60)


def test_error_codes_as_redis_takes_them() -> None:
    assert error_code("ERR unknown command 'x'") == "ERR"
    assert error_code("WRONGTYPE Operation against a key") == "WRONGTYPE"
    assert error_code("EXECABORT Transaction discarded") == "EXECABORT"
    assert error_code("NOSPACEHEREATALLINTHEFIRST32CHARACTERS at all") == "ERR"
    assert error_code("nospace") == "ERR"


def test_errorstats_reset_and_bound() -> None:
    stats = Stats()
    stats.record_error("WRONGTYPE x")
    stats.record_command("incr", None, True, 1, 1, "ERR value is not an integer")
    stats.shard().record_rejected("set")
    assert stats.error_counts() == {"ERR": 1, "WRONGTYPE": 1}
    assert stats.counters()["errors"] == 2
    assert stats.command_rejections() == {"set": 1}
    assert stats.command_table()["set"] == (0, 0, 0)
    stats.reset()
    assert stats.error_counts() == {} and stats.command_rejections() == {}
    stats = Stats()
    for index in range(MAX_ERROR_CODES + 10):
        stats.record_error(f"CODE{index} message")
    assert len(stats.error_counts()) == MAX_ERROR_CODES
    assert stats.counters()["errors"] == MAX_ERROR_CODES + 10


def test_latency_tracking_off_keeps_counting_calls() -> None:
    stats = Stats()
    stats.latency_tracking = False
    stats.record_command("get", None, False, 3, 5)
    assert stats.command_table()["get"][0] == 1
    assert stats.latency_summary() == []
    stats.latency_tracking = True
    stats.record_command("get", None, False, 3, 5)
    assert [entry[:2] for entry in stats.latency_summary()] == [("get", 1)]
