"""Four of the harness's categories: core, protocol, concurrency, observability
(lifecycle, which signals the server, is in ``lifecycle.py``).

Each function gets a fresh ``ServerProcess`` and a ``Checker`` and talks to
the server only through the real ``nc`` and ``socat`` binaries. A fresh server
per category is what makes the exact STATS lines possible.
"""

from __future__ import annotations

import random
import re
import time
from concurrent.futures import ThreadPoolExecutor

from checker import Checker
from clients import TOOLS, LiveClient, lines, session
from server_process import ServerProcess

CLOSE_SECONDS = 3.0
# Longer than the protocol category's --max-line-bytes.
PROTOCOL_MAX_LINE_BYTES = 1024
PROTOCOL_FLAGS = ("--max-line-bytes", str(PROTOCOL_MAX_LINE_BYTES))
CONCURRENT_CLIENTS = 8
ROUNDS_PER_CLIENT = 300
GARBAGE_RANDOM_INPUTS = 24
GARBAGE_MAX_BYTES = 4000
_LATENCY_LINE = re.compile(rb"(\S+) count:(\d+) p50_us:(\d+) p95_us:(\d+) p99_us:(\d+)")


def _ttl_ms(line: str) -> int:
    return int(line.split()[1]) if line.startswith("TTL ") else -2


def check_core(server: ServerProcess, check: Checker) -> None:
    address = server.address
    check.equal("SET then GET (nc)", lines("nc", address, ["SET foo bar", "GET foo"]), ["OK", "VALUE bar"])
    check.equal(
        "a second connection sees the value (socat)",
        lines("socat", address, ["GET foo", "GET missing"]),
        ["VALUE bar", "NOT_FOUND"],
    )
    check.equal(
        "overwrite, quoted value, lower-case commands",
        lines("nc", address, ["SET foo baz", "GET foo", 'set greeting "hello world"', "get greeting"]),
        ["OK", "VALUE baz", "OK", "VALUE hello world"],
    )
    check.equal("DEL", lines("socat", address, ["DEL foo", "DEL foo", "GET foo"]), ["OK", "NOT_FOUND", "NOT_FOUND"])

    ttl = lines("nc", address, ["SET plain v", "TTL plain", "SET ex v EX 100", "TTL ex", "SET px v PX 5000", "TTL px"])
    check.equal("SET with and without expiry", ttl[0::2], ["OK", "OK", "OK"])
    check.equal("TTL of a key without expiry", ttl[1], "TTL -1")
    check.true("TTL after EX 100 is in (99000, 100000] ms", 99_000 < _ttl_ms(ttl[3]) <= 100_000, ttl[3])
    check.true("TTL after PX 5000 is in (4000, 5000] ms", 4_000 < _ttl_ms(ttl[5]) <= 5_000, ttl[5])
    check.equal("TTL of a missing key", lines("socat", address, ["TTL missing"]), ["NOT_FOUND"])
    check.equal("short expiry, read at once", lines("socat", address, ["SET short v PX 200", "GET short"]), ["OK", "VALUE v"])
    time.sleep(0.3)
    check.equal("expired key is gone", lines("nc", address, ["GET short", "TTL short"]), ["NOT_FOUND", "NOT_FOUND"])

    lines("socat", address, [f"SET {key} x" for key in ("user:2", "user:1", "order:9", "user:10")])
    check.equal("KEYS prefix, sorted", lines("nc", address, ["KEYS user:"]), ["KEYS 3", "user:1", "user:10", "user:2"])
    live = sorted(["greeting", "plain", "ex", "px", "user:1", "user:2", "user:10", "order:9"])
    check.equal("KEYS lists every live key, sorted", lines("socat", address, ["KEYS"]), [f"KEYS {len(live)}", *live])
    check.equal("KEYS without a match", lines("nc", address, ["KEYS nothing"]), ["KEYS 0"])

    client = LiveClient.held_open(address)
    try:
        client.send(b"PING\nQUIT\nPING\n")
        check.true("QUIT: the server closes the connection", client.read_to_eof(CLOSE_SECONDS), client.received)
        check.equal("PING, QUIT; nothing after QUIT runs", bytes(client.received), b"PONG\nOK\n")
    finally:
        client.close()


