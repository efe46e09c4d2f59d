#!/usr/bin/env python3
"""Work per acknowledged cluster SET, counted in one process: figures that
other processes' load hardly moves.

Prints Markdown, asserts nothing. Three real trio_kv nodes and their
clients run in one ``trio.run`` on the in-memory network of
``tests/cluster_sim`` (no faults, the real clock, ``appendfsync everysec``,
N=3 W=2), with the simulation's deterministic mode: store hops run inline
on the event loop (no worker threads) and fsync is a no-op. ``--clients``
connections, spread over the nodes, each send ``--writes / clients`` SETs
of random keys one at a time (every node replicates every key, so each
node coordinates the SETs it receives, as ``redis-benchmark --cluster``
makes it do). Per acknowledged SET, all nodes and the clients together:

* **task steps**: Trio task steps (an ``Instrument``'s
  ``before_task_step``): every wakeup of a connection, a link's reader or
  writer, the dispatcher's runners and the log's flusher;
* **calls**: Python function calls (``cProfile``'s count; ``--calls``,
  a separate run, as profiling slows everything);
* **CPU us**: this process's CPU time (``time.process_time``), median of
  ``--repeat`` runs. Unlike the two counts it moves with the machine's load,
  less than a multi-process benchmark's. (The counts move a little too:
  how many requests one wakeup or hop gathers depends on timing; a few
  percent between runs, so compare alternating runs made at the same time.)

The counts include the simulated network and clients (the same for any
version of the server), so compare versions of the code by them, A/B:
``bench/cluster_bench.py`` gives the real processes' CPU.

    .venv/bin/python bench/cluster_sim_bench.py [--writes 6000] [--clients 30] [--repeat 3] [--calls]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.cluster_sim.cluster import SimCluster, wait_until  # noqa: E402
from tests.cluster_sim.determinism import deterministic  # noqa: E402


class StepCounter(trio.abc.Instrument):
    """Counts Trio task steps while ``counting``."""

    def __init__(self) -> None:
        self.counting = False
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if self.counting:
            self.steps += 1


async def workload(writes: int, clients: int, steps: StepCounter, profile: cProfile.Profile | None) -> float:
    """Seconds of process CPU per acknowledged SET."""
    root = Path(tempfile.mkdtemp(prefix="trio-kv-cluster-sim-bench-"))
    cluster = SimCluster(1, root, count=3, disk_latency_seconds=0.0, appendfsync="everysec", workers=4)
    rng = random.Random(1)
    per_client = writes // clients
    async with trio.open_nursery() as nursery:
        await cluster.start_all(nursery)
        await wait_until(cluster.all_up, seconds=30)
        connections = [await cluster.client(nursery, cluster.nodes[index % 3], host=f"10.0.1.{index + 1}")
                       for index in range(clients)]
        for connection in connections:
            await connection.call(b"SET", b"warm-up", b"x")

        async def client(connection) -> None:
            for _ in range(per_client):
                reply = await connection.call(b"SET", b"key:%d" % rng.randrange(100_000), b"xxx")
                if getattr(reply, "text", None) != "OK":
                    raise RuntimeError(f"SET answered {reply!r}")

        steps.counting = True
        if profile is not None:
            profile.enable()
        started = time.process_time()
        async with trio.open_nursery() as clients_nursery:
            for connection in connections:
                clients_nursery.start_soon(client, connection)
        cpu = time.process_time() - started
        if profile is not None:
            profile.disable()
        steps.counting = False
        nursery.cancel_scope.cancel()
    return cpu / (per_client * clients)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=6000)
    parser.add_argument("--clients", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--calls", action="store_true", help="also count Python function calls (one more run)")
    options = parser.parse_args()
    writes = options.writes // options.clients * options.clients
    cpu_us, steps_per_write = [], []
    for _ in range(options.repeat):
        steps = StepCounter()
        with deterministic(1):
            cpu_us.append(trio.run(workload, writes, options.clients, steps, None, instruments=[steps]) * 1e6)
        steps_per_write.append(steps.steps / writes)
    calls = "-"
    if options.calls:
        profile = cProfile.Profile()
        with deterministic(1):
            trio.run(workload, writes, options.clients, StepCounter(), profile)
        counted = sum(entry[1] for entry in pstats.Stats(profile).stats.values())  # type: ignore[attr-defined]
        calls = f"{counted / writes:.0f}"
    print(f"# in-process 3-node cluster: {writes} SETs from {options.clients} clients\n")
    print("| task steps per SET | calls per SET | CPU us per SET (median) | CPU us, each run |")
    print("| --- | --- | --- | --- |")
    print(f"| {statistics.median(steps_per_write):.2f} | {calls} | {statistics.median(cpu_us):.0f} "
          f"| {' / '.join(f'{value:.0f}' for value in cpu_us)} |")


if __name__ == "__main__":
    main()
