"""commands/text.py, the line protocol's handlers: they return reply values
(never bytes), and protocol/text.py's encoder turns each into exactly the
bytes the line protocol has always sent."""

from __future__ import annotations

import time

import pytest

from trio_kv.commands.session import Session
from trio_kv.commands.text import TEXT_COMMANDS
from trio_kv.commands.wire import LINE
from trio_kv.config import Config
from trio_kv.protocol.replies import NoReply, SimpleString
from trio_kv.protocol.text import Fields, Labelled, Listing, Table, encode_text_reply
from trio_kv.protocol.replies import Error
from trio_kv.store.engine import Job, Store, run_batch
from trio_kv.store.local_control import LocalControl

_VALUE_TYPES = (SimpleString, Labelled, Listing, Fields, Table, Error, NoReply)

# (request lines, the bytes a client reads), run in order on one store.
CASES: list[tuple[str, list[bytes]]] = [
    ("ping", [b"PING"]),
    ("set", [b"SET k v"]),
    ("set", [b"SET t v EX 100"]),
    ("set", [b"SET t2 v PX 0"]),
    ("get", [b"GET k", b"GET missing"]),
    ("del", [b"DEL k", b"DEL k"]),
    ("ttl", [b"TTL t", b"TTL missing"]),
    ("keys", [b"KEYS", b"KEYS t"]),
    ("range", [b"RANGE a z", b"RANGE t u 1", b"RANGE u z"]),
    ("stats", [b"STATS"]),
    ("latency", [b"LATENCY"]),
    ("auth", [b"AUTH pw"]),
    ("quit", [b"QUIT"]),
    ("post", [b"POST / HTTP/1.1"]),
]
EXPECTED = [
    [b"PONG\n"],
    [b"OK\n"],
    [b"OK\n"],
    [b"ERROR invalid expire time\n"],
    [b"VALUE v\n", b"NOT_FOUND\n"],
    [b"OK\n", b"NOT_FOUND\n"],
    None,  # TTL: milliseconds left vary
    [b"KEYS 1\nt\n", b"KEYS 1\nt\n"],
    [b"RANGE 1\nt\n", b"RANGE 1\nt\n", b"RANGE 0\n"],
    [b"gets:2 sets:3 dels:2 errors:1 keys:1 bytes:1\n"],
    None,  # LATENCY: the numbers vary
    [b"ERROR AUTH called without any password configured\n"],
    [b"OK\n"],
    [b""],
]


def _run(store: Store, line: bytes) -> object:
    job = Job(Session(1, store, LocalControl(store), wire=LINE), TEXT_COMMANDS, [line.split()], time.perf_counter())
    while True:
        run_batch(store, [job])
        if job.sliced is None:
            break
    (reply,) = job.replies
    return reply


def test_every_command_is_covered() -> None:
    assert {name for name, _ in CASES} == {name.decode() for name in TEXT_COMMANDS.by_name} - {"host:"}


@pytest.mark.parametrize("case", range(len(CASES)))
def test_handlers_return_reply_values_not_bytes(case: int) -> None:
    store = Store(Config())
    replies: list[object] = []
    for index in range(case + 1):
        replies = [_run(store, line) for line in CASES[index][1]]
    for reply in replies:
        assert not isinstance(reply, (bytes, bytearray, memoryview, list)), reply
        assert isinstance(reply, _VALUE_TYPES), reply
    wire = [encode_text_reply(reply) for reply in replies]
    if EXPECTED[case] is not None:
        assert wire == EXPECTED[case]


def test_ttl_and_latency_lines() -> None:
    store = Store(Config())
    _run(store, b"SET t v EX 100")
    ttl = encode_text_reply(_run(store, b"TTL t"))
    assert ttl.startswith(b"TTL ") and 99_000 < int(ttl[4:]) <= 100_000
    latency = encode_text_reply(_run(store, b"LATENCY"))
    lines = latency.split(b"\n")
    assert lines[-2:] == [b"END", b""]
    assert lines[0].startswith(b"set count:1 p50_us:") and b" p95_us:" in lines[0] and b" p99_us:" in lines[0]


def test_keys_are_listed_in_display_order() -> None:
    """Sorted as displayed: a key that needs quoting sorts by its quote."""
    store = Store(Config())
    for key in (b"b", b"a\n", b"A", b"\x7f"):
        store.keyspace.set(key, b"v")
    reply = _run(store, b"KEYS")
    assert encode_text_reply(reply) == b'KEYS 4\n"\\x7f"\n"a\\n"\nA\nb\n'
