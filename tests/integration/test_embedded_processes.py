"""The embedded library with real processes: the data directory's lock
between processes (library and library, server and library, both ways),
one log format for both shells (a server reads what the library wrote and
the other way round), and crash recovery: a process killed with SIGKILL
while writing loses no write whose call had returned (``appendfsync
always``, and ``everysec`` and ``no``, whose writes are written to the
kernel before they return: embedded/sync_log.py says why)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import trio_kv

from ..conftest import REPO
from .durable_server import EXIT_SECONDS, Resp, launched, started

SUBPROCESS_SECONDS = 30.0


def library_process(code: str, *args: str) -> subprocess.Popen[str]:
    """A Python process running ``code`` (sys.argv[1:] = args), stdout piped line by line."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
    )


HOLDER = """
    import sys, trio_kv
    db = trio_kv.open(sys.argv[1])
    db.put(b"holder", b"here")
    print("ready", flush=True)
    sys.stdin.readline()  # until the test lets go
    db.close()
    print("closed", flush=True)
"""

TRY_OPEN = """
    import sys, trio_kv
    try:
        trio_kv.open(sys.argv[1])
    except trio_kv.DataDirInUse as error:
        print("in use:", error, flush=True)
        sys.exit(3)
    print("opened", flush=True)
"""


def wait_line(process: subprocess.Popen[str], expected: str) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()  # the process prints within seconds or dies (EOF)
    assert line.startswith(expected), (line, process.stderr.read() if process.poll() is not None else "")
    return line


def test_a_second_library_process_is_refused_until_the_first_closes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    holder = library_process(HOLDER, str(data))
    try:
        wait_line(holder, "ready")
        second = subprocess.run([sys.executable, "-c", textwrap.dedent(TRY_OPEN), str(data)], cwd=REPO,
                                capture_output=True, text=True, timeout=SUBPROCESS_SECONDS)
        assert second.returncode == 3, second.stderr
        assert f"in use: {data} is in use" in second.stdout
        with pytest.raises(trio_kv.DataDirInUse, match=str(data)):
            trio_kv.open(data)
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        wait_line(holder, "closed")
        assert holder.wait(SUBPROCESS_SECONDS) == 0
        with trio_kv.open(data) as db:
            assert db.get(b"holder") == b"here"
    finally:
        holder.kill()
        holder.wait(SUBPROCESS_SECONDS)


def test_a_server_refuses_a_directory_the_library_holds_and_the_other_way_round(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with trio_kv.open(data) as db:
        db.put(b"from-library", b"1")
        with launched(data) as server:
            assert server.wait_listening() is None
            assert server.wait(EXIT_SECONDS) == 1, server.log()
            assert f"{data} is in use by another trio_kv process" in server.log()
    with started(data) as server:
        with Resp(server.address) as client:
            assert client.call("GET", "from-library") == b"1"  # the server read the library's log
            assert client.call("SET", "from-server", "2") == "OK"
        with pytest.raises(trio_kv.DataDirInUse, match=str(data)):
            trio_kv.open(data)
        second = subprocess.run([sys.executable, "-c", textwrap.dedent(TRY_OPEN), str(data)], cwd=REPO,
                                capture_output=True, text=True, timeout=SUBPROCESS_SECONDS)
        assert second.returncode == 3, second.stderr
        assert server.terminate(EXIT_SECONDS) == 0, server.log()
    with trio_kv.open(data) as db:
        assert (db.get(b"from-library"), db.get(b"from-server")) == (b"1", b"2")


WRITER = """
    import sys, trio_kv
    db = trio_kv.open(sys.argv[1], appendfsync=sys.argv[2])
    index = 0
    while True:
        key = b"key:%d" % index
        if index % 3 == 2:
            db.batch([trio_kv.Put(key, b"batch-%d" % index), trio_kv.Delete(b"key:%d" % (index - 1))])
        else:
            db.put(key, b"value-%d" % index)
        print(index, flush=True)  # only once the call returned
        index += 1
"""


@pytest.mark.parametrize("policy", ["always", "everysec", "no"])
def test_kill_9_loses_no_write_that_returned(tmp_path: Path, policy: str) -> None:
    data = tmp_path / "data"
    writer = library_process(WRITER, str(data), policy)
    acknowledged = -1
    try:
        assert writer.stdout is not None
        deadline = time.monotonic() + SUBPROCESS_SECONDS
        # Enough writes to cross a few records, then a kill at no particular point.
        while acknowledged < 300 and time.monotonic() < deadline:
            line = writer.stdout.readline()
            assert line, writer.stderr.read() if writer.stderr else ""
            acknowledged = int(line)
        os.kill(writer.pid, signal.SIGKILL)
        assert writer.wait(SUBPROCESS_SECONDS) == -signal.SIGKILL
        # Lines the writer printed before it died are acknowledged too.
        for line in writer.stdout:
            acknowledged = int(line)
    finally:
        writer.kill()
        writer.wait(SUBPROCESS_SECONDS)
    assert acknowledged >= 300
    with trio_kv.open(data) as db:
        state = {index: db.get(b"key:%d" % index) for index in range(acknowledged + 3)}
        # Every returned write, and at most the one in flight at the kill.
        keys = len(state)
        assert state in (writes_applied(acknowledged + 1, keys), writes_applied(acknowledged + 2, keys))
        assert len(db) == sum(value is not None for value in state.values())


def writes_applied(count: int, keys: int) -> dict[int, bytes | None]:
    """What WRITER's first ``count`` writes leave, for keys 0..keys-1."""
    state: dict[int, bytes | None] = dict.fromkeys(range(keys))
    for index in range(count):
        if index % 3 == 2:
            state[index], state[index - 1] = b"batch-%d" % index, None
        else:
            state[index] = b"value-%d" % index
    return state
