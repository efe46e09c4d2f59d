"""A real trio_kv server process, for the harness and the tests (Python stdlib only).

``ServerProcess.start(repo, *flags)`` runs ``<python> -m trio_kv --port 0``
from the repository, reads its stderr until the ``listening on HOST:PORT``
line and returns with ``address`` set, so checks never race the server and
never use a fixed port. ``ServerProcess.launch`` (the same arguments) and
the constructor (any argv: an entry-point script, a wrapper such as
``unshare``; ``merge_stdout=True`` reads its stdout with its stderr)
return at once; ``wait_listening()`` then gives the address, or None when
the process exits without listening (a refused start). A thread
keeps draining stderr so a chatty server can never block on a full pipe;
``log_lines`` holds what it wrote and ``wait_for_log(pattern)`` waits for a
line (the other listeners' addresses).

Every wait is bounded. ``terminate()`` is SIGTERM and the exit status;
``kill()`` is SIGKILL (a crash). ``stop()`` is safe to call at any time and
more than once: SIGTERM, then SIGKILL if the process has not exited within
``STOP_SECONDS``; then the data directory is deleted if ``start`` made it
(``start(..., data_dir=...)`` reuses one, for a restart, and leaves it
alone). ``with`` stops it on the way out.

The harness imports this module as ``server_process`` (harness/run puts its
directory on sys.path), the tests as ``harness.server_process`` (see
tests/conftest.py), so it imports nothing else from the harness.
"""

from __future__ import annotations

import os
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
LISTENING = re.compile(r"listening on (\S+):(\d+)")
# Settings the server would apply (or reject) and the tests' fault-injection
# hooks: a server started here never inherits them by accident.
STRIPPED_ENV_PREFIXES = ("TRIO_KV_", "KV_TEST_")


def server_python(repo: Path) -> str:
    """The project's virtualenv python when there is one, else this one."""
    venv_python = repo / ".venv" / "bin" / "python"
    return str(venv_python) if venv_python.exists() else sys.executable


def server_environment(**overrides: str) -> dict[str, str]:
    """This process' environment without ``TRIO_KV_*`` and ``KV_TEST_*``, plus ``overrides``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(STRIPPED_ENV_PREFIXES)}
    env.update(overrides)
    return env


class ServerStartError(Exception):
    pass


class ServerProcess:
    def __init__(
        self,
        argv: list[str],
        *,
        cwd: Path,
        env: dict[str, str] | None = None,
        data_dir: str | Path | None = None,
        owns_data_dir: bool = False,
        merge_stdout: bool = False,
    ) -> None:
        self.process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=server_environment() if env is None else env,
            stdin=subprocess.DEVNULL,
            # A server writes nothing useful to stdout; a tool such as
            # ``trio-kv cluster dev`` prints there what a check must read
            # (then both go into one pipe, in the order written).
            stdout=subprocess.PIPE if merge_stdout else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if merge_stdout else subprocess.PIPE,
        )
        self._output = self.process.stdout if merge_stdout else self.process.stderr
        self.data_dir = None if data_dir is None else str(data_dir)
        self._owns_data_dir = owns_data_dir
        self.address: tuple[str, int] = ("", 0)
        self.log_lines: list[str] = []
        self._stderr_ended = False
        self._log_changed = threading.Condition()
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()

    @classmethod
    def launch(
        cls, repo: Path, *flags: str, data_dir: str | Path | None = None, env: dict[str, str] | None = None
    ) -> ServerProcess:
        """``python -m trio_kv --port 0 --data-dir DIR *flags``, not waited for.
        Without ``data_dir``, a fresh temporary one (deleted by ``stop``):
        the log is on, as by default."""
        owns_data_dir = data_dir is None
        if data_dir is None:
            data_dir = tempfile.mkdtemp(prefix="trio-kv-server-")
        argv = [server_python(repo), "-m", "trio_kv", "--port", "0", "--data-dir", str(data_dir), *flags]
        return cls(argv, cwd=repo, env=env, data_dir=data_dir, owns_data_dir=owns_data_dir)

    @classmethod
    def start(
        cls, repo: Path, *flags: str, data_dir: str | Path | None = None, env: dict[str, str] | None = None
    ) -> ServerProcess:
        """``launch``, then wait for the ``listening on`` line; stopped again if it never comes."""
        server = cls.launch(repo, *flags, data_dir=data_dir, env=env)
        try:
            if server.wait_listening() is None:
                tail = "\n".join(server.log_lines[-10:])
                raise ServerStartError(f"server exited with status {server.process.returncode}:\n{tail}")
        except BaseException:
            server.stop()
            raise
        return server

    def _drain(self) -> None:
        for raw in self._output:
            with self._log_changed:
                self.log_lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._log_changed.notify_all()
        with self._log_changed:
            self._stderr_ended = True
            self._log_changed.notify_all()

    def wait_for_log(self, pattern: re.Pattern[str], timeout: float = START_SECONDS) -> re.Match[str] | None:
        """The first log line (so far or to come) that ``pattern`` matches;
        None if stderr ends without one. Raises ServerStartError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        searched = 0
        with self._log_changed:
            while True:
                for line in self.log_lines[searched:]:
                    match = pattern.search(line)
                    if match:
                        return match
                searched = len(self.log_lines)
                if self._stderr_ended:
                    return None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    log = "\n".join(self.log_lines)
                    raise ServerStartError(f"no line matching {pattern.pattern!r} within {timeout:g} s:\n{log}")
                self._log_changed.wait(remaining)

    def wait_listening(self) -> tuple[str, int] | None:
        """The address from the ``listening on`` line (also kept in
        ``address``); None if the process exited without one."""
        match = self.wait_for_log(LISTENING)
        if match is None:
            self.wait(STOP_SECONDS)
            return None
        self.address = (match.group(1), int(match.group(2)))
        return self.address

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

    def terminate(self, timeout: float = STOP_SECONDS) -> int | None:
        """SIGTERM (if still running); the exit status, or None if still running after ``timeout`` seconds."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def log(self) -> str:
        with self._log_changed:
            return "\n".join(self.log_lines)

    def kill(self) -> None:
        """SIGKILL (a crash), and wait for the exit."""
        if self.alive():
            self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.terminate() is None:
            self.kill()
        self._drainer.join(STOP_SECONDS)
        self._output.close()
        if self._owns_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
