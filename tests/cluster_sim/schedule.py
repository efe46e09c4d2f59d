"""A seeded fault schedule for the simulated cluster: everything a chaos run
does to the nodes, drawn from one seed before the run starts, so a failing
seed names its whole schedule (``Schedule.lines``) and replays it.

What a schedule holds:

* the run's settings: ``appendfsync`` (``always``, or ``everysec``: an
  acknowledged write may then sit unsynced for up to a second), the disk's
  latency (how long records wait in the log's buffer), the write
  context mode (``local`` or ``read``), and each node's clock offset (the
  hybrid logical clock's ``--debug-clock-offset-ms``): all zero, or skewed
  by up to ``MAX_SKEW_MS`` either way;
* the network's fault rates (``network.Faults``: latency, stalls, resets:
  what "drop" means for a stream) and the chance that a client whose write
  ended in doubt sends the same request again on a new connection (the
  only way a request is *duplicated*: see ``network``'s docstring);
* two timelines of steps, in seconds after the workload starts:
  - partitions, one at a time, each healed before the next: ``isolate``
    one node from the others, or ``cut`` the link between two nodes only
    (both still reach the third: a non-transitive partition);
  - crashes, one node at a time, each restarted on the same data directory
    (the crash keeps a seeded cut of the unsynced log, and a seeded prefix
    of the records being written when the power failed: a torn tail, with
    ``always`` too: ``node.SimNode.crash``). Crashes start at least ``CRASH_SPACING_SECONDS``
    apart: with ``everysec`` a write acknowledged by two replicas is lost
    only if both crash before either fsyncs it, and the design promises
    survival of a minority of crashes, not of two in one second.
  The timelines overlap (a node may crash during a partition).

Rules the schedule keeps: at most one node down at a time; every partition
heals and every crashed node restarts before ``span_seconds``; nothing here
depends on anything but the seed and the hosts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .network import Faults

MAX_SKEW_MS = 400
CRASH_SPACING_SECONDS = 1.2


@dataclass(frozen=True)
class Step:
    at_seconds: float
    # "isolate" (hosts: the victim), "cut" (hosts: the two ends), "heal",
    # "crash" or "restart" (hosts: the node).
    action: str
    hosts: tuple[str, ...] = ()

    def line(self) -> str:
        return f"{self.at_seconds:7.3f}s {self.action} {' '.join(self.hosts)}".rstrip()


@dataclass(frozen=True)
class Schedule:
    seed: int
    appendfsync: str
    write_context: str
    # Per node, in host order.
    clock_offsets_ms: tuple[int, ...]
    faults: Faults
    # Chance that a client retries a write whose outcome is unknown.
    retry_probability: float
    # The longest a log flush (write and fsync) takes: records wait that
    # long in the writer's buffer, where a crash finds them.
    disk_latency_seconds: float
    steps: tuple[Step, ...]
    span_seconds: float

    @property
    def clocks_agree(self) -> bool:
        return len(set(self.clock_offsets_ms)) == 1

    def node_config(self) -> list[dict[str, object]]:
        return [{"debug_clock_offset_ms": offset} for offset in self.clock_offsets_ms]

    def lines(self) -> list[str]:
        faults = self.faults
        return [
            f"seed {self.seed}: appendfsync {self.appendfsync}, write context {self.write_context}, "
            f"clock offsets {list(self.clock_offsets_ms)} ms, retry probability {self.retry_probability:.2f}, "
            f"disk latency up to {self.disk_latency_seconds:.3f}s",
            f"network: latency {faults.latency_min_seconds:.4f}-{faults.latency_max_seconds:.4f}s, "
            f"stall {faults.stall_probability:.4f} (max {faults.stall_max_seconds:.2f}s), "
            f"reset {faults.reset_probability:.4f}",
            *(step.line() for step in self.steps),
        ]


def _partitions(rng: random.Random, hosts: list[str], span_seconds: float) -> list[Step]:
    steps: list[Step] = []
    at = rng.uniform(0.1, 0.8)
    while True:
        # Some longer than the node timeout (2 s): the peers then mark a node down.
        duration = rng.uniform(0.3, 2.5)
        if at + duration > span_seconds:
            return steps
        if rng.random() < 0.6:
            steps.append(Step(at, "isolate", (rng.choice(hosts),)))
        else:
            steps.append(Step(at, "cut", tuple(sorted(rng.sample(hosts, 2)))))
        steps.append(Step(at + duration, "heal"))
        at += duration + rng.uniform(0.2, 1.0)


def _crashes(rng: random.Random, hosts: list[str], span_seconds: float) -> list[Step]:
    steps: list[Step] = []
    at = rng.uniform(0.2, 1.5)
    while True:
        down = rng.uniform(0.2, 2.5)
        if at + down > span_seconds:
            return steps
        victim = rng.choice(hosts)
        steps += [Step(at, "crash", (victim,)), Step(at + down, "restart", (victim,))]
        at += max(down + rng.uniform(0.1, 0.8), CRASH_SPACING_SECONDS)


def draw(seed: int, hosts: list[str], span_seconds: float = 3.5) -> Schedule:
    rng = random.Random(f"{seed}/schedule")
    offsets = (
        tuple(0 for _ in hosts) if rng.random() < 0.5
        else tuple(rng.randint(-MAX_SKEW_MS, MAX_SKEW_MS) for _ in hosts)
    )
    latency_max = rng.uniform(0.001, 0.03)
    faults = Faults(
        latency_min_seconds=latency_max / 10, latency_max_seconds=latency_max,
        stall_probability=rng.choice([0.0, 0.003, 0.01]), stall_max_seconds=rng.uniform(0.05, 0.5),
        reset_probability=rng.choice([0.0, 0.002, 0.008]),
    )
    steps = _partitions(rng, hosts, span_seconds) + _crashes(rng, hosts, span_seconds)
    steps.sort(key=lambda step: step.at_seconds)
    return Schedule(
        seed=seed, appendfsync=rng.choice(["always", "everysec"]), write_context=rng.choice(["local", "read"]),
        clock_offsets_ms=offsets, faults=faults, retry_probability=rng.choice([0.0, 0.5, 1.0]),
        disk_latency_seconds=rng.choice([0.002, 0.02, 0.05]),
        steps=tuple(steps), span_seconds=span_seconds,
    )
