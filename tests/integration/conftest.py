"""Fixtures: a real server started in-process on port 0.

``await nursery.start(serve, ...)`` returns once the listeners are bound, so
tests never race the server and never use a fixed port.
"""

from __future__ import annotations

import functools

import pytest
import trio

from trio_kv.config import Config
from trio_kv.server.lifecycle import ServerAddresses, serve
from trio_kv.store.engine import Store
from trio_kv.store.keyspace import Keyspace

from ..fake_clock import FakeClock


async def start_server(nursery: trio.Nursery, **overrides) -> ServerAddresses:
    """A server on free ports; memory only unless the test turns the log on
    (with its own data_dir)."""
    overrides.setdefault("appendonly", False)
    return await nursery.start(functools.partial(serve, Config(port=0, redis_port=0, **overrides)))


@pytest.fixture
async def server(nursery) -> ServerAddresses:
    return await start_server(nursery)


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def clocked_server(nursery, fake_clock) -> ServerAddresses:
    config = Config(port=0, redis_port=0, active_expire_interval_seconds=0.01, appendonly=False)
    store = Store(config, keyspace=Keyspace(clock_ms=fake_clock))
    return await nursery.start(functools.partial(serve, config, store=store))