def _closed_by_server(check: Checker, what: str, address: tuple[str, int], data: bytes, expected: bytes) -> None:
    client = LiveClient.held_open(address)
    try:
        client.send(data)
        check.true(f"{what}: the server closes the connection", client.read_to_eof(CLOSE_SECONDS), client.received)
        check.equal(f"{what}: replies before the close", bytes(client.received), expected)
    finally:
        client.close()


def _garbage_inputs(seed: int) -> list[bytes]:
    fixed = [
        b"\x00" * 64,
        b"\xff\xfe\xfd\r\n",
        b'"' * 7 + b"\n",
        b'SET k "\\xZZ\\" \n',
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$999999999\r\n",
        b"*-1\r\n*0\r\n*1\r\n$-1\r\n",
        b"*99999999999999999999\r\n",
        b"*2\r\n$4\r\nPING\r\n",
        b"$5\r\nhello\r\n",
        b"\r\n" * 1000,
        b"GET \xc3\x28\n",
        b"SET a b EX 99999999999999999999999\n",
        b"x" * (PROTOCOL_MAX_LINE_BYTES * 5) + b"\n",
    ]
    rng = random.Random(seed)
    return fixed + [rng.randbytes(rng.randint(1, GARBAGE_MAX_BYTES)) for _ in range(GARBAGE_RANDOM_INPUTS)]


def check_protocol(server: ServerProcess, check: Checker, *, seed: int) -> None:
    address = server.address
    check.equal(
        "unknown command keeps the connection",
        lines("nc", address, ["BADCMD", "PING"]),
        ["ERROR unknown command", "PONG"],
    )
    check.equal(
        "wrong number of arguments",
        lines("socat", address, ["GET", "GET a b", "SET a", "DEL", "TTL"]),
        [f"ERROR wrong number of arguments for '{name}'" for name in ("get", "get", "set", "del", "ttl")],
    )
    check.equal(
        "invalid expire times",
        lines("nc", address, ["SET a b EX 0", "SET a b EX -5", "SET a b PX soon", "SET a b EX 1.5"]),
        ["ERROR invalid expire time"] * 4,
    )
    check.equal(
        "blank lines skipped, CRLF accepted",
        session("socat", address, b"\n \t \r\nPING\r\nPING\n"),
        b"PONG\nPONG\n",
    )
    _closed_by_server(
        check, "unbalanced quotes", address, b'PING\nSET a "unterminated\nPING\n', b"PONG\nERROR unbalanced quotes\n"
    )
    _closed_by_server(
        check, "overlong line without newline", address, b"SET big " + b"x" * 4000, b"ERROR line too long\n"
    )
    _closed_by_server(
        check,
        "overlong line",
        address,
        b"PING\nGET " + b"k" * 2000 + b"\nPING\n",
        b"PONG\nERROR line too long\n",
    )
    # 1 unknown + 5 arity + 4 expiry + 1 quotes + 2 long lines; the 4 SETs
    # with a bad expiry ran (and failed), so they count as sets.
    check.equal(
        "STATS after the errors",
        lines("nc", address, ["STATS"]),
        ["gets:0 sets:4 dels:0 errors:13 keys:0 bytes:0"],
    )
    inputs = _garbage_inputs(seed)
    for index, garbage in enumerate(inputs):
        session(TOOLS[index % 2], address, garbage)
        check.true(f"server alive after garbage input {index} {garbage[:40]!r}", server.alive())
    check.equal("still answers after the garbage", lines("socat", address, ["PING", "GET a"]), ["PONG", "NOT_FOUND"])
    check.notes.append(f"{len(inputs)} garbage inputs, seed {seed}")


