"""The durability category: SIGKILL while clients write, restart on the same
data directory, verify every acknowledged write.

The server runs with ``--appendfsync always``. Each round, ``CLIENTS``
clients (nc and socat alternating) pipeline ``SETS_PER_CLIENT`` lines
``SET d:<round>:<client>:<i> v<i>-<round>`` from a file; after
``KILL_AFTER_SECONDS`` the server gets SIGKILL. A client's ``OK`` lines, in
order, are its acknowledged writes (fewer may arrive than were sent: that
only makes the check stricter). The next server starts on the same data
directory, and for each client of each round so far:

* ``KEYS d:<round>:<client>:`` lists exactly the first k keys, with k at
  least the number acknowledged: a connection's writes are applied and
  logged in its order, so recovery must give a prefix of them;
* ``GET`` of each of them gives its value.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from checker import Checker
from clients import LiveClient, argv_for, session
from server_process import ServerProcess

REPO = Path(__file__).resolve().parents[1]
DURABILITY_FLAGS = ("--appendfsync", "always")
ROUNDS = 2
CLIENTS = 4
# Far more than the server answers before the kill (pipelined, it acknowledges
# on the order of 100k writes a second), so the kill lands mid-stream.
SETS_PER_CLIENT = 50_000
KILL_AFTER_SECONDS = 0.1
CLIENT_SECONDS = 5.0


def _prefix(round_index: int, client: int) -> str:
    return f"d:{round_index}:{client}:"


def _requests(round_index: int, client: int) -> bytes:
    prefix = _prefix(round_index, client)
    return b"".join(f"SET {prefix}{i} v{i}-{round_index}\n".encode() for i in range(SETS_PER_CLIENT))


def _write_and_kill(server: ServerProcess, round_index: int, check: Checker) -> list[int]:
    """Start the writing clients, SIGKILL the server; each client's OK count."""
    host, port = server.address
    clients: list[LiveClient] = []
    files = []
    try:
        for client in range(CLIENTS):
            requests = tempfile.TemporaryFile()
            files.append(requests)
            requests.write(_requests(round_index, client))
            requests.seek(0)
            # nc without -N and socat both send the whole file and keep reading until the server goes away.
            argv = ["nc", host, str(port)] if client % 2 == 0 else argv_for("socat", server.address)
            clients.append(LiveClient(argv, stdin=requests))
        for index, client in enumerate(clients):
            first = client.read_until(b"\n", CLIENT_SECONDS)
            check.true(f"round {round_index}: client {index} got its first reply", first)
        time.sleep(KILL_AFTER_SECONDS)
        server.kill()
        acked = []
        for index, client in enumerate(clients):
            ended = client.read_to_eof(CLIENT_SECONDS)
            check.true(f"round {round_index}: client {index} sees the connection end", ended)
            replies = bytes(client.received).splitlines()
            check.equal(f"round {round_index}: client {index} got only OK", set(replies) - {b"OK"}, set())
            acked.append(len(replies))
        return acked
    finally:
        for client in clients:
            client.close()
        for requests in files:
            requests.close()


def _verify(server: ServerProcess, acked: dict[tuple[int, int], int], check: Checker) -> int:
    """Every acknowledged write of every round is there, as a prefix; returns the keys found."""
    found = 0
    for (round_index, client), count in sorted(acked.items()):
        prefix = _prefix(round_index, client)
        reply = session("nc", server.address, f"KEYS {prefix}\n".encode()).decode().splitlines()
        check.true(f"KEYS {prefix} answers", bool(reply) and reply[0].startswith("KEYS "), reply[:1])
        indices = sorted(int(key[len(prefix) :]) for key in reply[1:])
        check.equal(f"round {round_index}, client {client}: the keys are a prefix", indices, list(range(len(indices))))
        check.true(
            f"round {round_index}, client {client}: {len(indices)} keys present, {count} acknowledged",
            len(indices) >= count,
        )
        gets = "".join(f"GET {prefix}{i}\n" for i in indices).encode()
        values = session("socat", server.address, gets).decode().splitlines()
        check.equal_lines(
            f"round {round_index}, client {client}: the values", values, [f"VALUE v{i}-{round_index}" for i in indices]
        )
        found += len(indices)
    return found


def check_durability(server: ServerProcess, check: Checker) -> None:
    acked: dict[tuple[int, int], int] = {}
    found = 0
    current = server
    try:
        for round_index in range(ROUNDS):
            counts = _write_and_kill(current, round_index, check)
            acked.update(((round_index, client), count) for client, count in enumerate(counts))
            in_flight = min(counts) < SETS_PER_CLIENT
            check.true(f"round {round_index}: the SIGKILL came while writes were in flight", in_flight)
            if current is not server:
                current.stop()
            current = ServerProcess.start(REPO, *DURABILITY_FLAGS, data_dir=server.data_dir)
            found = _verify(current, acked, check)
    finally:
        if current is not server:
            current.stop()
    check.notes.append(
        f"{ROUNDS} SIGKILLs under appendfsync always; {sum(acked.values())} of {len(acked) * SETS_PER_CLIENT} "
        f"writes acknowledged, {found} keys present after the restarts"
    )
