"""``server/cluster/internal_jobs.py``: the jobs the cluster makes for
itself (a read's repair here, anti-entropy's local side, a peer's forwarded
requests) are stamped with the clock client jobs use, ``time.perf_counter()``,
so the engine's latency stats (now - received_at) mean the same for them.
Trio's clock has an offset of its own (random in production, near 0 under a
mock clock): a job stamped with ``trio.current_time()`` records a latency
off by that offset."""

from __future__ import annotations

import time
from types import SimpleNamespace

from trio_kv.cluster.batch import Levels
from trio_kv.commands.peer.state import PeerState, Stage
from trio_kv.commands.redis import REDIS_COMMANDS
from trio_kv.store.engine import Job
from trio_kv.server.cluster.anti_entropy import AntiEntropy
from trio_kv.server.cluster.forwarding import BusSide
from trio_kv.server.cluster.internal_jobs import internal_job, internal_session
from trio_kv.server.cluster.read_quorum import ReadQuorum

from .cluster_store import cluster_session


class CapturingDispatcher:
    """A dispatcher that records each submitted job and answers it with nothing."""

    def __init__(self) -> None:
        self.jobs: list[Job] = []

    async def submit(self, job: Job, on_applied=None) -> None:
        self.jobs.append(job)
        job.replies = [None] * len(job.requests)


def received_now(job: Job, before: float) -> bool:
    return before <= job.received_at <= time.perf_counter()


async def test_a_read_repair_here_is_stamped_with_the_client_clock(autojump_clock) -> None:
    store_session = cluster_session()
    dispatcher = CapturingDispatcher()
    reads = ReadQuorum(SimpleNamespace(links={}), store_session.store, store_session.control,  # type: ignore[arg-type]
                       dispatcher, {}, 1.0)  # type: ignore[arg-type]
    before = time.perf_counter()
    await reads._repair_here([[b"TKV.REPL.PUT", b"k", b"clock"]])
    (job,) = dispatcher.jobs
    assert received_now(job, before)
    assert job.session.authenticated and job.session.address == "cluster"


async def test_anti_entropy_local_side_is_stamped_with_the_client_clock(autojump_clock) -> None:
    store_session = cluster_session()
    dispatcher = CapturingDispatcher()
    exchanger = AntiEntropy(SimpleNamespace(links={}), store_session.store, store_session.control,  # type: ignore[arg-type]
                            dispatcher, interval_seconds=1.0)  # type: ignore[arg-type]
    before = time.perf_counter()
    await exchanger._local([[b"TKV.REPL.GET", b"k"]])
    (job,) = dispatcher.jobs
    assert received_now(job, before)
    assert job.session.authenticated and job.session.address == "anti-entropy"


async def test_forwarded_requests_keep_the_bus_requests_received_at(autojump_clock) -> None:
    store_session = cluster_session()
    store_session.peer = PeerState(SimpleNamespace(secret=None), stage=Stage.DONE)  # type: ignore[arg-type]
    store_session.address = "10.0.0.2:17001"
    forwarded_jobs: list[Job] = []

    async def client_job(job: Job, level: Levels, *, forwarded: bool = False) -> None:
        assert forwarded
        forwarded_jobs.append(job)
        job.replies = [b"OK"] * len(job.requests)

    side = BusSide(store_session.store, store_session.control, CapturingDispatcher(), client_job)  # type: ignore[arg-type]
    received_at = time.perf_counter() - 0.25
    bus_job = Job(store_session, REDIS_COMMANDS, [[b"TKV.FORWARD", b"resp:3", b"QUORUM", b"SET", b"k", b"v"]],
                  received_at)
    await side.bus_job(bus_job)
    (job,) = forwarded_jobs
    assert job.received_at == received_at
    assert job.requests == [[b"SET", b"k", b"v"]]
    session = job.session
    assert session is not store_session and session.authenticated and session.protocol == 3 == job.protocol
    assert session.address == "10.0.0.2:17001"


def test_internal_job_defaults() -> None:
    session = internal_session(cluster_session().store, None, address="x", protocol=3)  # type: ignore[arg-type]
    before = time.perf_counter()
    job = internal_job(session, REDIS_COMMANDS, [[b"PING"]])
    assert received_now(job, before) and job.protocol == 3
    assert internal_job(session, REDIS_COMMANDS, [[b"PING"]], received_at=1.5, protocol=2).received_at == 1.5
    other = internal_session(session.store, None, address="x")  # type: ignore[arg-type]
    assert other.id != session.id and other.protocol == 2
