"""The lifecycle category: SIGTERM while clients are connected, one of them
in the middle of a pipeline.

At the moment of the signal the server (run with ``--max-batch-commands 4``,
so a pipeline takes hundreds of worker hops) has:

* two socat clients and one nc client that said PING and now sit idle with
  their input open;
* one nc client that sent ``PIPELINE_COMMANDS`` SETs in a single write and
  has just received its first reply: the server has read the whole pipeline
  (it is smaller than nc's 16 KiB buffer and the server's 64 KiB read) and is
  still answering it.

Pass: exit status 0 within ``EXIT_SECONDS``; the pipelining client receives
every one of its replies, then EOF; the idle clients see the server close.
"""

from __future__ import annotations

import signal
import tempfile
import time

from checker import Checker
from clients import LiveClient
from server_process import ServerProcess

LIFECYCLE_FLAGS = ("--max-batch-commands", "4")
PIPELINE_COMMANDS = 1000
# nc reads its input in 16 KiB blocks; one block means one write to the socket.
NC_BLOCK_BYTES = 16 * 1024
EXIT_SECONDS = 2.0
CLIENT_SECONDS = 3.0


def _pipeline() -> bytes:
    data = b"".join(b"SET p%d v\n" % index for index in range(PIPELINE_COMMANDS))
    assert len(data) < NC_BLOCK_BYTES, "the pipeline must fit one nc block"
    return data


def _greeted(client: LiveClient, check: Checker, what: str) -> LiveClient:
    client.send(b"PING\n")
    check.true(f"{what} connected (PONG)", client.read_until(b"PONG\n", CLIENT_SECONDS), client.received)
    return client


def check_lifecycle(server: ServerProcess, check: Checker) -> None:
    host, port = server.address
    clients: list[LiveClient] = []
    with tempfile.TemporaryFile() as pipeline_file:
        pipeline_file.write(_pipeline())
        pipeline_file.seek(0)
        try:
            idle_socat = [LiveClient.held_open(server.address) for _ in range(2)]
            idle_nc = LiveClient(["nc", host, str(port)])
            clients += [*idle_socat, idle_nc]
            for index, client in enumerate(clients):
                _greeted(client, check, f"idle client {index}")
            # No -N: nc sends the file and keeps the connection open; it
            # exits when the server closes.
            pipelining = LiveClient(["nc", host, str(port)], stdin=pipeline_file)
            clients.append(pipelining)
            check.true("first pipeline reply", pipelining.read_until(b"\n", CLIENT_SECONDS), pipelining.received)
            replies_before = pipelining.received.count(b"\n")

            signalled = time.monotonic()
            server.send_signal(signal.SIGTERM)
            status = server.wait(EXIT_SECONDS)
            exit_seconds = time.monotonic() - signalled
            check.equal(f"exit status within {EXIT_SECONDS:.0f} s of SIGTERM", status, 0)

            check.true("pipelining client sees EOF", pipelining.read_to_eof(CLIENT_SECONDS), len(pipelining.received))
            received = pipelining.received.count(b"\n")
            check.equal_lines(
                "every reply of the pipeline the server had read",
                bytes(pipelining.received).decode().splitlines(),
                ["OK"] * PIPELINE_COMMANDS,
            )
            check.equal("pipelining nc exits by itself, status 0", pipelining.exit_status(CLIENT_SECONDS), 0)
            for index, client in enumerate(idle_socat):
                check.true(f"idle socat {index} sees the server close", client.read_to_eof(CLIENT_SECONDS))
                check.equal(f"idle socat {index} output", bytes(client.received), b"PONG\n")
            idle_nc.end_input()
            check.true("idle nc ends once its input ends", idle_nc.read_to_eof(CLIENT_SECONDS))
            check.equal("idle nc output", bytes(idle_nc.received), b"PONG\n")
        finally:
            for client in clients:
                client.close()
    check.notes.append(
        f"exit 0 in {exit_seconds * 1000:.0f} ms; {received}/{PIPELINE_COMMANDS} pipelined replies, "
        f"{replies_before} read before the signal"
    )
