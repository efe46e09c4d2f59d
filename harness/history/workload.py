"""A workload driver: client threads issuing random SET/GET/DEL against a list of nodes.

Each client is one thread with its own redis-py connection (one request at a
time: a *process* in the history) to ``nodes[i % len(nodes)]``; against a
single node every client talks to it, against a cluster they spread over the
nodes and any node coordinates any key. Every operation goes through the
``Recorder``; values are unique (``c<client>:<sequence>``), keys are drawn
from a small key space (``<prefix>k0`` .. ``k<key_count - 1>``) so clients
collide.

Rules the driver keeps, because the checkers depend on them:

* redis-py's own retries are off (``Retry(NoBackoff(), 0)``): a retried SET
  could apply twice inside one recorded interval, which is not what the
  history says.
* The connection is opened *before* an operation is recorded; a node that
  refuses connections produces no operations, only waiting (and, with more
  than one node, the client moves to the next node). So ``fail`` in the
  history always means an error reply.
* Errors are classified by ``outcomes.classify``: a timeout or a reset is
  ``unknown``, never ``fail``. After an unknown outcome the client drops its
  connection (its state is unknown) and reconnects.
* Every wait is bounded: socket timeouts, the run's duration, joins.
* ``fresh_key_fraction``: that share of writes go to keys written once,
  so the survival checker sees their loss even when the run goes on
  writing (a write to a shared key can be superseded by a later one).
* ``move_every_ops=k`` (a cluster): after every k operations the client
  drops its connection and moves to another node (seeded), so one session
  spans coordinators (the session checker's read-your-writes and monotonic
  reads across nodes).

``run_workload(config, faults)`` runs the clients and the fault schedule
(faults.py) for ``config.duration_s`` seconds, and longer if the schedule is
not finished, then returns the ``History`` (final reads are added by
final_state.read_final_state).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .faults import Fault, run_schedule
from .model import DELETE, OK, READ, UNKNOWN, WRITE, History
from .outcomes import classify
from .recorder import Recorder
from .siblings_reply import sibling_values

Address = tuple[str, int]
JOIN_SECONDS = 15.0


def parse_nodes(text: str) -> list[Address]:
    """``host:port,host:port`` as addresses."""
    nodes = []
    for item in text.split(","):
        host, _, port = item.strip().rpartition(":")
        nodes.append((host or "127.0.0.1", int(port)))
    return nodes


def node_name(address: Address) -> str:
    return f"{address[0]}:{address[1]}"


@dataclass
class WorkloadConfig:
    nodes: list[Address]
    clients: int = 4
    key_count: int = 10
    duration_s: float = 3.0
    write_fraction: float = 0.45
    delete_fraction: float = 0.1
    seed: int = 0
    key_prefix: str = "hist:"
    # Per request: past it the outcome is unknown.
    socket_timeout_s: float = 2.0
    # Pause after an error or a refused connection, so a dead node is not hammered.
    backoff_s: float = 0.02
    # Each client stops after this many operations (None: only the duration).
    max_ops_per_client: int | None = None
    # Reads with TKV.SIBLINGS (cluster mode) instead of GET.
    read_siblings: bool = False
    # Sent as TKV.CONSISTENCY on every new connection (cluster mode), e.g. "QUORUM".
    consistency: str | None = None
    # Move to another node (seeded) after every this many operations (0: only when a node refuses).
    move_every_ops: int = 0
    # This share of writes go to a fresh key written once (``<prefix>u<client>-<sequence>``): a later
    # write can never supersede it, so its loss always shows (the final read must read those keys too).
    fresh_key_fraction: float = 0.0
    extra_meta: dict[str, object] = field(default_factory=dict)

    def keys(self) -> list[str]:
        return [f"{self.key_prefix}k{index}" for index in range(self.key_count)]

    def meta(self) -> dict[str, object]:
        meta = asdict(self)
        meta["nodes"] = [node_name(node) for node in self.nodes]
        extra = meta.pop("extra_meta")
        return {**meta, **extra}


class _Client:
    """One client thread: one connection at a time, one request at a time."""

    def __init__(self, index: int, config: WorkloadConfig, recorder: Recorder, stop: threading.Event) -> None:
        self.process = f"c{index}"
        self.config = config
        self.recorder = recorder
        self.stop = stop
        self.rng = random.Random(f"{config.seed}-{index}")
        self.node_index = index % len(config.nodes)
        self.connection: redis.Redis | None = None
        self.sequence = 0
        self.operations = 0
        # An exception the driver did not expect (a bug, not a server fault): re-raised by run_workload.
        self.crash: BaseException | None = None
        self.thread = threading.Thread(target=self.run, name=f"history-{self.process}", daemon=True)

    def _drop_connection(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def _connect(self) -> redis.Redis | None:
        """A connected client, or None after a refused attempt (the caller waits and retries)."""
        if self.connection is not None:
            return self.connection
        host, port = self.config.nodes[self.node_index]
        client = None
        try:
            # A single-connection client connects in its constructor.
            client = redis.Redis(
                host=host, port=port, socket_timeout=self.config.socket_timeout_s,
                socket_connect_timeout=self.config.socket_timeout_s, retry=Retry(NoBackoff(), 0),
                single_connection_client=True,
            )
            if self.config.consistency is not None:
                client.execute_command("TKV.CONSISTENCY", self.config.consistency)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
            if client is not None:
                client.close()
            # A cluster: try the next node; one node: the same one again.
            self.node_index = (self.node_index + 1) % len(self.config.nodes)
            return None
        self.connection = client
        return client

    def _next_operation(self) -> tuple[str, str, str | None]:
        key = self.config.keys()[self.rng.randrange(self.config.key_count)]
        draw = self.rng.random()
        if draw < self.config.write_fraction:
            self.sequence += 1
            if self.config.fresh_key_fraction > 0 and self.rng.random() < self.config.fresh_key_fraction:
                key = f"{self.config.key_prefix}u{self.process}-{self.sequence}"
            return WRITE, key, f"{self.process}:{self.sequence}"
        if draw < self.config.write_fraction + self.config.delete_fraction:
            return DELETE, key, None
        return READ, key, None

    def run(self) -> None:
        try:
            self._run()
        except Exception as error:  # noqa: BLE001 - kept and re-raised by run_workload
            self.crash = error
            self._drop_connection()

    def _run(self) -> None:
        limit = self.config.max_ops_per_client
        while not self.stop.is_set() and (limit is None or self.operations < limit):
            client = self._connect()
            if client is None:
                self.stop.wait(self.config.backoff_s)
                continue
            kind, key, value = self._next_operation()
            node = node_name(self.config.nodes[self.node_index])
            pending = self.recorder.invoke(self.process, kind, key, value, node)
            self.operations += 1
            try:
                if kind == WRITE:
                    client.set(key, value)
                    result = None
                elif kind == DELETE:
                    result = int(client.delete(key))
                elif self.config.read_siblings:
                    result = sibling_values(client.execute_command("TKV.SIBLINGS", key))
                else:
                    raw = client.get(key)
                    result = None if raw is None else raw.decode()
            except (redis.exceptions.RedisError, OSError) as error:
                outcome, text = classify(error)
                self.recorder.complete(pending, outcome, error=text)
                if outcome == UNKNOWN:
                    self._drop_connection()
                self._maybe_move()
                self.stop.wait(self.config.backoff_s)
                continue
            self.recorder.complete(pending, OK, result)
            self._maybe_move()
        self._drop_connection()

    def _maybe_move(self) -> None:
        every = self.config.move_every_ops
        if every > 0 and len(self.config.nodes) > 1 and self.operations % every == 0:
            self._drop_connection()
            step = 1 + self.rng.randrange(len(self.config.nodes) - 1)
            self.node_index = (self.node_index + step) % len(self.config.nodes)


def run_workload(config: WorkloadConfig, faults: Sequence[Fault] = (), recorder: Recorder | None = None) -> History:
    """Run the clients and the fault schedule; the history (without final reads)."""
    recorder = recorder or Recorder()
    stop = threading.Event()
    clients = [_Client(index, config, recorder, stop) for index in range(config.clients)]
    started_s = time.monotonic()
    for client in clients:
        client.thread.start()
    schedule_errors: list[BaseException] = []
    schedule = threading.Thread(target=run_schedule, args=(faults, recorder, started_s, stop, schedule_errors))
    schedule.start()
    try:
        deadline = started_s + config.duration_s
        while time.monotonic() < deadline and not all(not c.thread.is_alive() for c in clients):
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        schedule.join()
    finally:
        stop.set()
        schedule.join(JOIN_SECONDS)
        for client in clients:
            client.thread.join(JOIN_SECONDS)
    stuck = [client.process for client in clients if client.thread.is_alive()]
    if stuck or schedule.is_alive():
        raise RuntimeError(f"workload threads still running after {JOIN_SECONDS} s: {stuck}")
    crashed = [client.crash for client in clients if client.crash is not None]
    if crashed:
        raise RuntimeError(f"a client crashed: {crashed[0]!r}") from crashed[0]
    if schedule_errors:
        raise RuntimeError(f"a fault failed: {schedule_errors[0]!r}") from schedule_errors[0]
    return recorder.history(config.meta())
