#!/usr/bin/env python3
"""The ring claim (trio_kv/cluster/ring.py): how long it takes and how many
partitions move when a member joins, next to a plain round robin.

A script that prints numbers (Markdown on stdout); it asserts nothing. In
process, no sockets. For each member count M in --members (default 3..10),
with --partitions P (64) and --replicas N (3):

- claim time: median of --repeat runs of ``claim`` on M members;
- movement M -> M+1: primaries (partitions whose first member changed) and
  replicas ((partition, member) pairs that are new: copies to make), for the
  members 127.0.0.1:7001.. (what ``trio-kv cluster dev`` starts) and as the
  mean and the worst over --samples random member sets, each against its
  minimum (what the newcomer must hold: its first positions, its places);
  a leave M+1 -> M is the same pair of rings read backwards and moves the
  same;
- the same movement for round robin over the sorted members (the placeholder
  claim this one replaced).

Examples:
    .venv/bin/python bench/cluster_claim.py
    .venv/bin/python bench/cluster_claim.py --partitions 256 --replicas 2 --members 3,5,8
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trio_kv.cluster.ring import Member, Movement, Ring, claim, movement  # noqa: E402

ClaimFunction = Callable[[Sequence[Member], int, int], Ring]


def real_claim(members: Sequence[Member], replicas: int, partitions: int) -> Ring:
    return claim(members, replicas=replicas, partition_count=partitions)


def round_robin(members: Sequence[Member], replicas: int, partitions: int) -> Ring:
    ordered = tuple(sorted(set(members)))
    width = min(replicas, len(ordered))
    lists = tuple(tuple(ordered[(p + i) % len(ordered)] for i in range(width)) for p in range(partitions))
    return Ring(epoch=1, members=ordered, partition_count=partitions, preference_lists=lists)


def minimum(ring: Ring, newcomer: Member) -> Movement:
    """What any claim must move to give ``newcomer`` its places in ``ring``."""
    return Movement(
        primaries=sum(chosen[0] == newcomer for chosen in ring.preference_lists),
        replicas=sum(newcomer in chosen for chosen in ring.preference_lists),
    )


def join(function: ClaimFunction, members: Sequence[Member], replicas: int, partitions: int) -> tuple[Movement, Movement]:
    """(moved, minimum) when the last of ``members`` joins the others."""
    before = function(members[:-1], replicas, partitions)
    after = function(members, replicas, partitions)
    return movement(before, after), minimum(after, members[-1])


def random_members(rng: random.Random, count: int) -> list[Member]:
    chosen: set[Member] = set()
    while len(chosen) < count:
        chosen.add(Member(f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}", rng.randrange(1024, 55000)))
    members = sorted(chosen)
    rng.shuffle(members)
    return members


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", default="3,4,5,6,7,8,9,10", help="member counts M (joins go M -> M+1)")
    parser.add_argument("--partitions", type=int, default=64)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--samples", type=int, default=200, help="random member sets per M")
    parser.add_argument("--repeat", type=int, default=5, help="claim runs per time")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    counts = [int(text) for text in args.members.split(",")]
    rng = random.Random(args.seed)

    print(f"## claim: {args.partitions} partitions, N={args.replicas}, joins M -> M+1\n")
    print("moved / minimum. dev: members 127.0.0.1:7001..; mean and worst: over "
          f"{args.samples} random member sets; rr: round robin over the sorted members (dev members)\n")
    print("| M | claim ms | primaries dev | primaries mean | primaries worst | replicas dev | replicas mean | replicas worst "
          "| rr primaries | rr replicas |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for count in counts:
        dev = [Member("127.0.0.1", 7001 + index) for index in range(count + 1)]
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            claim(dev[:count], replicas=args.replicas, partition_count=args.partitions)
            times.append(time.perf_counter() - started)
        dev_moved, dev_min = join(real_claim, dev, args.replicas, args.partitions)
        rr_moved, rr_min = join(round_robin, dev, args.replicas, args.partitions)
        samples = [join(real_claim, random_members(rng, count + 1), args.replicas, args.partitions) for _ in range(args.samples)]
        mean_primaries = statistics.mean(moved.primaries for moved, _ in samples)
        mean_primaries_min = statistics.mean(least.primaries for _, least in samples)
        mean_replicas = statistics.mean(moved.replicas for moved, _ in samples)
        mean_replicas_min = statistics.mean(least.replicas for _, least in samples)
        worst_primaries = max(samples, key=lambda pair: pair[0].primaries / pair[1].primaries)
        worst_replicas = max(samples, key=lambda pair: pair[0].replicas / pair[1].replicas)
        print(
            f"| {count} | {statistics.median(times) * 1000:.2f} "
            f"| {dev_moved.primaries}/{dev_min.primaries} | {mean_primaries:.1f}/{mean_primaries_min:.1f} "
            f"| {worst_primaries[0].primaries}/{worst_primaries[1].primaries} "
            f"| {dev_moved.replicas}/{dev_min.replicas} | {mean_replicas:.1f}/{mean_replicas_min:.1f} "
            f"| {worst_replicas[0].replicas}/{worst_replicas[1].replicas} "
            f"| {rr_moved.primaries}/{rr_min.primaries} | {rr_moved.replicas}/{rr_min.replicas} |"
        )


if __name__ == "__main__":
    main()
