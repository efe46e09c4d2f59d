"""Long commands in slices, end to end: another client is answered while a
``KEYS *`` on 200,000 keys is still running, a cancelled connection leaves
between slices, and SIGTERM with slow commands pipelined exits promptly.

Ordering checks, not timings: "answered before KEYS finished" is shown by
a write pipelined right after KEYS on the same connection, which runs only
once KEYS has finished.
"""

from __future__ import annotations

import functools
import signal
import socket
import time

import trio

from trio_kv.commands.redis import REDIS_COMMANDS
from trio_kv.commands.session import Session
from trio_kv.commands.wire import RESP
from trio_kv.config import Config
from trio_kv.server.dispatch import Dispatcher
from trio_kv.server.lifecycle import serve
from trio_kv.store.engine import Job, Store
from trio_kv.store.local_control import LocalControl

from .client import LineClient
from .test_lifecycle import SERVER, spawn, started  # noqa: F401  (spawn is a fixture)

KEYS = 200_000


def _filled_store(config: Config) -> Store:
    store = Store(config)
    keyspace = store.keyspace
    for i in range(KEYS):
        keyspace.set(b"key:%d" % i, b"v")
    return store


def _resp(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(arg), arg) for arg in args)


async def _line(client: LineClient) -> bytes:
    return (await client.read_line()).rstrip(b"\r")


def _job(store: Store, client_id: int, *requests: list[bytes]) -> Job:
    session = Session(client_id, store, LocalControl(store), wire=RESP)
    return Job(session, REDIS_COMMANDS, list(requests), time.perf_counter())


async def test_other_clients_are_answered_while_keys_runs(nursery):
    config = Config(port=0, redis_port=0, appendonly=False)
    addresses = await nursery.start(functools.partial(serve, config, store=_filled_store(config)))
    with trio.fail_after(60):
        slow = await LineClient.connect(addresses.main)
        other = await LineClient.connect(addresses.main)
        # One send, one job: "started" is visible to others only after the
        # job's first hop, "done" only once KEYS has finished.
        await slow.send(_resp(b"SET", b"started", b"1") + _resp(b"KEYS", b"*") + _resp(b"SET", b"done", b"1"))
        while True:
            await other.send(_resp(b"GET", b"started"))
            if await _line(other) == b"$1":
                assert await _line(other) == b"1"
                break
        # KEYS is in flight now: PING and GET are answered, and "done" is
        # still unset, so they ran before KEYS finished.
        await other.send(_resp(b"PING") + _resp(b"SET", b"x", b"y") + _resp(b"GET", b"done"))
        assert [await _line(other) for _ in range(3)] == [b"+PONG", b"+OK", b"$-1"]
        # KEYS' own reply is whole and exact (no key changed during it
        # except "x", which may or may not be there).
        assert await _line(slow) == b"+OK"
        header = await _line(slow)
        count = int(header[1:])
        assert count in (KEYS + 1, KEYS + 2)
        keys = set()
        for _ in range(count):
            await _line(slow)
            keys.add(await _line(slow))
        assert len(keys) == count and b"started" in keys and b"key:123456" in keys
        assert await _line(slow) == b"+OK"
        stats = addresses.control.dispatcher_statistics()
        assert stats["slices_requeued"] > 0


async def test_a_cancelled_keys_leaves_between_slices(nursery):
    store = _filled_store(Config(appendonly=False))
    dispatcher = Dispatcher(store, workers=1)
    await nursery.start(dispatcher.run)
    job = _job(store, 1, [b"KEYS", b"*"], [b"SET", b"after", b"1"])
    with trio.fail_after(30):
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as inner:
                inner.start_soon(dispatcher.submit, job)
                while dispatcher.statistics()["slices_requeued"] == 0:
                    await trio.sleep(0.001)
                scope.cancel()
        # Abandoned between slices: no reply, nothing after KEYS ran, no lock held.
        assert job.replies == []
        assert store.keyspace.get(b"after") is None
        # Anything else still runs.
        other = _job(store, 2, [b"DBSIZE"])
        await dispatcher.submit(other)
        assert other.replies == [KEYS]
    lock = store.lock.statistics()
    assert lock["readers_active"] == 0 and not lock["writer_active"]


def _load(address: tuple[str, int], keys: int) -> None:
    with socket.create_connection(address, timeout=30) as sock:
        batch = 1000
        commands = []
        for start in range(0, keys, batch):
            args = [b"MSET"]
            for i in range(start, min(keys, start + batch)):
                args += [b"key:%d" % i, b"v"]
            commands.append(_resp(*args))
        sock.sendall(b"".join(commands))
        expected = b"+OK\r\n" * len(commands)
        received = b""
        while len(received) < len(expected):
            chunk = sock.recv(65536)
            assert chunk, received[-100:]
            received += chunk
        assert received == expected


def test_sigterm_with_slow_commands_pipelined_exits_within_grace_and_a_slice(spawn):  # noqa: F811
    # Ten KEYS * and ten SCAN COUNT 1e9 on 200,000 keys: several seconds of
    # work, all read before the signal. Unsliced, the whole pipeline ran on
    # the worker before the server could exit.
    server, address = started(spawn, "--shutdown-grace-seconds", "0.5", "--appendonly", "no")
    _load(address, KEYS)
    client = socket.create_connection(address, timeout=30)
    client.sendall((_resp(b"KEYS", b"*") + _resp(b"SCAN", b"0", b"COUNT", b"1000000000")) * 10)
    # Not a timing assertion: the pause only has to let the server read the
    # pipeline (one small send), which then takes many seconds to run. No
    # event shows it: unsliced, every other client waited for the pipeline.
    time.sleep(1.0)
    signalled = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    status = server.wait(10.0)
    assert status == 0, server.log()
    # Generous bound (a loaded machine); the work pipelined takes far longer.
    assert time.monotonic() - signalled < 4.0
    client.close()
