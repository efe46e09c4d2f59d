#!/usr/bin/env python3
"""Client latency while anti-entropy repairs a big divergence, for each
``--cluster-aae-max-keys-per-second`` asked (0: unlimited).

For each limit: a 3-node cluster of real processes (N=3, W=2, R=2,
``--cluster-aae-interval 1``); node 2 is killed (SIGKILL), ``--keys``
keys are written through node 0 (W=2 acknowledges them on nodes 0 and 1),
node 2 is restarted and anti-entropy repairs it. Meanwhile one client
per node sends GET then SET of its own probe keys, one request at a time
(quorum reads and writes, so every node's latency shows), until every
node holds every key; then the same probes run as long again on the
converged cluster (the baseline). Prints, per limit: the seconds to
converge, the CPU seconds the three nodes spent per 1,000 keys repaired
(utime + stime from /proc over the repair, probes included: compare
limits, not absolute values) and the probes' p50 / p99 / max in
milliseconds during the repair and after it. Asserts nothing; the limits run alternately,
``--repeat`` times.

    .venv/bin/python bench/aae_repair_bench.py
    .venv/bin/python bench/aae_repair_bench.py --keys 20000 --limits 0,1000,300 --repeat 2

Every process started here is stopped by PID on exit (ProcessCluster).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import redis  # noqa: E402

from tests.integration.process_cluster import ProcessCluster  # noqa: E402

CONVERGE_WITHIN_SECONDS = 300.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def probe(cluster: ProcessCluster, index: int, stop: threading.Event, latencies_ms: list[float]) -> None:
    """GET then SET of this node's probe keys, one at a time, until ``stop``."""
    with cluster.client(index) as client:
        n = 0
        while not stop.is_set():
            key = f"probe:{index}:{n % 100}"
            for call in (lambda: client.get(key), lambda: client.set(key, b"x" * 16)):
                started = time.perf_counter()
                try:
                    call()
                except redis.RedisError:
                    continue  # a -NOREPLICAS under load: not a latency
                latencies_ms.append((time.perf_counter() - started) * 1000)
            n += 1


def percentiles(latencies_ms: list[float]) -> str:
    if len(latencies_ms) < 2:
        return "n/a"
    cuts = statistics.quantiles(latencies_ms, n=100)
    return f"{cuts[49]:.2f} / {cuts[98]:.2f} / {max(latencies_ms):.1f}"


def run_probes(cluster: ProcessCluster, until) -> tuple[list[float], float]:
    """Probes on every node until ``until()`` is true; (latencies, seconds)."""
    stop = threading.Event()
    latencies: list[list[float]] = [[] for _ in cluster.hosts]
    threads = [threading.Thread(target=probe, args=(cluster, i, stop, latencies[i])) for i in range(len(cluster.hosts))]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        until(started)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    return [ms for each in latencies for ms in each], time.monotonic() - started


def one_run(limit: int, keys: int) -> tuple[float, list[float], list[float], int, float]:
    flags = ("--cluster-aae-interval", "1", "--cluster-aae-max-keys-per-second", str(limit))
    with ProcessCluster(3, *flags) as cluster:
        cluster.start_all()
        cluster.kill(2)
        cluster.wait_for(lambda: cluster.up_count(cluster.hosts[0]) == 2)
        with cluster.client(0) as writer:
            for first in range(0, keys, 1000):
                for _ in range(5):  # -NOREPLICAS on a loaded machine: the chunk again
                    pipe = writer.pipeline(transaction=False)
                    for index in range(first, min(first + 1000, keys)):
                        pipe.set(f"aae:{index:06d}", f"v{index}")
                    try:
                        pipe.execute()
                        break
                    except redis.ResponseError:
                        time.sleep(1)
        cluster.start(2)
        cluster.wait_for(cluster.meshed)

        def converged(started: float) -> None:
            while not all(cluster.counters(i)["versions_keys"] >= keys for i in range(3)):
                if time.monotonic() - started > CONVERGE_WITHIN_SECONDS:
                    raise TimeoutError("no convergence")
                time.sleep(0.1)

        pids = [cluster.node(i).process.pid for i in range(3)]
        cpu_before = sum(cpu_seconds(pid) for pid in pids)
        during, seconds = run_probes(cluster, converged)
        cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
        after, _ = run_probes(cluster, lambda started: time.sleep(min(seconds, 10.0)))
        repaired = sum(cluster.counters(i)["aae_keys_repaired"] for i in range(3))
        return seconds, during, after, repaired, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=20_000)
    parser.add_argument("--limits", default="0,1000", help="comma separated keys/s (0: unlimited)")
    parser.add_argument("--repeat", type=int, default=1)
    options = parser.parse_args()
    limits = [int(text) for text in options.limits.split(",")]
    print(f"load: {os.getloadavg()[0]:.1f}")
    print("| limit keys/s | converge s | repaired | CPU s / 1000 keys | during p50 / p99 / max ms | after p50 / p99 / max ms |")
    print("|---|---|---|---|---|---|")
    for _ in range(options.repeat):
        for limit in limits:
            seconds, during, after, repaired, cpu = one_run(limit, options.keys)
            print(f"| {limit or 'unlimited'} | {seconds:.1f} | {repaired} | {cpu * 1000 / max(repaired, 1):.2f}"
                  f" | {percentiles(during)} | {percentiles(after)} |", flush=True)
    print(f"load: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
