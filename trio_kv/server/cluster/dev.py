"""``trio-kv cluster dev``: a local cluster for development.

Starts ``--nodes`` child processes (``python -m trio_kv``) on
``--host`` (127.0.0.1) ports ``--base-port`` .. base + N - 1, each with
its own data directory under ``--data-dir-root`` (``node-<port>``) and the
same seed list, waits until each is listening, prints how to reach the
cluster (with each node's PID), and forwards each child's log lines to
stderr prefixed with its port. Arguments after ``--`` go to every node.

Rules it keeps:

* A node that exits by itself (a crash, or ``kill -9`` to try a failure)
  is reported (its PID and exit status or signal) and the others keep
  serving: the cluster is there to watch failures, not to hide them.
  Only when every node has exited does the command end on its own.
* Ctrl-C, SIGTERM or SIGHUP stops every node still running by PID, each
  with one SIGTERM (a clean shutdown), then SIGKILL after ``STOP_SECONDS``.
  The children run in their own process group, so a terminal's Ctrl-C
  reaches only this command, never a node directly (a node given SIGINT
  from the terminal and then SIGTERM from here would take the second
  signal as "exit now").
* The exit status is 0 when every node ran until asked to stop, 1 when
  one exited by itself or did not start.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import TextIO

START_SECONDS = 20.0
STOP_SECONDS = 5.0
POLL_SECONDS = 0.2
_LISTENING = re.compile(r"listening on (\S+):(\d+)")
# One whole line at a time, on stdout and stderr alike (they often share a
# terminal or a pipe): print() writes a line and its newline separately
# when unbuffered, so the forwarding threads' lines could interleave with
# each other and with the banner.
_OUTPUT_LOCK = threading.Lock()


def _say(line: str, stream: TextIO | None = None) -> None:
    """Write ``line`` whole to ``stream`` (default: stderr)."""
    stream = sys.stderr if stream is None else stream
    with _OUTPUT_LOCK:
        stream.write(line + "\n")
        stream.flush()


class _Node:
    def __init__(self, port: int, argv: list[str]) -> None:
        self.port = port
        self.listening = threading.Event()
        # Set once its exit (by itself) has been reported.
        self.reported_exit = False
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, process_group=0)
        threading.Thread(target=self._forward, daemon=True).start()

    def _forward(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if _LISTENING.search(line):
                self.listening.set()
            _say(f"[{self.port}] {line}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trio-kv cluster dev", description="Start a local trio-kv cluster.")
    parser.add_argument("--nodes", type=int, default=3, help="how many nodes (default 3)")
    parser.add_argument("--base-port", type=int, default=7001, help="the first node's client port (default 7001)")
    parser.add_argument("--host", default="127.0.0.1", help="the address every node listens on (default 127.0.0.1)")
    parser.add_argument("--data-dir-root", default="trio-kv-cluster", help="node-<port> data directories go here")
    return parser


def _exit_description(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


def _report_exits(nodes: list[_Node]) -> bool:
    """Report each node newly found exited; True if any node is still running."""
    for node in nodes:
        if node.reported_exit or node.process.poll() is None:
            continue
        node.reported_exit = True
        running = sum(other.process.poll() is None for other in nodes)
        _say(f"trio-kv cluster dev: node {node.port} (pid {node.process.pid}) "
             f"{_exit_description(node.process.returncode)}; {running} of {len(nodes)} nodes still running")
    return any(node.process.poll() is None for node in nodes)


def _stop(nodes: list[_Node]) -> None:
    for node in nodes:
        if node.process.poll() is None:
            node.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    for node in nodes:
        try:
            node.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _say(f"trio-kv cluster dev: node {node.port} (pid {node.process.pid}) did not stop within "
                 f"{STOP_SECONDS:g} s; killing it")
            node.process.kill()
            node.process.wait()


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    extra: list[str] = []
    if "--" in args:
        extra = args[args.index("--") + 1 :]
        args = args[: args.index("--")]
    options = _parser().parse_args(args)
    if options.nodes < 1:
        _parser().error("--nodes must be at least 1")
    ports = [options.base_port + index for index in range(options.nodes)]
    seeds = ",".join(f"{options.host}:{port}" for port in ports)
    stop_requested = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop_requested.set()

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, on_signal)
    nodes: list[_Node] = []
    try:
        for port in ports:
            data_dir = os.path.join(options.data_dir_root, f"node-{port}")
            argv_node = [
                sys.executable, "-m", "trio_kv", "--host", options.host, "--port", str(port),
                "--cluster-enabled", "yes", "--cluster-seeds", seeds, "--data-dir", data_dir, *extra,
            ]
            nodes.append(_Node(port, argv_node))
        deadline = time.monotonic() + START_SECONDS
        for node in nodes:
            while not node.listening.wait(0.1):
                if stop_requested.is_set() or node.process.poll() is not None or time.monotonic() > deadline:
                    _say(f"trio-kv cluster dev: node {node.port} did not start")
                    return 1
        _say(f"trio-kv cluster dev: {len(nodes)} nodes on {options.host}, ports {ports[0]}..{ports[-1]} "
             f"(data in {options.data_dir_root})", sys.stdout)
        for node in nodes:
            _say(f"  node {options.host}:{node.port} pid {node.process.pid}", sys.stdout)
        _say(f"connect: redis-cli -c -h {options.host} -p {ports[0]}    "
             f"status: trio-kv cluster status -h {options.host} -p {ports[0]}", sys.stdout)
        _say("A node that exits is reported; the others keep serving. Ctrl-C or SIGTERM stops every node.",
             sys.stdout)
        while not stop_requested.wait(POLL_SECONDS):
            if not _report_exits(nodes):
                _say("trio-kv cluster dev: every node has exited")
                break
        _report_exits(nodes)  # an exit seen only now is still one the user did not ask for
    finally:
        _stop(nodes)
    _say("trio-kv cluster dev: every node stopped", sys.stdout)
    return 1 if any(node.reported_exit for node in nodes) else 0
