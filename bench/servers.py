"""The servers the benchmarks measure: trio_kv and redis-server processes
(stdlib only), each stopped when the caller's ``ExitStack`` closes, however
the run ends.

* ``start_trio_kv(stack, *flags)`` is the harness's ``ServerProcess``
  (harness/server_process.py): ``<repo>/.venv/bin/python -m trio_kv --port
  0``, its address from the ``listening on`` line, stderr drained by a
  thread, SIGTERM then SIGKILL at the end. The benchmarks, the harness and
  the tests start trio_kv with that one piece of code.
* ``start_trio_ceiling(stack)`` runs ``bench/trio_ceiling.py`` (the
  minimal Trio RESP server) under the same interpreter, the same way.
* ``start_redis(stack, data_dir, *flags)`` runs ``redis-server`` on a free
  loopback port without RDB snapshots (``--save ""``); it is up once it
  answers PING.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# harness/ is a directory of scripts (no __init__.py): importable as a
# namespace package from the repository root.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from harness.server_process import START_SECONDS, STOP_SECONDS, ServerProcess, server_python  # noqa: E402

PING = b"*1\r\n$4\r\nPING\r\n"
PONG = b"+PONG\r\n"


def trio_kv_python() -> str:
    """The interpreter trio_kv runs under (the project's virtualenv when there is one)."""
    return server_python(REPO)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_trio_kv(stack: ExitStack, *flags: str, data_dir: Path | None = None, repo: Path = REPO) -> ServerProcess:
    """trio_kv listening on a free port (``address``; other listeners'
    lines through ``wait_for_log``). Without ``data_dir``, a fresh temporary
    one. ``repo``: run the trio_kv of another source tree (an A/B run; it
    runs under this tree's interpreter if it has no .venv of its own)."""
    if repo != REPO and not (repo / ".venv").exists():
        argv = [trio_kv_python(), "-m", "trio_kv", "--port", "0", *flags]
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-trio-kv-")))
        argv += ["--data-dir", str(data_dir)]
        server = stack.enter_context(ServerProcess(argv, cwd=repo))
        if server.wait_listening() is None:
            raise RuntimeError(f"trio_kv from {repo} did not start:\n{server.log()}")
        return server
    return stack.enter_context(ServerProcess.start(repo, *flags, data_dir=data_dir))


def start_trio_ceiling(stack: ExitStack) -> ServerProcess:
    """bench/trio_ceiling.py listening on a free port (``address``)."""
    argv = [trio_kv_python(), str(REPO / "bench" / "trio_ceiling.py"), "--port", "0"]
    server = stack.enter_context(ServerProcess(argv, cwd=REPO))
    if server.wait_listening() is None:
        raise RuntimeError(f"trio_ceiling.py did not start:\n{server.log()}")
    return server


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _answers_ping(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
        conn.sendall(PING)
        reply = b""
        while len(reply) < len(PONG) and (chunk := conn.recv(len(PONG) - len(reply))):
            reply += chunk
    return reply == PONG


def start_redis(stack: ExitStack, data_dir: str | Path, *flags: str) -> tuple[int, int]:
    """redis-server with ``flags`` (persistence options) working in
    ``data_dir``; returns (pid, port) once it answers PING."""
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", *flags, "--dir", str(data_dir)]
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    stack.callback(stop, process)
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            if _answers_ping(port):
                return process.pid, port
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"redis-server did not start on port {port}")
        time.sleep(0.05)
