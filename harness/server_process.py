"""A real trio_kv server process for the harness (Python stdlib only).

``ServerProcess.start(repo, *flags)`` runs ``<python> -m trio_kv --port 0``
from the repository, reads its stderr until the ``listening on HOST:PORT``
line and returns with ``address`` set, so checks never race the server and
never use a fixed port. A thread keeps draining stderr so a chatty server can
never block on a full pipe; ``log()`` returns what it wrote.

``stop()`` is safe to call at any time and more than once: SIGTERM, then
SIGKILL if the process has not exited within ``STOP_SECONDS``; then the
data directory is deleted if ``start`` made it (``start(...,
data_dir=...)`` reuses one, for a restart, and leaves it alone).
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

START_SECONDS = 15.0
STOP_SECONDS = 3.0
_LISTENING = re.compile(r"listening on (\S+):(\d+)")


def server_python(repo: Path) -> str:
    """The project's virtualenv python when there is one, else this one."""
    venv_python = repo / ".venv" / "bin" / "python"
    return str(venv_python) if venv_python.exists() else sys.executable


class ServerStartError(Exception):
    pass


class ServerProcess:
    def __init__(self, process: subprocess.Popen, data_dir: str, owns_data_dir: bool) -> None:
        self.process = process
        self.data_dir = data_dir
        self._owns_data_dir = owns_data_dir
        self.address: tuple[str, int] = ("", 0)
        self._log_lines: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()

    @classmethod
    def start(cls, repo: Path, *flags: str, data_dir: str | None = None) -> "ServerProcess":
        # Each server gets its own data directory (the log is on, as by
        # default), unless it restarts on an earlier one's.
        owns_data_dir = data_dir is None
        if data_dir is None:
            data_dir = tempfile.mkdtemp(prefix="trio-kv-harness-")
        argv = [server_python(repo), "-m", "trio_kv", "--port", "0", "--data-dir", data_dir, *flags]
        process = subprocess.Popen(
            argv,
            cwd=repo,
            env=harness_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        server = cls(process, data_dir, owns_data_dir)
        try:
            server._wait_listening()
        except BaseException:
            server.stop()
            raise
        return server

    def _drain(self) -> None:
        for raw in self.process.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self._log_lines.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ServerStartError(f"no 'listening on' line within {START_SECONDS:.0f} s")
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self.process.wait(STOP_SECONDS)
                tail = "\n".join(self._log_lines[-10:])
                raise ServerStartError(f"server exited with status {self.process.returncode}:\n{tail}")
            match = _LISTENING.search(line)
            if match:
                self.address = (match.group(1), int(match.group(2)))
                return

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def send_signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int | None:
        """Exit status, or None if still running after ``timeout`` seconds."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def log(self) -> str:
        return "\n".join(self._log_lines)

    def kill(self) -> None:
        """SIGKILL (a crash), and wait for the exit."""
        if self.alive():
            self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            if self.wait(STOP_SECONDS) is None:
                self.process.kill()
                self.process.wait()
        self._drainer.join(STOP_SECONDS)
        if self.process.stderr is not None:
            self.process.stderr.close()
        if self._owns_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def harness_environment() -> dict[str, str]:
    """The environment for server processes: no stray ``TRIO_KV_*`` settings,
    which the server would apply (or reject)."""
    return {name: value for name, value in os.environ.items() if not name.startswith("TRIO_KV_")}
