"""A fault schedule, and a server process that can be killed and restarted in place.

A ``Fault`` is a callable run at ``at_s`` seconds after the workload started
(``kill -9`` a node, restart it, ``SIGSTOP`` it, cut a link). ``run_schedule``
runs them in time order on its own thread, records each as a ``FaultEvent``
(start and end on the recorder's clock, so a history shows what the clients
saw around it), and stops at the first fault that raises (kept in ``errors``
for the driver to re-raise: a fault that did not happen must not pass as a
run with faults).

``RestartableNode`` is a real trio_kv process on a fixed data directory:
started once on port 0, then ``restart()`` starts it again on *the same port*
(the node's address is its identity to clients and, in a cluster, to its
peers) and the same data directory. ``kill()`` is SIGKILL, a crash.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..server_process import ServerProcess
from .recorder import Recorder


@dataclass(frozen=True)
class Fault:
    at_s: float
    name: str
    action: Callable[[], object]


def run_schedule(
    faults: Sequence[Fault], recorder: Recorder, started_s: float, stop: threading.Event, errors: list[BaseException]
) -> None:
    for fault in sorted(faults, key=lambda fault: fault.at_s):
        delay_s = started_s + fault.at_s - time.monotonic()
        if (delay_s > 0 and stop.wait(delay_s)) or stop.is_set():
            return
        start_s = recorder.now_s()
        try:
            fault.action()
        except Exception as error:  # noqa: BLE001 - recorded and re-raised by the driver
            recorder.fault(fault.name, start_s, recorder.now_s(), repr(error))
            errors.append(error)
            return
        recorder.fault(fault.name, start_s, recorder.now_s())


class RestartableNode:
    def __init__(self, repo: Path, data_dir: Path, *flags: str) -> None:
        self.repo = repo
        self.data_dir = data_dir
        self.flags = flags
        self.server = ServerProcess.start(repo, *flags, data_dir=data_dir)
        self.address: tuple[str, int] = self.server.address
        self.restarts = 0

    def kill(self) -> None:
        """SIGKILL, and wait for the exit."""
        self.server.kill()

    def restart(self) -> None:
        """Start again on the same port and data directory (after ``kill``, or a stop)."""
        self.server.stop()
        host, port = self.address
        self.server = ServerProcess.start(self.repo, *self.flags, "--port", str(port), data_dir=self.data_dir)
        if self.server.address != self.address:
            raise RuntimeError(f"restarted on {self.server.address}, not {self.address}")
        self.restarts += 1

    def kill_and_restart(self) -> None:
        self.kill()
        self.restart()

    def kill_restart_fault(self, at_s: float) -> Fault:
        return Fault(at_s, f"kill -9 and restart {self.address[0]}:{self.address[1]}", self.kill_and_restart)

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> RestartableNode:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
