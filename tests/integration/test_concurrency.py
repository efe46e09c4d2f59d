"""Concurrency stress: 8 OS threads, each with its own connection, hammer
mixed SET/GET/DEL at one server; the final state matches what was written
and STATS counts exactly the operations sent."""

from __future__ import annotations

import random
import socket

import trio

THREADS = 8
OPERATIONS_PER_THREAD = 1500


def _client_thread(address, thread_index: int, seed: int) -> dict:
    rng = random.Random(seed)
    expected: dict[bytes, bytes] = {}
    counts = {"gets": 0, "sets": 0, "dels": 0}
    with socket.create_connection(address, timeout=20) as sock:
        reader = sock.makefile("rb")
        sent = 0
        while sent < OPERATIONS_PER_THREAD:
            # Pipelines of random depth, checked reply by reply.
            batch = []
            for _ in range(rng.randint(1, 40)):
                key = b"t%d:k%d" % (thread_index, rng.randrange(60))
                op = rng.random()
                if op < 0.45:
                    value = b"v%d" % rng.randrange(10**6)
                    batch.append((b"SET " + key + b" " + value + b"\n", b"OK", ("set", key, value)))
                elif op < 0.85:
                    want = b"VALUE " + expected[key] if key in expected else b"NOT_FOUND"
                    batch.append((b"GET " + key + b"\n", want, ("get", key, None)))
                else:
                    want = b"OK" if key in expected else b"NOT_FOUND"
                    batch.append((b"DEL " + key + b"\n", want, ("del", key, None)))
                kind, k, v = batch[-1][2]
                if kind == "set":
                    expected[k] = v
                elif kind == "del":
                    expected.pop(k, None)
            sock.sendall(b"".join(request for request, _, _ in batch))
            for request, want, (kind, _, _) in batch:
                got = reader.readline().rstrip(b"\n")
                assert got == want, (request, got, want)
                counts[kind + "s"] += 1
            sent += len(batch)
    return {"expected": expected, "counts": counts}


async def test_eight_threads_mixed_operations(server):
    results = []
    limiter = trio.CapacityLimiter(THREADS)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for index in range(THREADS):

                async def run(index=index):
                    results.append(
                        await trio.to_thread.run_sync(_client_thread, server.main, index, 1000 + index, limiter=limiter)
                    )

                nursery.start_soon(run)
        expected = {}
        totals = {"gets": 0, "sets": 0, "dels": 0}
        for result in results:
            expected.update(result["expected"])
            for name, count in result["counts"].items():
                totals[name] += count
        stream = await trio.open_tcp_stream(*server.main)
        await stream.send_all(b"STATS\n")
        reply = b""
        while not reply.endswith(b"\n"):
            reply += await stream.receive_some(4096)
        value_bytes = sum(len(v) for v in expected.values())
        assert reply.decode().split() == [
            f"gets:{totals['gets']}",
            f"sets:{totals['sets']}",
            f"dels:{totals['dels']}",
            "errors:0",
            f"keys:{len(expected)}",
            f"bytes:{value_bytes}",
        ]
        # The final state is exactly what was written.
        keyspace = server.store.keyspace
        assert dict(keyspace.live_items()) == expected
