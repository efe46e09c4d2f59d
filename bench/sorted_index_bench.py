#!/usr/bin/env python3
"""The sorted key index (issue 12 item 1): what ordered reads cost and what
the index costs everything else. Prints numbers (Markdown on stdout,
progress on stderr); asserts nothing.

Parts (all by default; ``--parts structure,engine,server,throughput``):

* ``structure``: the index alone, the packed ``SortedKeyIndex`` against the
  ``sortedcontainers.SortedList`` it replaced, in the same run, ``--keys``
  keys ``key:%012d`` (16 bytes): bytes per key (tracemalloc, the
  structure's own copy of the keys included; the SortedList's shares the
  caller's key objects, so it is also given with the key objects counted,
  as it would cost beside a table that packs its keys), CPU microseconds
  per add of a new key (random keys, and a run of increasing keys), per
  discard of a present key, and p50/p99 of a walk of 1,000 keys from a
  random start.

* ``engine``: in process, a Store with ``--keys`` keys ``key:%012d``:
  ``run_batch`` of one ``KRANGE [key:X + LIMIT 0 1000`` (keys only, and
  WITHVALUES) at random start keys, p50/p99 of the engine call; the
  index's bytes per key (tracemalloc, its own packed copy of the keys included);
  the cost of a new key's SET with and without the index (keyspace.set
  of fresh keys, alternating blocks).
* ``server``: a trio_kv process (``--appendonly no``) loaded with
  ``--keys`` keys: end-to-end KRANGE of 1,000 keys over RESP (keys only
  and WITHVALUES) and line-protocol ``KEYS <prefix>`` with 100 matches,
  p50/p99 of the round trip on one connection; then the engine's own
  per-command p50/p99 from the line protocol's LATENCY.
* ``throughput``: ``redis-benchmark -t set,get -r 1000000`` (random keys:
  SETs keep creating keys, so the index keeps inserting) against trio_kv
  with ``--sorted-index yes`` and ``no`` and a redis-server, in turns,
  ``--repeat`` rounds; medians, and each trio_kv's ratio to redis-server.

Examples:
    .venv/bin/python bench/sorted_index_bench.py --keys 1000000
    .venv/bin/python bench/sorted_index_bench.py --parts throughput --repeat 5 -n 200000
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import random
import socket
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from contextlib import ExitStack
from itertools import islice
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from redis_compare import encode, ensure_redis_tools, load_keys, machine_line, recv  # noqa: E402
from redis_compare import start_redis_in_memory, start_trio_kv_in_memory  # noqa: E402

RANGE_KEYS = 1000
QUERIES = 300


def _percentiles_ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return ordered[len(ordered) // 2] * 1000, ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000


def _note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- structure -----------------------------------------------------------------


def _cpu_us_per(count: int, run: Callable[[], object]) -> float:
    began = time.thread_time()  # CPU time: other work on the machine does not count
    run()
    return (time.thread_time() - began) / count * 1e6


def structure(args: argparse.Namespace) -> None:
    from sortedcontainers import SortedList

    from trio_kv.store.sorted_index import SortedKeyIndex

    count = args.keys
    keys = [b"key:%012d" % (n * 2) for n in range(count)]  # even numbers: the odd ones are new keys
    rng = random.Random(5)
    fresh = [b"key:%012d" % (rng.randrange(count) * 2 + 1) for _ in range(args.ops)]
    fresh = list(dict.fromkeys(fresh))
    run_start = rng.randrange(count - args.ops)
    run = [b"key:%012d" % ((run_start + n) * 2 + 1) for n in range(args.ops)]
    gone = rng.sample(keys, args.ops)
    key_objects = sum(map(sys.getsizeof, keys)) + 8 * count  # the bytes objects and a list slot each
    kinds: dict[str, Callable[[list[bytes]], Any]] = {"SortedList (old)": SortedList, "SortedKeyIndex (new)": SortedKeyIndex}
    rows = []
    for round_number in range(args.repeat):
        for name, make in kinds.items() if round_number % 2 == 0 else reversed(kinds.items()):
            _note(f"structure: {name}, round {round_number + 1}")
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            index = make(keys)
            memory = (tracemalloc.get_traced_memory()[0] - before) / count
            tracemalloc.stop()
            add_random = _cpu_us_per(len(fresh), lambda: list(map(index.add, fresh)))
            discard_fresh = _cpu_us_per(len(fresh), lambda: list(map(index.discard, fresh)))
            add_run = _cpu_us_per(len(run), lambda: list(map(index.add, run)))
            for key in run:
                index.discard(key)
            discard = _cpu_us_per(len(gone), lambda: list(map(index.discard, gone)))
            for key in gone:
                index.add(key)
            walks = []
            for _ in range(QUERIES):
                start = keys[rng.randrange(count - RANGE_KEYS)]
                began = time.thread_time()
                walked = list(islice(index.irange(start, None), RANGE_KEYS))
                walks.append(time.thread_time() - began)
                assert len(walked) == RANGE_KEYS and walked[0] == start
            assert len(index) == count
            rows.append((name, memory, add_random, add_run, discard, discard_fresh, *_percentiles_ms(walks)))
            del index
    print(f"\n## The index alone, {count:,} keys of 16 bytes ({args.ops:,} ops each, CPU time, "
          f"median of {args.repeat} rounds)\n")
    print("| structure | bytes/key | add new key (random) us | add (increasing run) us | discard us | "
          "discard of just-added us | walk 1,000 keys p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for name in kinds:
        mine = [row[1:] for row in rows if row[0] == name]
        medians = [statistics.median(column) for column in zip(*mine)]
        memory = f"{medians[0]:.2f}"
        if name.startswith("SortedList"):
            memory += f" (+ key objects: {medians[0] + key_objects / count:.2f})"
        print(f"| {name} | {memory} | " + " | ".join(f"{value:.3f}" for value in medians[1:]) + " |")


# --- engine ------------------------------------------------------------------


def engine(args: argparse.Namespace) -> None:
    from trio_kv.commands.redis import REDIS_COMMANDS
    from trio_kv.commands.session import Session
    from trio_kv.commands.wire import RESP
    from trio_kv.config import Config
    from trio_kv.store.engine import Job, Store, run_batch
    from trio_kv.store.local_control import LocalControl
    from trio_kv.store.sorted_index import SortedKeyIndex

    keys = [b"key:%012d" % n for n in range(args.keys)]
    _note(f"engine: building a store of {args.keys} keys")
    store = Store(Config(appendonly=False))
    started = time.perf_counter()
    for key in keys:
        store.keyspace.set(key, b"v%02d" % (len(key) % 100))
    _note(f"  loaded in {time.perf_counter() - started:.1f} s")
    session = Session(1, store, LocalControl(store), wire=RESP)
    rng = random.Random(12)
    print(f"\n## Engine, {args.keys:,} keys (run_batch of one command)\n")
    print("| command | p50 ms | p99 ms | CPU p50 ms | CPU p99 ms |")
    print("|---|---|---|---|---|")
    for label, extra in (("KRANGE 1,000 keys", []), ("KRANGE 1,000 keys WITHVALUES", [b"WITHVALUES"])):
        samples, cpu_samples = [], []
        for _ in range(QUERIES):
            start = keys[rng.randrange(len(keys) - RANGE_KEYS)]
            job = Job(session, REDIS_COMMANDS, [[b"KRANGE", b"[" + start, b"+", b"LIMIT", b"0", b"1000", *extra]],
                      time.perf_counter())
            began, began_cpu = time.perf_counter(), time.thread_time()
            run_batch(store, [job])
            samples.append(time.perf_counter() - began)
            cpu_samples.append(time.thread_time() - began_cpu)
            assert job.sliced is None and len(job.replies[0]) == RANGE_KEYS * (2 if extra else 1)
        p50, p99 = _percentiles_ms(samples)
        cpu_p50, cpu_p99 = _percentiles_ms(cpu_samples)
        print(f"| {label} | {p50:.3f} | {p99:.3f} | {cpu_p50:.3f} | {cpu_p99:.3f} |")

    # Bytes per key of the index, its own packed copy of the keys included.
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    index = SortedKeyIndex(keys)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del index
    print(f"\nIndex bytes per key (tracemalloc, {args.keys:,} keys): {(after - before) / args.keys:.2f}")

    # A new key's SET with and without the index, alternating blocks of fresh keys.
    costs: dict[bool, list[float]] = {True: [], False: []}
    for round_number in range(3):
        for with_index in (True, False) if round_number % 2 == 0 else (False, True):
            target = Store(Config(appendonly=False, sorted_index=with_index))
            for key in keys[: args.keys // 2]:
                target.keyspace.set(key, b"v")
            fresh = [b"new:%d:%012d" % (round_number, rng.randrange(10**12)) for _ in range(50_000)]
            began = time.thread_time()  # CPU time: other work on the machine does not count
            for key in fresh:
                target.keyspace.set(key, b"v")
            costs[with_index].append((time.thread_time() - began) / len(fresh) * 1e6)
            del target
    on, off = statistics.median(costs[True]), statistics.median(costs[False])
    print(f"\nkeyspace.set of a new key ({args.keys // 2:,} keys stored): {on:.2f} us with the index, "
          f"{off:.2f} us without (CPU time, median of 3 alternating blocks of 50,000 each); overwrites: no index work")


# --- server ------------------------------------------------------------------


class _Reader:
    """A RESP reader that never copies what it has not read yet (a position
    into the buffer), so parsing a 2,000-item reply costs O(bytes)."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.buffer = b""
        self.at = 0

    def _more(self) -> None:
        self.buffer = self.buffer[self.at :] + recv(self.conn)
        self.at = 0

    def line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n", self.at)) < 0:
            self._more()
        line = self.buffer[self.at : end]
        self.at = end + 2
        return line

    def exactly(self, count: int) -> bytes:
        while len(self.buffer) - self.at < count:
            self._more()
        data = self.buffer[self.at : self.at + count]
        self.at += count
        return data

    def array(self) -> list[bytes | None]:
        head = self.line()
        if not head.startswith(b"*"):
            raise RuntimeError(f"not an array: {head!r}")
        items: list[bytes | None] = []
        for _ in range(int(head[1:])):
            size = int(self.line()[1:])
            items.append(None if size < 0 else self.exactly(size + 2)[:-2])
        return items


