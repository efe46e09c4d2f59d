"""Stores in cluster mode for tests: a session on a store with versions
(store/versions.py), on a fake wall clock that the keyspace and the hybrid
logical clock share, so TTLs and timestamps are exact; and the same with
the append-only log, as the server wires it."""

from __future__ import annotations

from pathlib import Path

from trio_kv.cluster import dvvset, key_state
from trio_kv.cluster.dvvset import Clock
from trio_kv.cluster.hlc import HybridClock
from trio_kv.commands.session import Session
from trio_kv.commands.wire import RESP
from trio_kv.config import Config
from trio_kv.store.durability.append_log import Persistence
from trio_kv.store.durability.apply import load_keyspace
from trio_kv.store.durability.data_dir import DataDir
from trio_kv.store.engine import Store
from trio_kv.store.keyspace import Keyspace
from trio_kv.store.local_control import LocalControl
from trio_kv.store.versions import Versions

from ..fake_clock import FakeClock

NODE_A = b"a" * 20
NODE_B = b"b" * 20
NODE_C = b"c" * 20


def cluster_session(actor: bytes = NODE_A, clock: FakeClock | None = None, config: Config | None = None) -> Session:
    """A RESP session on a fresh cluster-mode store whose actor is ``actor``."""
    clock = FakeClock() if clock is None else clock
    store = Store(config or Config(), keyspace=Keyspace(clock_ms=clock), actor_id=actor, hlc=HybridClock(clock))
    return Session(1, store, LocalControl(store), wire=RESP)


def versions_of(session: Session) -> Versions:
    versions = session.store.versions
    assert versions is not None
    return versions


def clock_of(session: Session, key: bytes) -> Clock:
    """The key's clock in wire form, decoded (the empty clock if none)."""
    packed = versions_of(session).clock_of(key)
    return dvvset.EMPTY if packed is None else dvvset.decode(packed)


def states(session: Session, key: bytes) -> list[key_state.KeyState | None]:
    """Every sibling's state, winner first."""
    return [state for _, state in versions_of(session).siblings(key)[1]]


def counter(session: Session, key: bytes, actor: bytes | None = None) -> int:
    """How many dots ``actor`` (the session's own by default) issued for ``key``."""
    actor = versions_of(session).actor if actor is None else actor
    return dict(dvvset.join(clock_of(session, key))).get(actor, 0)


def open_durable(directory: Path, actor: bytes = NODE_A, clock: FakeClock | None = None) -> Session:
    """A cluster session whose store recovered ``directory`` and logs to it
    (appendfsync always), as ``server.log_commit.load_and_open_log`` wires it."""
    session = cluster_session(actor, clock)
    store = session.store
    data_dir = DataDir(directory)
    load_keyspace(data_dir, store.keyspace, versions=store.versions)
    persistence = Persistence(data_dir, "always", rewrite_min_bytes=1 << 40, rewrite_percentage=0)
    store.keyspace.effects.subscribe(persistence.log)
    store.persistence = persistence
    return session


def close_durable(session: Session) -> None:
    persistence = session.store.persistence
    assert persistence is not None
    persistence.close()
