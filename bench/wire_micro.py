#!/usr/bin/env python3
"""In-process cost of RESP request packing and reply parsing, no sockets.

Compares, on the same bytes in the same run:

* packers: the project's ``pack_commands`` (protocol/resp_pack.py, plain
  Python), hiredis' C ``pack_command`` one command at a time and joined
  (what the client used before), and the replicator's hand-made
  ``repl_put_many`` (REPL.PUT only);
* reply parsers: the typed ``ReplyParser`` (protocol/resp_reply.py: every
  RESP type kept, bounded; the peer links' and, with its own vocabulary,
  the CLI's), and hiredis' ``Reader`` (the client's ``ReplyReader``: C,
  plain Python values, no status/bulk distinction). ``--baseline MODULE``
  adds a column for another ``ReplyParser`` (an older copy of the module,
  importable by that name) for an A/B in the same run.

Traffic: a cluster link's (TKV.REPL.PUT with one pair and with 64, their
acks ``:1`` and arrays of 64 ``:1``) and a client's (SET/GET of 100-byte
values, ``+OK``, bulk replies, MGET arrays, a 10,000-item LRANGE reply fed
in 64 KiB pieces). Prints microseconds per request or reply, the median of
``--runs`` runs, in CPU time. A script that prints numbers; it asserts nothing.

    .venv/bin/python bench/wire_micro.py --runs 5 [--baseline some.module]
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import time
from collections.abc import Callable

import hiredis

from trio_kv.client.wire.replies import NEED_DATA as HIREDIS_NEED_DATA
from trio_kv.client.wire.replies import ReplyReader
from trio_kv.protocol.resp_pack import pack_commands
from trio_kv.protocol.resp_reply import ReplyParser
from trio_kv.server.cluster.replicator import repl_put_many

PIECE_BYTES = 64 * 1024


def hiredis_pack(requests: list[list[bytes]]) -> bytes:
    pack = hiredis.pack_command
    return b"".join([pack(tuple(args)) for args in requests])  # type: ignore[arg-type]


def timed(function: Callable[[], object], items: int, runs: int) -> float:
    """Median CPU microseconds per item of ``function`` over ``runs`` runs
    (this process's CPU time: on a shared machine the wall clock counts the
    other processes' turns too)."""
    samples = []
    for _ in range(runs):
        started = time.process_time()
        function()
        samples.append((time.process_time() - started) / items * 1e6)
    return statistics.median(samples)


def parse_all(reader: object, feed: str, need_data: object, data: bytes, count: int) -> None:
    """Feed ``data`` in 64 KiB pieces, reading every reply as it completes."""
    give, take = getattr(reader, feed), reader.next_reply  # type: ignore[attr-defined]
    got = 0
    for at in range(0, len(data), PIECE_BYTES):
        give(data[at : at + PIECE_BYTES])
        while take() is not need_data:
            got += 1
    assert got == count, (got, count)


def parse_all_typed(parser_class: type, data: bytes, count: int) -> None:
    need_data = sys.modules[parser_class.__module__].NEED_DATA
    parse_all(parser_class(), "receive_data", need_data, data, count)


def parse_all_hiredis(data: bytes, count: int) -> None:
    parse_all(ReplyReader(), "feed", HIREDIS_NEED_DATA, data, count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--baseline", help="a module with another ReplyParser, for an A/B column")
    options = parser.parse_args()
    baseline = importlib.import_module(options.baseline).ReplyParser if options.baseline else None
    runs, n = options.runs, options.requests
    clock = b"0123456789abcdef01234567"  # a 24-byte clock, as the replicator sends
    keys = [b"user:%08d" % i for i in range(n)]
    value = os.urandom(50).hex().encode()  # 100 bytes

    print(f"load: {os.getloadavg()[0]:.2f} (1-min), runs {runs}, median us per request/reply")
    print("\n## pack (us per request)")
    puts = [[b"TKV.REPL.PUT", key, clock] for key in keys]
    batches = [
        [b"TKV.REPL.PUT"] + [part for key in keys[i : i + 64] for part in (key, clock)] for i in range(0, n, 64)
    ]
    pairs = [[(key, clock) for key in keys[i : i + 64]] for i in range(0, n, 64)]
    sets = [[b"SET", key, value] for key in keys]
    gets = [[b"GET", key] for key in keys]
    assert pack_commands(puts) == hiredis_pack(puts)
    assert pack_commands(batches) == hiredis_pack(batches) == b"".join(repl_put_many(p) for p in pairs)
    cases_pack = [
        ("REPL.PUT 1 pair", puts, len(puts), lambda p=pairs: [repl_put_many([pair]) for batch in p for pair in batch]),
        ("REPL.PUT 64 pairs", batches, len(batches), lambda p=pairs: [repl_put_many(batch) for batch in p]),
        ("SET 100-byte value", sets, len(sets), None),
        ("GET", gets, len(gets), None),
    ]
    print(f"{'traffic':24} {'pack_commands':>16} {'hiredis pack':>14} {'repl_put_many':>14}")
    for name, requests, count, special in cases_pack:
        pure = timed(lambda r=requests: pack_commands(r), count, runs)
        c = timed(lambda r=requests: hiredis_pack(r), count, runs)
        hand = f"{timed(special, count, runs):14.3f}" if special else f"{'-':>14}"
        print(f"{name:24} {pure:16.3f} {c:14.3f} {hand}")

    print("\n## parse (us per reply; fed in 64 KiB pieces)")
    bulk = b"$%d\r\n%b\r\n" % (len(value), value)
    cases_parse = [
        ("ack :1", b":1\r\n" * n, n),
        ("ack array of 64 :1", (b"*64\r\n" + b":1\r\n" * 64) * (n // 64), n // 64),
        ("+OK", b"+OK\r\n" * n, n),
        ("bulk 100 bytes", bulk * n, n),
        ("MGET array of 10", (b"*10\r\n" + bulk * 10) * (n // 10), n // 10),
        ("LRANGE 10,000 items", b"*10000\r\n" + bulk * 10_000, 1),
    ]
    print(f"{'traffic':24} {'ReplyParser':>12} {'hiredis':>10} {'baseline' if baseline else '':>10}")
    for name, data, count in cases_parse:
        typed = timed(lambda d=data, c=count: parse_all_typed(ReplyParser, d, c), count, runs)
        c = timed(lambda d=data, c=count: parse_all_hiredis(d, c), count, runs)
        other = ""
        if baseline is not None:
            other = f"{timed(lambda d=data, c=count: parse_all_typed(baseline, d, c), count, runs):10.3f}"
        print(f"{name:24} {typed:12.3f} {c:10.3f} {other:>10}")


if __name__ == "__main__":
    main()