def _text_lines(conn: socket.socket, buffer: bytearray, count: int) -> list[bytes]:
    lines: list[bytes] = []
    while len(lines) < count:
        end = buffer.find(b"\n")
        if end < 0:
            buffer += recv(conn)
            continue
        lines.append(bytes(buffer[:end]))
        del buffer[: end + 1]
    return lines


def server(args: argparse.Namespace) -> None:
    with ExitStack() as stack:
        _pid, port = start_trio_kv_in_memory(stack, [])
        resp = stack.enter_context(socket.create_connection(("127.0.0.1", port)))
        _note(f"server: loading {args.keys} keys")
        started = time.perf_counter()
        load_keys(resp, args.keys)
        _note(f"  loaded in {time.perf_counter() - started:.1f} s")
        reader = _Reader(resp)
        rng = random.Random(7)
        print(f"\n## End to end, {args.keys:,} keys (one connection, round trip)\n")
        print("| request | p50 ms | p99 ms |")
        print("|---|---|---|")
        for label, extra in (("KRANGE 1,000 keys", []), ("KRANGE 1,000 keys WITHVALUES", ["WITHVALUES"])):
            samples = []
            for _ in range(QUERIES):
                start = b"key:%012d" % rng.randrange(args.keys - RANGE_KEYS)
                began = time.perf_counter()
                resp.sendall(encode("KRANGE", b"[" + start, "+", "LIMIT", "0", "1000", *extra))
                items = reader.array()
                samples.append(time.perf_counter() - began)
                assert len(items) == RANGE_KEYS * (2 if extra else 1)
            p50, p99 = _percentiles_ms(samples)
            print(f"| {label} | {p50:.3f} | {p99:.3f} |")
        text = stack.enter_context(socket.create_connection(("127.0.0.1", port)))
        buffer = bytearray()
        samples = []
        for _ in range(QUERIES):
            # key:%012d: the prefix of 10 digits has exactly 100 keys.
            prefix = b"key:%010d" % rng.randrange(args.keys // 100)
            began = time.perf_counter()
            text.sendall(b"KEYS " + prefix + b"\n")
            head = _text_lines(text, buffer, 1)[0]
            assert head == b"KEYS 100", head
            _text_lines(text, buffer, 100)
            samples.append(time.perf_counter() - began)
        p50, p99 = _percentiles_ms(samples)
        print(f"| line KEYS prefix (100 matches) | {p50:.3f} | {p99:.3f} |")
        text.sendall(b"LATENCY\n")
        rows = []
        while True:
            line = _text_lines(text, buffer, 1)[0]
            if line == b"END":
                break
            rows.append(line.decode())
        print("\nEngine time per command (the line protocol's LATENCY, microseconds):\n")
        for row in rows:
            if row.split()[0] in ("krange", "keys"):
                print(f"    {row}")


# --- throughput ----------------------------------------------------------------


def run_benchmark(port: int, test: str, pipeline: int, args: argparse.Namespace) -> dict[str, float]:
    """redis-benchmark on random keys out of a million (-r): SETs keep creating keys."""
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", str(args.c), "-n", str(args.n),
            "-t", test, "-P", str(pipeline), "-r", "1000000", "--csv"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    rows = list(csv.DictReader(line for line in done.stdout.splitlines() if line.startswith('"')))
    if done.returncode != 0 or not rows:
        raise RuntimeError(f"{argv} failed:\n{done.stdout}{done.stderr}")
    return {"rps": float(rows[0]["rps"])}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def throughput(args: argparse.Namespace) -> None:
    """Requests per second, and the server's CPU time per request (user +
    system, from /proc: far less sensitive than rps to other work on a
    shared machine, so the fairer on/off comparison)."""
    ensure_redis_tools()
    rps: dict[tuple[str, str], list[float]] = {}
    cpu_us: dict[tuple[str, str], list[float]] = {}
    with ExitStack() as stack:
        servers = {
            "trio_kv index on": start_trio_kv_in_memory(stack, ["--sorted-index", "yes"]),
            "trio_kv index off": start_trio_kv_in_memory(stack, ["--sorted-index", "no"]),
            "redis-server": start_redis_in_memory(stack),
        }
        order = list(servers)
        for round_number in range(args.repeat):
            # Alternate which trio_kv goes first, so drift hits both alike.
            for name in order if round_number % 2 == 0 else [order[1], order[0], order[2]]:
                pid, port = servers[name]
                for test in ("set", "get"):
                    before = _cpu_seconds(pid)
                    result = run_benchmark(port, test, args.pipeline, args)
                    used = _cpu_seconds(pid) - before
                    rps.setdefault((name, test), []).append(result["rps"])
                    cpu_us.setdefault((name, test), []).append(used / args.n * 1e6)
                    _note(f"  round {round_number + 1} {name} {test}: {result['rps']:.0f} rps, "
                          f"{used / args.n * 1e6:.1f} us CPU a request")
    print(f"\n## SET/GET, index on and off (redis-benchmark -c {args.c} -n {args.n} -P {args.pipeline} "
          f"-r 1000000, median of {args.repeat})\n")
    print("| server | SET rps | GET rps | SET vs redis | GET vs redis | SET CPU us/req | GET CPU us/req |")
    print("|---|---|---|---|---|---|---|")
    median = {key: statistics.median(values) for key, values in rps.items()}
    cpu = {key: statistics.median(values) for key, values in cpu_us.items()}
    for name in servers:
        print(f"| {name} | {median[name, 'set']:.0f} | {median[name, 'get']:.0f} | "
              f"{median[name, 'set'] / median['redis-server', 'set']:.3f} | "
              f"{median[name, 'get'] / median['redis-server', 'get']:.3f} | "
              f"{cpu[name, 'set']:.1f} | {cpu[name, 'get']:.1f} |")
    on, off = "trio_kv index on", "trio_kv index off"
    print(f"\nIndex on / off: SET rps {median[on, 'set'] / median[off, 'set']:.3f}, "
          f"GET rps {median[on, 'get'] / median[off, 'get']:.3f}; "
          f"SET CPU {cpu[on, 'set'] / cpu[off, 'set']:.3f}, GET CPU {cpu[on, 'get'] / cpu[off, 'get']:.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="structure,engine,server,throughput")
    parser.add_argument("--ops", type=int, default=200_000, help="adds and discards a round (structure)")
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("-n", type=int, default=100_000)
    parser.add_argument("-c", type=int, default=50)
    parser.add_argument("--pipeline", type=int, default=1)
    args = parser.parse_args()
    print(f"# Sorted key index benchmark\n\n{machine_line()}")
    parts = args.parts.split(",")
    if "structure" in parts:
        structure(args)
    if "engine" in parts:
        engine(args)
    if "server" in parts:
        server(args)
    if "throughput" in parts:
        throughput(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
