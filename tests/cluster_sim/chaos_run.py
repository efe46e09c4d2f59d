"""One seeded chaos run of the simulated cluster: a workload of several
clients under a seeded fault schedule (``schedule``), then heal, restart,
anti-entropy, and the final state of every key on every node.

The clients (``c0``, ``c1``, ...: one connection and one request at a time
each, moving to another node now and then and after every error) send:

* on register keys ``r:*``: SET of a value unique to the run
  (``c<process>:<sequence>``, the shape ``harness.history`` reads), GET,
  TKV.SIBLINGS, DEL (a SET is often followed by a GET of its key, on
  whichever node the client is on by then: read-your-writes; siblings a
  TKV.SIBLINGS shows (one or more) are resolved next by TKV.PUTCTX with their context and
  a new unique value);
* on append keys ``a:*``: APPEND of a unique token and ``;``, DEL;
* on counter keys ``n:*``: INCR;

each at a connection consistency level (TKV.CONSISTENCY: mostly QUORUM,
some ONE and ALL). Every request is recorded with its outcome, as
``harness.history.outcomes`` rules: ``ok``; ``fail`` only for a definite
refusal (an error reply other than NOREPLICAS, or a request the link never
sent); ``unknown`` for NOREPLICAS, a reset after sending, or a timeout. A
write whose outcome is unknown may be sent again on a new connection to
another node (the schedule's retry probability): the duplicated request of
a real client, recorded as one operation with both attempts' nodes.

After the workload: the network heals and loses its faults, every node is
up, and the run waits (on the mock clock, bounded) until every node's
Tictac tree roots agree (anti-entropy at a 1 s interval), then reads every
key's siblings straight from each node's store, and every key with GET at
ALL through a client.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from pathlib import Path

import trio

from harness.history.siblings_reply import sibling_values
from trio_kv.protocol.replies import Error, SimpleString
from trio_kv.server.cluster.link import LinkError

from . import determinism
from .cluster import SimCluster, SimClient, hosts_of, wait_until
from .network import Faults
from .node import SimNode
from .schedule import Schedule, draw

NODES = 3
PROCESSES = 4
OPS_PER_PROCESS = 18
REGISTER_KEYS = [f"r:{index}" for index in range(3)]
APPEND_KEYS = [f"a:{index}" for index in range(2)]
COUNTER_KEYS = [f"n:{index}" for index in range(2)]
KEYS = REGISTER_KEYS + APPEND_KEYS + COUNTER_KEYS
LEVELS = ["QUORUM", "ONE", "ALL"]
LEVEL_WEIGHTS = [0.7, 0.15, 0.15]
MOVE_PROBABILITY = 0.35
READ_BACK_PROBABILITY = 0.5
# A client gives up on a reply after this long (recorded as unknown, and a
# problem for ``chaos_checks``): a coordinator answers within its write
# timeout (2 s) for the gathering of a context and again for the acks.
REQUEST_TIMEOUT_SECONDS = 6.0
CONNECT_TIMEOUT_SECONDS = 1.0
AAE_INTERVAL_SECONDS = 1.0
CONVERGE_WITHIN_SECONDS = 30.0
LINKS_BACK_WITHIN_SECONDS = 10.0

OK = "ok"
FAIL = "fail"
UNKNOWN = "unknown"
WRITES = ("SET", "PUTCTX", "DEL", "APPEND", "INCR")


@dataclass
class Record:
    """One client request (with its retry, if any)."""

    index: int
    process: str
    command: str
    key: str
    # SET's value or APPEND's token; None otherwise.
    argument: str | None
    level: str
    # Every node an attempt went to, as "host:port#life" (the node's life:
    # a crash starts a new actor, see ``checks``), first attempt first.
    nodes: list[str]
    invoke_s: float
    complete_s: float
    outcome: str
    # GET: the value or None; TKV.SIBLINGS: the values; DEL/APPEND/INCR: the integer.
    reply: object = None
    error: str | None = None

    def line(self) -> str:
        return (
            f"#{self.index} {self.process} {self.command} {self.key} {self.argument or ''} @{self.level} "
            f"{','.join(self.nodes)} [{self.invoke_s:.4f}, {self.complete_s:.4f}] {self.outcome} "
            f"{self.reply!r}{' ' + self.error if self.error else ''}"
        )


@dataclass
class Final:
    """One key on one node after the run."""

    node: str
    key: str
    # The values present (siblings; tombstones left out).
    values: list[str]
    # The versions, comparable across nodes: (HLC, actor, value) per sibling.
    versions: list[str]
    # What GET shows here: the first sibling (None: absent or a tombstone).
    winner: str | None = None


@dataclass
class ChaosRun:
    schedule: Schedule
    records: list[Record] = field(default_factory=list)
    finals: list[Final] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    # Mock seconds from the heal to matching tree roots (None: not within the bound).
    converged_seconds: float | None = None
    # After convergence, each key as GET at ALL answers it (through node 1).
    all_reads: dict[str, object] = field(default_factory=dict)

    def digest(self) -> str:
        text = "\n".join([
            *self.log, *(record.line() for record in self.records), *map(repr, self.finals), repr(self.all_reads),
        ])
        return hashlib.sha256(text.encode()).hexdigest()


class _Process:
    def __init__(self, run: ChaosRun, cluster: SimCluster, name: str, number: int, counter: list[int]) -> None:
        self.run = run
        self.cluster = cluster
        self.name = name
        self.host = f"10.0.1.{number + 1}"
        self.rng = random.Random(f"{run.schedule.seed}/{name}")
        self.counter = counter
        self.client: SimClient | None = None
        self.node: SimNode | None = None
        self.life = 0
        self.level = "QUORUM"
        # The register this client SET last (None: read back already).
        self.last_written: str | None = None
        # A register and the context of the siblings a TKV.SIBLINGS showed: resolved next.
        self.resolve: tuple[str, bytes] | None = None

    async def _close(self) -> None:
        if self.client is not None:
            await self.client.close()
        self.client = None

    async def _connect(self, nursery: trio.Nursery, level: str, avoid: SimNode | None) -> None:
        """A connection at ``level`` to some node other than ``avoid``
        (any node: one that is down refuses, and another is tried)."""
        await self._close()
        while True:
            choices = [node for node in self.cluster.nodes if node is not avoid]
            node = self.rng.choice(choices)
            try:
                with trio.fail_after(CONNECT_TIMEOUT_SECONDS):
                    client = await self.cluster.client(nursery, node, host=self.host)
                    life = node.lives
                    if level != "QUORUM":
                        reply = await client.call(b"TKV.CONSISTENCY", level.encode())
                        if reply != SimpleString("OK"):
                            raise LinkError(f"TKV.CONSISTENCY answered {reply!r}")
            except (OSError, LinkError, trio.TooSlowError):
                await trio.sleep(0.05)
                continue
            self.client, self.node, self.life, self.level = client, node, life, level
            return

    async def _attempt(self, nursery: trio.Nursery, level: str, request: list[bytes]) -> tuple[str, object, str | None, str]:
        """(outcome, reply, error, node) of one attempt on the current connection."""
        assert self.client is not None and self.node is not None
        where = f"{self.node.member.address}#{self.life}"
        try:
            with trio.fail_after(REQUEST_TIMEOUT_SECONDS):
                reply = await self.client.call(*request)
        except trio.TooSlowError:
            return UNKNOWN, None, "timeout", where
        except LinkError as raised:
            return (UNKNOWN if raised.sent else FAIL), None, f"{type(raised).__name__}: {raised}", where
        if isinstance(reply, Error):
            return (UNKNOWN if reply.message.startswith("NOREPLICAS") else FAIL), None, reply.message, where
        return OK, reply, None, where

    def _choose(self, sequence: int) -> tuple[str, str, str | None, list[bytes]]:
        rng = self.rng
        value = f"{self.name}:{sequence}"
        if self.resolve is not None:
            # Siblings seen: write one value with their context (Dynamo's reconciliation).
            (key, context), self.resolve = self.resolve, None
            return "PUTCTX", key, value, [b"TKV.PUTCTX", key.encode(), context, value.encode()]
        if self.last_written is not None and rng.random() < READ_BACK_PROBABILITY:
            # Read back what this client just wrote (often elsewhere: MOVE_PROBABILITY).
            key, self.last_written = self.last_written, None
            return "GET", key, None, [b"GET", key.encode()]
        roll = rng.random()
        if roll < 0.35:
            key = self.last_written = rng.choice(REGISTER_KEYS)
            return "SET", key, value, [b"SET", key.encode(), value.encode()]
        if roll < 0.55:
            key = rng.choice(REGISTER_KEYS)
            return "GET", key, None, [b"GET", key.encode()]
        if roll < 0.62:
            key = rng.choice(REGISTER_KEYS)
            return "SIBLINGS", key, None, [b"TKV.SIBLINGS", key.encode()]
        if roll < 0.70:
            key = rng.choice(REGISTER_KEYS + APPEND_KEYS)
            return "DEL", key, None, [b"DEL", key.encode()]
        if roll < 0.85:
            key = rng.choice(APPEND_KEYS)
            return "APPEND", key, value, [b"APPEND", key.encode(), f"{value};".encode()]
        key = rng.choice(COUNTER_KEYS)
        return "INCR", key, None, [b"INCR", key.encode()]

    async def work(self, nursery: trio.Nursery) -> None:
        rng = self.rng
        for sequence in range(OPS_PER_PROCESS):
            await trio.sleep(rng.uniform(0, 0.12))
            command, key, argument, request = self._choose(sequence)
            level = rng.choices(LEVELS, LEVEL_WEIGHTS)[0]
            if self.client is None or level != self.level or rng.random() < MOVE_PROBABILITY:
                await self._connect(nursery, level, avoid=self.node if rng.random() < 0.5 else None)
            index = self.counter[0]
            self.counter[0] += 1
            invoke_s = trio.current_time()
            outcome, reply, error, where = await self._attempt(nursery, level, request)
            nodes = [where]
            if outcome == UNKNOWN and command in WRITES and rng.random() < self.run.schedule.retry_probability:
                # The same request again, elsewhere: the peers may see it twice.
                await self._connect(nursery, level, avoid=self.node)
                again, reply, error, where = await self._attempt(nursery, level, request)
                nodes.append(where)
                outcome = UNKNOWN if again == FAIL else again
            if outcome == OK:
                if command == "SIBLINGS" and isinstance(reply, list) and len(reply) == 2 and isinstance(reply[0], bytes):
                    if sibling_values(reply):
                        self.resolve = (key, reply[0])
                reply = _decoded(command, reply)
            self.run.records.append(Record(
                index, self.name, command, key, argument, level, nodes, invoke_s, trio.current_time(), outcome,
                reply, error,
            ))
            if outcome != OK:
                await self._close()
        await self._close()


def _decoded(command: str, reply: object) -> object:
    if command == "SIBLINGS":
        return sibling_values(reply)
    if isinstance(reply, bytes):
        return reply.decode()
    if isinstance(reply, SimpleString):
        return str(reply)
    return reply


async def _apply(cluster: SimCluster, step_action: str, hosts: tuple[str, ...], nursery: trio.Nursery) -> None:
    by_host = {node.member.host: node for node in cluster.nodes}
    network = cluster.network
    if step_action == "isolate":
        network.partition(list(hosts), [host for host in by_host if host not in hosts])
    elif step_action == "cut":
        network.partition([hosts[0]], [hosts[1]])
    elif step_action == "heal":
        network.heal()
    elif step_action == "crash":
        by_host[hosts[0]].crash(torn_write=True)
    elif step_action == "restart":
        await by_host[hosts[0]].start(nursery)
    else:
        raise ValueError(step_action)


async def _faults(cluster: SimCluster, schedule: Schedule, nursery: trio.Nursery) -> None:
    started = trio.current_time()
    for step in schedule.steps:
        await trio.sleep_until(started + step.at_seconds)
        cluster.record(f"schedule: {step.line()}")
        await _apply(cluster, step.action, step.hosts, nursery)


def _final(node: SimNode, key: str) -> Final:
    running = node.running
    assert running is not None
    versions = running.store.versions
    assert versions is not None
    _, siblings = versions.siblings(key.encode())
    values: list[str] = []
    shown: list[str] = []
    winner = None if not siblings or siblings[0][1] is None else siblings[0][1].data.decode()
    for version, state in siblings:
        data = None if state is None else state.data.decode()
        shown.append(f"{version!r}={data!r}")
        if data is not None:
            values.append(data)
    return Final(node.member.address, key, sorted(values), sorted(shown), winner)


def _links_connected(cluster: SimCluster) -> bool:
    return all(
        statistics.state == "connected"
        for node in cluster.nodes if node.running is not None
        for statistics in node.running.cluster.link_statistics()
    )


def _roots(node: SimNode) -> list[int]:
    running = node.running
    assert running is not None and running.store.versions is not None
    return [tree.root for tree in running.store.versions.trees.trees]


def chaos_run(seed: int, data_root: Path) -> ChaosRun:
    hosts = hosts_of(NODES)
    schedule = draw(seed, hosts)
    run = ChaosRun(schedule)
    cluster = SimCluster(
        seed, data_root, count=NODES, faults=schedule.faults, node_config=schedule.node_config(),
        appendfsync=schedule.appendfsync, cluster_write_context=schedule.write_context,
        cluster_aae_interval_seconds=AAE_INTERVAL_SECONDS, disk_latency_seconds=schedule.disk_latency_seconds,
    )

    async def main() -> None:
        for line in schedule.lines():
            cluster.record(f"schedule: {line}")
        async with trio.open_nursery() as nursery:
            await cluster.start_all(nursery)
            await wait_until(cluster.all_up)
            counter = [0]
            async with trio.open_nursery() as work:
                work.start_soon(_faults, cluster, schedule, nursery)
                for number in range(PROCESSES):
                    work.start_soon(_Process(run, cluster, f"c{number}", number, counter).work, nursery)
            # The schedule heals and restarts everything before its span ends.
            cluster.network.heal()
            cluster.network.faults = Faults()
            await wait_until(cluster.all_up)
            healed = trio.current_time()
            cluster.record("workload done, network healed")
            with trio.move_on_after(CONVERGE_WITHIN_SECONDS):
                await wait_until(lambda: len({tuple(_roots(node)) for node in cluster.nodes}) == 1)
                run.converged_seconds = trio.current_time() - healed
            cluster.record(f"converged after {run.converged_seconds}")
            run.finals = [_final(node, key) for node in cluster.nodes for key in KEYS]
            # A bus connection reset just before the heal may still be in its
            # reconnect backoff (up to 1 s), and a coordinator refuses a read at
            # ALL at once while a link is down, member up or not (see
            # test_sim_link_backoff): read once every link is back.
            await wait_until(lambda: _links_connected(cluster), seconds=LINKS_BACK_WITHIN_SECONDS)
            reader = await cluster.client(nursery, cluster.nodes[0], host="10.0.2.1")
            with trio.fail_after(REQUEST_TIMEOUT_SECONDS * len(KEYS)):
                await reader.call(b"TKV.CONSISTENCY", b"ALL")
                for key in KEYS:
                    reply = await reader.call(b"GET", key.encode())
                    run.all_reads[key] = reply.decode() if isinstance(reply, bytes) else reply
                    cluster.record(f"GET {key} at ALL: {run.all_reads[key]!r}")
            nursery.cancel_scope.cancel()

    determinism.run(seed, main)
    run.log = cluster.log
    run.records.sort(key=lambda record: record.index)
    return run
