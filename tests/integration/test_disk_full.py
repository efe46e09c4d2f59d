"""Disk faults: a full file system (a real 2 MiB tmpfs, as root) and
injected ENOSPC refuse writes (``-MISCONF ...`` over RESP, ``ERROR writes
refused: ...`` over the line protocol) while reads keep working, and
writes resume by themselves once a write succeeds again; a failed fsync
under ``appendfsync always`` refuses writes for good, saying why. After
each, a restart has every acknowledged write."""

from __future__ import annotations

import errno
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
import os
import subprocess
import time
from pathlib import Path

import pytest
import trio

from trio_kv.config import Config
from trio_kv.server.lifecycle import ServerAddresses, serve
from trio_kv.store.durability import writer as writer_module

from .durable_server import EXIT_SECONDS, Resp, RespError, started, text_command

TMPFS_SIZE = "2m"
FILLER_BYTES = 512 * 1024
VALUE_BYTES = 16 * 1024
MAX_FILL_WRITES = 400
RESUME_SECONDS = 5.0
TEST_SECONDS = 20.0
MISCONF_NO_SPACE = "MISCONF Errors writing to the AOF file: No space left on device"
TEXT_NO_SPACE = b"ERROR writes refused: error writing the log (No space left on device)"


@pytest.fixture
def small_filesystem(tmp_path: Path):
    """A 2 MiB tmpfs mounted for this test (needs root), unmounted after."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(mount_point)],
        capture_output=True, text=True, timeout=10,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], capture_output=True, timeout=10)


def value_of(index: int) -> bytes:
    return (b"%06d" % index) * (VALUE_BYTES // 6)


def wait_until_writes_work(address: tuple[str, int]) -> tuple[bytes, float]:
    """SET probe keys until one is acknowledged; the key and the seconds it took."""
    started_at = time.monotonic()
    with Resp(address) as client:
        attempt = 0
        while True:
            key = b"probe:%d" % attempt
            reply = client.call("SET", key, "back")
            if reply == "OK":
                return key, time.monotonic() - started_at
            assert str(reply).startswith("MISCONF"), reply
            assert time.monotonic() - started_at < RESUME_SECONDS, "writes did not resume"
            attempt += 1
            time.sleep(0.1)


def test_full_disk_refuses_writes_keeps_reads_and_resumes(small_filesystem: Path) -> None:
    data_dir = small_filesystem / "data"
    filler = small_filesystem / "filler"
    filler.write_bytes(os.urandom(FILLER_BYTES))
    acked: dict[bytes, bytes] = {}
    with started(data_dir, "--appendfsync", "always") as server:
        with Resp(server.address) as client:
            assert client.call("SET", "small", "hello") == "OK"
            acked[b"small"] = b"hello"
            refused = None
            for index in range(MAX_FILL_WRITES):
                reply = client.call("SET", b"big:%d" % index, value_of(index))
                if isinstance(reply, RespError):
                    refused = reply
                    break
                assert reply == "OK"
                acked[b"big:%d" % index] = value_of(index)
            assert refused is not None, f"{MAX_FILL_WRITES} writes of {VALUE_BYTES} bytes fit in {TMPFS_SIZE}"
            assert str(refused) == MISCONF_NO_SPACE
            # Refused at once now, over both protocols; reads still served.
            assert str(client.call("SET", "more", "x")) == MISCONF_NO_SPACE
            assert str(client.call("INCR", "counter")) == MISCONF_NO_SPACE
            assert text_command(server.address, b"SET t v") == TEXT_NO_SPACE
            assert client.call("GET", "small") == b"hello"
            assert client.call("GET", "big:0") == value_of(0)
            assert text_command(server.address, b"GET small") == b"VALUE hello"
            info = client.call("INFO", "persistence").decode()
            assert "aof_last_write_status:err\r\n" in info
            assert client.call("EXISTS", "more") == 0
        filler.unlink()
        probe, resume_seconds = wait_until_writes_work(server.address)
        acked[probe] = b"back"
        with Resp(server.address) as client:
            assert client.call("SET", "after", "resume") == "OK"
            acked[b"after"] = b"resume"
            assert "aof_last_write_status:ok\r\n" in client.call("INFO", "persistence").decode()
        assert server.terminate(EXIT_SECONDS) == 0, server.log()

    with started(data_dir) as restarted:
        with Resp(restarted.address) as client:
            keys = sorted(acked)
            assert client.call("MGET", *keys) == [acked[key] for key in keys]
            # Never acknowledged and never applied: refused before running.
            assert client.call("EXISTS", "more", "counter") == 0
    assert resume_seconds < RESUME_SECONDS


# --- injected faults, in-process --------------------------------------------------------------


class FaultyOs:
    """``os`` for the log writer only, with write() failing on demand."""

    def __init__(self) -> None:
        self.write_errno: int | None = None

    def __getattr__(self, name: str):
        return getattr(os, name)

    def write(self, fd: int, data) -> int:
        if self.write_errno is not None:
            raise OSError(self.write_errno, os.strerror(self.write_errno))
        return os.write(fd, data)


async def call(client: Resp, *args) -> object:
    return await trio.to_thread.run_sync(client.call, *args)


@asynccontextmanager
async def serving(data_dir: Path, policy: str) -> AsyncIterator[tuple[ServerAddresses, Resp]]:
    """An in-process server on ``data_dir`` and a connected ``Resp``
    client; both closed (the server shut down) on the way out."""
    config = Config(port=0, redis_port=None, data_dir=str(data_dir), appendfsync=policy)
    async with trio.open_nursery() as nursery:
        server = await nursery.start(functools.partial(serve, config))
        client = await trio.to_thread.run_sync(Resp, server.main)
        try:
            yield server, client
        finally:
            client.close()
            server.shutdown.set()


async def test_injected_enospc_refuses_then_resumes_by_itself(tmp_path: Path, monkeypatch) -> None:
    faulty = FaultyOs()
    monkeypatch.setattr(writer_module, "os", faulty)
    data_dir = tmp_path / "data"
    with trio.fail_after(TEST_SECONDS):
        async with serving(data_dir, "everysec") as (server, client):
            assert await call(client, "SET", "a", "1") == "OK"
            faulty.write_errno = errno.ENOSPC
            # Applied in memory, but its record was not written: refused.
            assert str(await call(client, "SET", "b", "2")) == MISCONF_NO_SPACE
            assert str(await call(client, "SET", "c", "3")) == MISCONF_NO_SPACE
            assert await call(client, "GET", "a") == b"1"
            text = await trio.to_thread.run_sync(text_command, server.main, b"SET t v")
            assert text == TEXT_NO_SPACE
            # A transaction with writes is discarded, as Redis does; the
            # connection is not left inside MULTI.
            assert await call(client, "MULTI") == "OK"
            assert await call(client, "SET", "tx", "1") == "QUEUED"
            aborted = f"EXECABORT Transaction discarded because of: {MISCONF_NO_SPACE}"
            assert str(await call(client, "EXEC")) == aborted
            assert await call(client, "GET", "a") == b"1"
            assert await call(client, "MULTI") == "OK"
            assert await call(client, "GET", "a") == "QUEUED"
            assert await call(client, "EXEC") == [b"1"]
            faulty.write_errno = None
            with trio.fail_after(RESUME_SECONDS):
                while (reply := await call(client, "SET", "d", "4")) != "OK":
                    assert str(reply) == MISCONF_NO_SPACE
                    await trio.sleep(0.05)
        async with serving(data_dir, "everysec") as (server, client):
            assert await call(client, "MGET", "a", "c", "d", "tx", "t") == [b"1", None, b"4", None, None]
            # "b" was applied and stayed buffered, so it reached the log
            # once the disk had room: sent, not acknowledged, allowed.
            assert await call(client, "GET", "b") in (b"2", None)


async def test_failed_fsync_under_always_refuses_writes_for_good(tmp_path: Path, monkeypatch) -> None:
    failing = True

    def datasync(fd: int) -> None:
        if failing:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        os.fdatasync(fd)

    monkeypatch.setattr(writer_module, "_datasync", datasync)
    data_dir = tmp_path / "data"
    reason = f"fsync of {data_dir / 'log.1'} failed (Input/output error); writes refused until a restart"
    with trio.fail_after(TEST_SECONDS):
        failing = False
        async with serving(data_dir, "always") as (server, client):
            assert await call(client, "SET", "a", "1") == "OK"
            failing = True
            assert str(await call(client, "SET", "b", "2")) == f"MISCONF Errors writing to the AOF file: {reason}"
            failing = False  # a later fsync would succeed: it must not be trusted
            await trio.sleep(1.5)  # past a retry interval
            assert str(await call(client, "SET", "c", "3")) == f"MISCONF Errors writing to the AOF file: {reason}"
            text = await trio.to_thread.run_sync(text_command, server.main, b"SET t v")
            assert text == f"ERROR writes refused: error writing the log ({reason})".encode()
            assert await call(client, "GET", "a") == b"1"
            info = (await call(client, "INFO", "persistence")).decode()
            assert "aof_last_write_status:err\r\n" in info
        async with serving(data_dir, "always") as (server, client):
            assert await call(client, "GET", "a") == b"1"
            assert await call(client, "SET", "e", "5") == "OK"  # a restart is the way back
