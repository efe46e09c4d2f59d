#!/usr/bin/env python3
"""A K-node trio_kv cluster (3 by default) next to a single trio_kv node, in the same run.

Prints numbers (Markdown on stdout), asserts nothing. Each server is
``<repo>/.venv/bin/python -m trio_kv`` with ``--appendonly yes
--appendfsync everysec`` (the default durability), the cluster's nodes on
their own loopback addresses (127.0.0.x, client port P, bus port P + 10000)
with N=3, W=2, R=2 (the defaults; ``--nodes K`` and ``--node-args`` change
them: ``--nodes 2 --node-args "--cluster-replicas 1 --cluster-write-quorum 1
--cluster-read-quorum 1"`` is two processes that share the keys without
copies, the way to use a second core). ``redis-benchmark --cluster -c C -n N -t
set,get --csv`` drives the cluster (it reads CLUSTER NODES and sends each
key to its published primary); plain ``redis-benchmark`` drives the single
node. For each test: requests per second, p50 and p99 (ms), and the CPU
seconds of every server process (utime + stime from /proc, before and
after) per 10,000 requests, cluster / single: the number that predicts
scaling on machines with more cores. A second table splits that CPU by
thread (``thread_cpu_seconds``: the Trio event loop, Trio's worker threads,
threads of our own such as the log's commit thread); ``--counts`` adds a
third (HTTP on client port + 1: worker hops, jobs and bus messages per
request, all nodes summed, from /metrics). ``--node-args`` passes more
options to each cluster node (``--node-args "--workers 1"``).

    .venv/bin/python bench/cluster_bench.py
    .venv/bin/python bench/cluster_bench.py -n 50000 -c 50 --repeat 3
    .venv/bin/python bench/cluster_bench.py --tests set --profile /tmp/prof
    .venv/bin/python bench/cluster_bench.py --tests set --counts
    .venv/bin/python bench/cluster_bench.py --nodes 2 --node-args "--cluster-replicas 1 \
        --cluster-write-quorum 1 --cluster-read-quorum 1"

``--profile DIR`` records each cluster node with ``py-spy`` while the
cluster is measured (collapsed stacks, ``DIR/<test>-node<i>.txt``; the
sampling costs CPU, so figures from a profiled run are not comparable).

Every process started here is stopped by PID on exit.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# harness/ is a directory of scripts (no __init__.py): importable as a
# namespace package from the repository root.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from harness.loopback import free_cluster_port, node_hosts  # noqa: E402

PYTHON = str(REPO / ".venv" / "bin" / "python")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds of each kind of thread of ``pid``: ``loop`` (the main
    thread: the Trio event loop), ``workers`` (Trio's worker threads,
    named by Trio: the store hops, disk work), ``other`` (threads of our
    own, unnamed for the OS: the log's commit thread)."""
    kinds: dict[str, float] = {"loop": 0.0, "workers": 0.0, "other": 0.0}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as stat:
                name, rest = stat.read().split(" (", 1)[1].rsplit(")", 1)
        except OSError:
            continue  # the thread ended meanwhile
        fields = rest.split()
        seconds = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        if int(tid) == pid:
            kind = "loop"
        elif name.startswith("Trio thread") or " from " in name:
            kind = "workers"
        else:
            kind = "other"
        kinds[kind] += seconds
    return kinds


def metrics(host: str, port: int) -> dict[str, float]:
    """The sums of the node's /metrics samples, by metric name (labels summed)."""
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    sums: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            name = name.split("{", 1)[0]
            sums[name] = sums.get(name, 0.0) + float(value)
    return sums


# What --counts prints per request: (label, /metrics name).
COUNTS = (
    ("hops", "trio_kv_dispatch_hops_total"),
    ("jobs", "trio_kv_dispatch_jobs_total"),
    ("bus msgs sent", "trio_kv_cluster_link_sent_messages_total"),
)


