#!/usr/bin/env python3
"""What anti-entropy's Tictac trees add to every applied write, in process.

Prints Markdown, asserts nothing. The same stores (cluster mode, memory
only) run the same jobs with the trees subscribed and unsubscribed
(``KeyTrees.stop``/``start``), alternating, so both sides see the same
machine load; each figure is the median over ``--repeat`` pairs of
microseconds of this thread's CPU time (``time.thread_time``) per write
(a do-nothing subscriber stands in for the log on both sides, so the
effects sink takes its several-subscribers path either way, as with
``--appendonly yes``):

* a coordinator's store job: one SET per job on a fresh key (its new dot);
* a replica's TKV.REPL.PUT job: node A's next clock of a key B holds
  (the usual replicated write).

    .venv/bin/python bench/tictac_bench.py [--keys 20000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.versions_bench import NODE_A, NODE_B, PEER_TABLE, VALUE, run, session, versions  # noqa: E402
from trio_kv.commands.redis import REDIS_COMMANDS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    options = parser.parse_args()
    keys = options.keys
    figures: dict[tuple[str, bool], list[float]] = {}
    for round_ in range(options.repeat):
        for trees_on in ((True, False) if round_ % 2 else (False, True)):
            a, b = session(NODE_A), session(NODE_B)
            for node in (a, b):
                if not trees_on:
                    versions(node).trees.stop()
                # A stand-in for the log (a server with --appendonly yes has
                # it): the sink delivers to several subscribers either way.
                node.keyspace.effects.subscribe(lambda unit: None)
            names = [b"r%d:%012d" % (round_, i) for i in range(keys)]
            set_us = run(a, REDIS_COMMANDS, [[b"SET", key, VALUE] for key in names], 1, False) * 1e6
            # B holds A's clocks; A writes again; B applies the next ones.
            for key in names:
                versions(b).apply_remote(key, versions(a).clock_of(key))  # type: ignore[arg-type]
                b.keyspace.effects.end_command()
            run(a, REDIS_COMMANDS, [[b"SET", key, VALUE + b"2"] for key in names], 100, False)
            puts = [[b"TKV.REPL.PUT", key, versions(a).clock_of(key)] for key in names]
            put_us = run(b, PEER_TABLE, puts, 1, False) * 1e6  # type: ignore[arg-type]
            figures.setdefault(("SET job", trees_on), []).append(set_us)
            figures.setdefault(("REPL.PUT job", trees_on), []).append(put_us)
    print(f"# Tictac trees per applied write: {keys} keys, median of {options.repeat} alternating pairs\n")
    print("| job | trees off (us) | trees on (us) | added (us) |")
    print("|---|---|---|---|")
    for job in ("SET job", "REPL.PUT job"):
        off = statistics.median(figures[(job, False)])
        on = statistics.median(figures[(job, True)])
        print(f"| {job} | {off:.2f} | {on:.2f} | {on - off:+.2f} |")


if __name__ == "__main__":
    main()
