"""SNAPSHOT over a real socket against a real server process (redis-py):
a connection's snapshots are freed when it disconnects, a small
--snapshot-max-undo-bytes expires a snapshot (ERR snapshot expired) while
other connections keep writing, and KEYS stays exact under writes."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import redis

from harness.server_process import ServerProcess

from ..conftest import REPO

WAIT_SECONDS = 10


@pytest.fixture
def server():
    with ServerProcess.start(
        REPO, "--appendonly", "no", "--snapshot-max-undo-bytes", "20000", "--active-expire-interval-seconds", "0.05",
    ) as process:
        yield process


def _client(server: ServerProcess) -> redis.Redis:
    host, port = server.address
    return redis.Redis(host=host, port=port, socket_timeout=WAIT_SECONDS)


def _info(client: redis.Redis) -> dict:
    return client.info("stats")


def test_disconnect_frees_the_connections_snapshots(server):
    watcher = _client(server)
    reader = _client(server)
    watcher.set("a", "1")
    snapshot_id = reader.execute_command("SNAPSHOT")
    watcher.set("a", "2")
    assert reader.execute_command("SNAPSHOT", "GET", snapshot_id, "a") == b"1"
    assert _info(watcher)["snapshots_open"] == 1
    # Another connection cannot read it: ids are the connection's own.
    with pytest.raises(redis.ResponseError, match="no such snapshot"):
        watcher.execute_command("SNAPSHOT", "GET", snapshot_id, "a")
    reader.close()
    deadline = time.monotonic() + WAIT_SECONDS
    while _info(watcher)["snapshots_open"] != 0 or _info(watcher)["snapshot_undo_bytes"] != 0:
        assert time.monotonic() < deadline, _info(watcher)
        time.sleep(0.05)  # the expiry cycle drops the released log


def test_the_undo_bytes_limit_expires_a_snapshot(server):
    writer = _client(server)
    reader = _client(server)
    writer.mset({f"k{i}": "v" * 100 for i in range(200)})
    snapshot_id = reader.execute_command("SNAPSHOT")
    assert reader.execute_command("SNAPSHOT", "GET", snapshot_id, "k1") == b"v" * 100
    writer.mset({f"k{i}": "w" for i in range(200)})  # about 200 * 230 undo bytes
    with pytest.raises(redis.ResponseError, match="snapshot expired"):
        reader.execute_command("SNAPSHOT", "GET", snapshot_id, "k1")
    stats = _info(writer)
    assert stats["snapshots_expired"] == 1 and stats["snapshots_open"] == 0


@pytest.fixture
def roomy_server():
    with ServerProcess.start(REPO, "--appendonly", "no") as process:
        yield process


@pytest.mark.slow  # about 5 s idle, 14 s on the loaded machine
def test_keys_answers_one_point_in_time_while_another_connection_writes(roomy_server):
    """The writer's pipeline (not atomic) runs between KEYS's slices: the
    reply must be the keyspace after some prefix of it, exactly (without
    the snapshot a key present at the start but deleted during the walk
    goes missing while later inserts show up)."""
    writer = _client(roomy_server)
    reader = _client(roomy_server)
    writer.mset({f"key:{i}": "x" for i in range(100_000)})
    start = {f"key:{i}".encode() for i in range(100_000)}
    touched = list(range(0, 100_000, 13))
    pipe = writer.pipeline(transaction=False)
    for i in touched:
        pipe.delete(f"key:{i}")
        pipe.set(f"new:{i}", "y")
    connection = reader.connection_pool.get_connection()
    try:
        connection.send_command("KEYS", "*:*")  # a pattern: smaller units, more slices
        pipe.execute()
        found = connection.read_response()
    finally:
        reader.connection_pool.release(connection)
    assert len(found) == len(set(found))
    _assert_after_some_steps(found, start, [f"key:{i}".encode() for i in touched], [f"new:{i}".encode() for i in touched])


def _assert_after_some_steps(found: list[bytes], start: set[bytes], deleted: list[bytes], added: list[bytes]) -> None:
    """``found`` is ``start`` after the first n steps of a writer whose step
    i deletes ``deleted[i]`` then adds ``added[i]`` (the last step perhaps
    half done), for some n."""
    found_set = set(found)
    steps = len(start - found_set)
    assert start - found_set == set(deleted[:steps])
    assert found_set - start in (set(added[:steps]), set(added[: steps - 1]))


@pytest.fixture
def listing_server():
    with ServerProcess.start(REPO, "--appendonly", "no", "--max-keys-reply", "1000000") as process:
        yield process


def _line_keys(sock: socket.socket) -> list[bytes]:
    """A line-protocol ``KEYS`` reply: ``KEYS <n>``, then n lines."""
    reader = sock.makefile("rb")
    header = reader.readline()
    assert header.startswith(b"KEYS "), header
    return [reader.readline().rstrip(b"\r\n") for _ in range(int(header[5:]))]


@pytest.mark.slow  # about 10 s on the loaded machine
@pytest.mark.parametrize("wire", ["resp", "line"])
def test_keys_prefix_on_the_index_answers_one_point_in_time(listing_server, wire):
    """``KEYS key:*`` (RESP) and ``KEYS key:`` (line protocol) walk the
    sorted index in slices while a writer runs between them: each of its
    steps deletes a key early in byte order (walked already) and adds one
    past every other (walked last). The reply must be the keyspace after
    some prefix of the writer's steps, exactly (a walk of the live index
    keeps the deleted keys it passed and shows the keys added after them)."""
    writer = _client(listing_server)
    count = 100_000
    writer.mset({f"key:{i:06d}": "x" for i in range(count)})
    # A key with a TTL: the index walk then checks expiry key by key, so it
    # takes several slices (keys only, it is fast enough to take one).
    writer.set("other", "x", ex=3600)
    start = {f"key:{i:06d}".encode() for i in range(count)}
    touched = list(range(0, count, 7))
    started = threading.Event()
    stop = threading.Event()

    def write() -> None:
        # Small pipelines, one after the other: the steps apply in order.
        for at in range(0, len(touched), 20):
            if at >= 100:
                started.set()
            if stop.is_set():
                return
            pipe = writer.pipeline(transaction=False)
            for i in touched[at : at + 20]:
                pipe.delete(f"key:{i:06d}")
                pipe.set(f"key:~{i:06d}", "y")
            pipe.execute()

    requeued = _info(writer)["dispatcher_slices_requeued"]
    thread = threading.Thread(target=write)
    thread.start()
    try:
        assert started.wait(WAIT_SECONDS)
        if wire == "resp":
            found = _client(listing_server).keys("key:*")
        else:
            with socket.create_connection(listing_server.address, timeout=WAIT_SECONDS) as sock:
                sock.sendall(b"KEYS key:\n")
                found = _line_keys(sock)
    finally:
        stop.set()
        thread.join(WAIT_SECONDS)
    assert _info(writer)["dispatcher_slices_requeued"] > requeued  # it did run in slices
    assert found == sorted(found) and len(found) == len(set(found))
    _assert_after_some_steps(
        found, start, [f"key:{i:06d}".encode() for i in touched], [f"key:~{i:06d}".encode() for i in touched]
    )
