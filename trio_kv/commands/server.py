"""Redis server commands: TIME, SHUTDOWN, SLOWLOG and LATENCY.

(CONFIG, INFO, CLIENT and COMMAND have a module each.) Wording follows
Redis 7 (src/server.c, slowlog.c, latency.c). What differs, and why:

* SHUTDOWN asks the async shell to stop (``server.request_shutdown()``, the
  path SIGTERM takes) and closes this connection without a reply, as Redis
  does. With the append-only log on, every shutdown flushes and fsyncs it,
  so ``SAVE`` and ``NOSAVE`` change nothing; in memory only
  (``--appendonly no``) ``SHUTDOWN SAVE`` is refused rather than silently
  losing the data it was asked to save. ``ABORT`` always finds no shutdown
  in progress (the grace period is not abortable).
* LATENCY HISTOGRAM reports the server's per-command latency histograms
  (request read to reply ready, see ``store.stats``) in Redis 7's shape, with
  power-of-two microsecond bucket bounds (1, 2, 4, ... us). LATENCY LATEST
  and RESET answer as a Redis with no latency monitor events does.
"""

from __future__ import annotations

import time

from ..protocol.replies import NO_REPLY, OK, Error, Map
from .connection import SYNTAX_ERROR
from .container import Container, subcommand
from .arguments import parse_int64
from .session import Session
from .table import CommandSpec

# Entries SLOWLOG GET returns without a count (Redis' default).
SLOWLOG_DEFAULT_COUNT = 10
# LATENCY HISTOGRAM bucket upper bounds in us: 1, 2, 4, ... about 12.7 days.
LATENCY_BUCKET_BOUNDS_US = [1 << power for power in range(41)]


def cmd_time(session: Session, args: list[bytes]) -> list[bytes]:
    now_us = time.time_ns() // 1000
    return [b"%d" % (now_us // 1_000_000), b"%d" % (now_us % 1_000_000)]


def cmd_shutdown(session: Session, args: list[bytes]) -> object:
    options = {arg.lower() for arg in args[1:]}
    if not options <= {b"nosave", b"save", b"now", b"force", b"abort"}:
        return SYNTAX_ERROR
    if {b"save", b"nosave"} <= options or (b"abort" in options and len(options) > 1):
        return SYNTAX_ERROR
    if b"abort" in options:
        return Error("ERR No shutdown in progress.")
    if b"save" in options and session.server.persistence is None:
        return Error("ERR SHUTDOWN SAVE is not supported: trio_kv keeps no data on disk. Use SHUTDOWN NOSAVE.")
    session.server.request_shutdown()
    session.closing = True
    return NO_REPLY


def slowlog_get(session: Session, args: list[bytes]) -> object:
    if len(args) > 3:
        return Error("ERR unknown subcommand or wrong number of arguments for 'GET'. Try SLOWLOG HELP.")
    count = SLOWLOG_DEFAULT_COUNT
    if len(args) == 3:
        parsed = parse_int64(args[2])
        if parsed is None or parsed < -1:
            return Error("ERR count should be greater than or equal to -1")
        count = parsed
    return [
        [
            entry.id,
            entry.timestamp_s,
            entry.duration_us,
            list(entry.args),
            entry.client_address.encode(),
            entry.client_name,
        ]
        for entry in session.server.slowlog.get(count)
    ]


def slowlog_len(session: Session, args: list[bytes]) -> int:
    return len(session.server.slowlog)


def slowlog_reset(session: Session, args: list[bytes]) -> object:
    session.server.slowlog.reset()
    return OK


def latency_histogram(session: Session, args: list[bytes]) -> Map:
    stats = session.stats
    recorded = stats.command_table()
    if len(args) > 2:
        names = list(dict.fromkeys(arg.decode("utf-8", "replace").lower() for arg in args[2:]))
    else:
        names = list(recorded)
    commands = []
    for name in names:
        if name not in recorded:
            continue  # unknown, or never called: Redis leaves both out
        total, cumulative = stats.latency_cumulative(name, LATENCY_BUCKET_BOUNDS_US)
        buckets = []
        previous = 0
        for bound, count in zip(LATENCY_BUCKET_BOUNDS_US, cumulative):
            if count > previous:
                buckets.append((bound, count))
            previous = count
        commands.append((name.encode(), Map([(b"calls", total), (b"histogram_usec", Map(buckets))])))
    return Map(commands)


def latency_latest(session: Session, args: list[bytes]) -> list:
    return []


def latency_reset(session: Session, args: list[bytes]) -> int:
    return 0  # the number of event series reset: there are none


_SLOWLOG_ADMIN = "admin loading stale"
_LATENCY_ADMIN = "admin noscript loading stale"

SLOWLOG = Container(
    "slowlog",
    [
        subcommand(
            "get", -2, _SLOWLOG_ADMIN, "GET [<count>]",
            "Return top <count> entries from the slowlog (default: 10, -1 mean all).", slowlog_get, "2.2.12",
        ),
        subcommand("len", 2, _SLOWLOG_ADMIN, "LEN", "Return the length of the slowlog.", slowlog_len, "2.2.12"),
        subcommand("reset", 2, _SLOWLOG_ADMIN, "RESET", "Reset the slowlog.", slowlog_reset, "2.2.12"),
    ],
)

LATENCY = Container(
    "latency",
    [
        subcommand(
            "histogram", -2, _LATENCY_ADMIN, "HISTOGRAM [COMMAND ...]",
            "Return a cumulative distribution of latencies for the named commands (all if none).",
            latency_histogram, "7.0.0",
        ),
        subcommand(
            "latest", 2, _LATENCY_ADMIN, "LATEST", "Return the latest latency samples for all events (none).",
            latency_latest, "2.8.13",
        ),
        subcommand(
            "reset", -2, _LATENCY_ADMIN, "RESET [<event> ...]", "Reset latency data of event classes (none).",
            latency_reset, "2.8.13",
        ),
    ],
)


def _spec(name: str, arity: int, flags: str, summary: str, handler) -> CommandSpec:
    return CommandSpec(name, arity, frozenset(flags.split()), summary, handler, group="server")


SPECS: list[CommandSpec] = [
    _spec("time", 1, "loading stale fast", "Returns the server time.", cmd_time),
    _spec(
        "shutdown", -1, "admin noscript loading stale no_multi allow_busy",
        "Stops the server (the append-only log, if on, is flushed and fsynced).", cmd_shutdown,
    ),
    _spec("slowlog", -2, "", "A container for slow log commands.", SLOWLOG),
    _spec("latency", -2, "stats", "A container for latency diagnostics commands.", LATENCY),
]