def _client_script(client: int) -> tuple[list[str], list[str], dict[str, str]]:
    requests: list[str] = []
    expected: list[str] = []
    kept: dict[str, str] = {}
    for round_ in range(ROUNDS_PER_CLIENT):
        key = f"c{client}:k{round_}"
        value = f"v{client}.{round_}" + "x" * (round_ % 7)
        requests += [f"SET {key} {value}", f"GET {key}"]
        expected += ["OK", f"VALUE {value}"]
        if round_ % 3 == 0:
            requests += [f"DEL {key}", f"GET {key}"]
            expected += ["OK", "NOT_FOUND"]
        else:
            kept[key] = value
    return requests, expected, kept


def check_concurrency(server: ServerProcess, check: Checker) -> None:
    address = server.address
    scripts = [_client_script(client) for client in range(CONCURRENT_CLIENTS)]
    started = time.monotonic()
    with ThreadPoolExecutor(CONCURRENT_CLIENTS) as pool:
        futures = [
            pool.submit(lines, TOOLS[client % 2], address, requests)
            for client, (requests, _, _) in enumerate(scripts)
        ]
        outputs = [future.result() for future in futures]
    elapsed = time.monotonic() - started
    for client, ((_, expected, _), output) in enumerate(zip(scripts, outputs)):
        check.equal_lines(f"client {client} ({TOOLS[client % 2]}): every reply, in order", output, expected)
    kept = {key: value for _, _, client_kept in scripts for key, value in client_kept.items()}
    gets = sum(request.startswith("GET") for requests, _, _ in scripts for request in requests)
    sets = sum(request.startswith("SET") for requests, _, _ in scripts for request in requests)
    dels = sum(request.startswith("DEL") for requests, _, _ in scripts for request in requests)
    value_bytes = sum(len(value) for value in kept.values())
    check.equal(
        "exact STATS after the parallel clients",
        lines("nc", address, ["STATS"]),
        [f"gets:{gets} sets:{sets} dels:{dels} errors:0 keys:{len(kept)} bytes:{value_bytes}"],
    )
    own_keys = sorted(key for key in scripts[3][2])
    check.equal_lines("KEYS of one client", lines("socat", address, ["KEYS c3:"]), [f"KEYS {len(own_keys)}", *own_keys])
    commands = gets + sets + dels
    check.notes.append(f"{CONCURRENT_CLIENTS} clients, {commands} commands in {elapsed:.2f} s")


def check_observability(server: ServerProcess, check: Checker) -> None:
    address = server.address
    sequence = [
        ("SET a 1", "OK"),
        ("SET b 22", "OK"),
        ("SET c 333 EX 100", "OK"),
        ("GET a", "VALUE 1"),
        ("GET b", "VALUE 22"),
        ("GET missing", "NOT_FOUND"),
        ("DEL b", "OK"),
        ("DEL b", "NOT_FOUND"),
        ("BADCMD", "ERROR unknown command"),
        ("GET", "ERROR wrong number of arguments for 'get'"),
        ("SET x y EX 0", "ERROR invalid expire time"),
    ]
    requests = [request for request, _ in sequence]
    check.equal("the known sequence", lines("nc", address, requests), [reply for _, reply in sequence])
    # Arity and unknown-command errors never reach a command, so they count
    # as errors only; the failed SET ran, so it counts as a set and an error.
    stats_line = "gets:3 sets:4 dels:2 errors:3 keys:2 bytes:4"
    check.equal("exact STATS", lines("socat", address, ["STATS"]), [stats_line])

    latency = session("nc", address, b"LATENCY\n").splitlines()
    check.equal("LATENCY ends with END", latency[-1:], [b"END"])
    counts: dict[str, int] = {}
    for line in latency[:-1]:
        match = _LATENCY_LINE.match(line)
        check.true("LATENCY line format", match is not None, line)
        p50, p95, p99 = (int(match.group(index)) for index in (3, 4, 5))
        check.true(f"percentiles ordered in {line!r}", p50 <= p95 <= p99)
        counts[match.group(1).decode()] = int(match.group(2))
    check.equal(
        "LATENCY counts match the sequence",
        {name: counts.get(name) for name in ("get", "set", "del", "stats")},
        {"get": 3, "set": 4, "del": 2, "stats": 1},
    )
    check.equal("STATS and LATENCY change no counter", lines("socat", address, ["STATS"]), [stats_line])
