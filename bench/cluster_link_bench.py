"""The bus link's request rate and latency: two nodes in this process (on
their own loopback addresses), C concurrent callers each sending R
``TKV.PING`` requests over node A's ``PeerLink`` to node B. Prints
requests/s, p50/p99 latency, and requests per send (the writer's batching).

    .venv/bin/python bench/cluster_link_bench.py [--callers 50] [--requests 2000]

Both nodes and the callers share one event loop (and the machine's cores
with anything else running), so this is a floor, not a network figure.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.cluster_nodes import free_cluster_port, node_hosts, seeds_of, start_node  # noqa: E402


async def main(callers: int, requests: int) -> None:
    hosts = node_hosts(2)
    port = free_cluster_port(hosts)
    seeds = seeds_of(hosts, port)
    async with trio.open_nursery() as nursery:
        a = await start_node(nursery, hosts[0], port, seeds)
        b = await start_node(nursery, hosts[1], port, seeds)
        link = next(iter(a.cluster.node.links.values()))
        while not link.connected:
            await trio.sleep(0.01)
        latencies: list[float] = []

        async def caller() -> None:
            for _ in range(requests):
                started = time.perf_counter()
                await link.request([b"TKV.PING"])
                latencies.append(time.perf_counter() - started)

        before, sends_before = link.statistics(), link.traffic.sends
        started = time.perf_counter()
        async with trio.open_nursery() as callers_nursery:
            for _ in range(callers):
                callers_nursery.start_soon(caller)
        elapsed = time.perf_counter() - started
        after, sends = link.statistics(), link.traffic.sends - sends_before
        total = callers * requests
        latencies.sort()
        print(f"{total} requests, {callers} callers: {total / elapsed:,.0f} requests/s, "
              f"p50 {statistics.median(latencies) * 1000:.2f} ms, p99 {latencies[int(len(latencies) * 0.99)] * 1000:.2f} ms, "
              f"{(after.sent_bytes - before.sent_bytes) / total:.0f} bytes per request, "
              f"{(after.sent_messages - before.sent_messages) / max(1, sends):.1f} requests per send")
        a.shutdown.set()
        b.shutdown.set()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--callers", type=int, default=50)
    parser.add_argument("--requests", type=int, default=2000)
    options = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    trio.run(main, options.callers, options.requests)
