"""The real command-line clients the harness drives: netcat-openbsd and socat.

How each tool is used, and why (measured on netcat-openbsd 1.219, socat 1.7):

* ``session("nc", ...)`` runs ``nc -N HOST PORT`` with the requests on stdin.
  ``-N`` half-closes the socket at stdin EOF; the server answers what it read,
  closes, and nc exits at once. (``-q1`` works too but always waits 1 s.)
* ``session("socat", ...)`` runs ``socat -t 5 - TCP:HOST:PORT``: at stdin EOF
  socat half-closes and exits as soon as the server closes (at most 5 s).
* ``LiveClient`` keeps a client running while a check watches it. To see the
  *server* close a connection, use socat with stdin kept open: Debian's nc
  does not exit on the server's close while its stdin is open, socat with a
  short ``-t`` does. ``nc HOST PORT < file`` (no ``-N``) sends the file, never
  half-closes, and exits when the server closes: a pipelining client.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import time
from typing import IO

SESSION_SECONDS = 10.0
SOCAT_CLOSE_WAIT_SECONDS = 5.0
LIVE_CLOSE_WAIT_SECONDS = 0.05
TOOLS = ("nc", "socat")


class ClientError(Exception):
    """A client tool misbehaved (hung past its deadline)."""


def argv_for(tool: str, address: tuple[str, int], *, close_wait_seconds: float = SOCAT_CLOSE_WAIT_SECONDS) -> list[str]:
    host, port = address
    if tool == "nc":
        return ["nc", "-N", host, str(port)]
    if tool == "socat":
        return ["socat", "-t", str(close_wait_seconds), "-", f"TCP:{host}:{port}"]
    raise ValueError(f"unknown tool {tool!r}")


def session(tool: str, address: tuple[str, int], data: bytes, timeout: float = SESSION_SECONDS) -> bytes:
    """Send ``data``, end the input, return everything the server answered."""
    try:
        result = subprocess.run(argv_for(tool, address), input=data, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        raise ClientError(f"{tool} session did not end within {timeout:.0f} s") from error
    return result.stdout


def lines(tool: str, address: tuple[str, int], requests: list[str]) -> list[str]:
    """One session of text requests; the reply lines."""
    data = "".join(request + "\n" for request in requests).encode()
    return session(tool, address, data).decode("utf-8", "replace").splitlines()


class LiveClient:
    """A client process kept running; its stdout read without blocking forever."""

    def __init__(self, argv: list[str], stdin: int | IO[bytes] = subprocess.PIPE) -> None:
        self.argv = argv
        self.process = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.received = bytearray()
        self.eof = False
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.process.stdout, selectors.EVENT_READ)

    @classmethod
    def held_open(cls, address: tuple[str, int]) -> "LiveClient":
        """socat whose stdin stays open: it ends only when the server closes."""
        return cls(argv_for("socat", address, close_wait_seconds=LIVE_CLOSE_WAIT_SECONDS))

    def send(self, data: bytes) -> None:
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def _read_some(self, deadline: float) -> bool:
        """Read what is available; False once the deadline passed or at EOF."""
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not self._selector.select(remaining):
            return False
        chunk = os.read(self.process.stdout.fileno(), 65536)
        if chunk:
            self.received += chunk
        else:
            self.eof = True
        return True

    def read_until(self, marker: bytes, timeout: float) -> bool:
        """Wait until ``marker`` has been received; False on timeout or EOF."""
        deadline = time.monotonic() + timeout
        while marker not in self.received:
            if not self._read_some(deadline):
                return False
        return True

    def read_to_eof(self, timeout: float) -> bool:
        """Read until the client's output ends; False if it did not within ``timeout``."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            if not self._read_some(deadline):
                return self.eof
        return True

    def exit_status(self, timeout: float) -> int | None:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def end_input(self) -> None:
        """Close the tool's stdin (EOF for it); its output stays readable."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            try:
                self.process.stdin.close()
            except BrokenPipeError:
                pass

    def close(self) -> None:
        """End the input, give the tool a moment, then kill it."""
        self.end_input()
        if self.exit_status(2.0) is None:
            self.process.kill()
            self.process.wait()
        self._selector.close()
        self.process.stdout.close()