def wait_for_port(host: str, port: int, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{host}:{port} did not open")


def members_up(host: str, port: int) -> int:
    out = subprocess.run(["redis-cli", "-h", host, "-p", str(port), "INFO", "cluster"],
                         capture_output=True, text=True, timeout=10).stdout
    for line in out.splitlines():
        if line.startswith("cluster_bus_members_up:"):
            return int(line.split(":")[1])
    return 0


def start(args: list[str], data_dir: str) -> subprocess.Popen:
    os.makedirs(data_dir, exist_ok=True)
    log = open(os.path.join(data_dir, "server.log"), "w")
    return subprocess.Popen(
        [PYTHON, "-m", "trio_kv", "--data-dir", data_dir, "--appendonly", "yes", "--appendfsync", "everysec", *args],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
    )


def benchmark(host: str, port: int, test: str, requests: int, clients: int, cluster: bool) -> tuple[float, float, float]:
    command = ["redis-benchmark", "-h", host, "-p", str(port), "-c", str(clients), "-n", str(requests),
               "-t", test, "--csv", "-r", "100000"]
    if cluster:
        command.append("--cluster")
    out = subprocess.run(command, capture_output=True, text=True, timeout=600).stdout
    rows = [row for row in csv.reader(io.StringIO(out)) if row and row[0] != "test"]
    row = rows[-1]
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    return float(row[1]), float(row[4]), float(row[6])


def start_profilers(pids: list[int], directory: str | None, test: str) -> list[subprocess.Popen]:
    if directory is None:
        return []
    os.makedirs(directory, exist_ok=True)
    return [subprocess.Popen(["py-spy", "record", "--pid", str(pid), "--format", "raw", "--nonblocking",
                              "--rate", "200", "-o", os.path.join(directory, f"{test}-node{index}.txt")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for index, pid in enumerate(pids)]


def stop_all(processes: list[subprocess.Popen], signum: int, seconds: float) -> None:
    """``signum`` to each process still running, then wait; SIGKILL one still running ``seconds`` later."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signum)
    for process in processes:
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def stop_profilers(profilers: list[subprocess.Popen]) -> None:
    stop_all(profilers, signal.SIGINT, 30)  # py-spy writes its file on SIGINT


def measure(pids: list[int], host: str, port: int, test: str, requests: int, clients: int, cluster: bool,
            profile: str | None = None, http: list[tuple[str, int]] = ()):
    """(rps, p50 ms, p99 ms, CPU s per 10k requests, {thread kind: CPU s per
    10k}, {COUNTS label: per request, all ``http`` nodes summed})."""
    profilers = start_profilers(pids, profile, test)
    try:
        counted = [metrics(*address) for address in http]
        before = [thread_cpu_seconds(pid) for pid in pids]
        total_before = sum(cpu_seconds(pid) for pid in pids)
        rps, p50, p99 = benchmark(host, port, test, requests, clients, cluster)
        cpu = sum(cpu_seconds(pid) for pid in pids) - total_before
        after = [thread_cpu_seconds(pid) for pid in pids]
        counted_after = [metrics(*address) for address in http]
    finally:
        stop_profilers(profilers)
    # A thread that ended during the run is in the total, not in the split.
    kinds = {kind: sum(end[kind] - start.get(kind, 0.0) for start, end in zip(before, after)) / requests * 10_000
             for kind in after[0]}
    counts = {label: sum(end.get(name, 0.0) - start.get(name, 0.0) for start, end in zip(counted, counted_after))
              / requests for label, name in COUNTS}
    return rps, p50, p99, cpu / requests * 10_000, kinds, counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--requests", type=int, default=20_000)
    parser.add_argument("-c", "--clients", type=int, default=50)
    parser.add_argument("--tests", default="set,get")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--profile", metavar="DIR", help="py-spy each cluster node into DIR while measuring")
    parser.add_argument("--nodes", type=int, default=3, help="cluster nodes (K)")
    parser.add_argument("--node-args", default="", help="more arguments for each cluster node (one string, split on spaces)")
    parser.add_argument("--counts", action="store_true",
                        help="HTTP on client port + 1; print hops, jobs and bus messages per request")
    options = parser.parse_args()
    for tool in ("redis-benchmark", "redis-cli") + (("py-spy",) if options.profile else ()):
        if shutil.which(tool) is None:
            print(f"{tool} is missing", file=sys.stderr)
            return 2
    root = tempfile.mkdtemp(prefix="trio-kv-cluster-bench-")
    processes: list[subprocess.Popen] = []
    try:
        # K cluster nodes and the single node, each on its own address, one port free on all.
        *hosts, single_host = node_hosts(options.nodes + 1)
        port = free_cluster_port([*hosts, single_host])
        seeds = ",".join(f"{host}:{port}" for host in hosts)
        http_args = ["--http-port", str(port + 1)] if options.counts else []
        for index, host in enumerate(hosts):
            processes.append(start(["--host", host, "--port", str(port), "--cluster-enabled", "yes",
                                    "--cluster-seeds", seeds, *http_args,
                                    *options.node_args.split()], os.path.join(root, f"node{index}")))
        single_port = port
        processes.append(start(["--host", single_host, "--port", str(single_port), *http_args],
                               os.path.join(root, "single")))
        for host in hosts:
            wait_for_port(host, port)
        wait_for_port(single_host, single_port)
        deadline = time.monotonic() + 30
        while options.nodes > 1 and not all(members_up(host, port) == options.nodes for host in hosts):
            if time.monotonic() > deadline:
                raise RuntimeError("the cluster did not mesh")
            time.sleep(0.1)
        cluster_pids = [process.pid for process in processes[:-1]]
        single_pids = [processes[-1].pid]
        cluster_http = [(host, port + 1) for host in hosts] if options.counts else []
        single_http = [(single_host, port + 1)] if options.counts else []
        for host, http_port in cluster_http + single_http:
            wait_for_port(host, http_port)
        print(f"# trio_kv cluster ({options.nodes} nodes, {options.node_args or 'N=3 W=2 R=2'}) vs single node: "
              f"-c {options.clients} -n {options.requests}; load average "
              f"{' '.join(open('/proc/loadavg').read().split()[:3])}\n")
        print("| test | cluster rps | single rps | ratio | cluster p50/p99 ms | single p50/p99 ms "
              "| CPU s per 10k: cluster / single (ratio) |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        threads: list[str] = []
        counts: list[str] = []
        for test in options.tests.split(","):
            cluster_runs, single_runs = [], []
            for _ in range(options.repeat):
                cluster_runs.append(measure(cluster_pids, hosts[0], port, test, options.requests, options.clients, True,
                                            options.profile, cluster_http))
                single_runs.append(measure(single_pids, single_host, single_port, test, options.requests,
                                           options.clients, False, http=single_http))
            c = [statistics.median(values) for values in zip(*(run[:4] for run in cluster_runs))]
            s = [statistics.median(values) for values in zip(*(run[:4] for run in single_runs))]
            print(f"| {test} | {c[0]:.0f} | {s[0]:.0f} | {c[0] / s[0]:.2f}x | {c[1]:.2f} / {c[2]:.2f} "
                  f"| {s[1]:.2f} / {s[2]:.2f} | {c[3]:.2f} / {s[3]:.2f} ({c[3] / s[3]:.2f}x) |", flush=True)
            split = []
            for runs in (cluster_runs, single_runs):
                split.append(" / ".join(f"{statistics.median(run[4][kind] for run in runs):.2f}"
                                        for kind in ("loop", "workers", "other")))
            threads.append(f"| {test} | {split[0]} | {split[1]} |")
            if options.counts:
                per = [" / ".join(f"{statistics.median(run[5][label] for run in runs):.3f}" for label, _ in COUNTS)
                       for runs in (cluster_runs, single_runs)]
                counts.append(f"| {test} | {per[0]} | {per[1]} |")
        # Where the CPU goes: the event loop, the store hops' worker threads, the log's commit thread.
        print("\n| test | CPU s per 10k by thread, cluster: loop / workers / other "
              "| single: loop / workers / other |")
        print("| --- | --- | --- |")
        print("\n".join(threads))
        if counts:
            labels = " / ".join(label for label, _ in COUNTS)
            print(f"\n| test | per request, cluster (all nodes): {labels} | single: {labels} |")
            print("| --- | --- | --- |")
            print("\n".join(counts))
    finally:
        stop_all(processes, signal.SIGTERM, 10)
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
