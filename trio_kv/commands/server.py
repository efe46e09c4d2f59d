"""Redis server commands: TIME, SHUTDOWN, SLOWLOG and LATENCY.

(CONFIG, INFO, CLIENT and COMMAND have a module each.) Wording follows
Redis 7 (src/server.c, slowlog.c, latency.c). What differs, and why:

* SHUTDOWN asks the async shell to stop (``session.control.request_shutdown()``, the
  path SIGTERM takes) and closes this connection without a reply, as Redis
  does. With the append-only log on, every shutdown flushes and fsyncs it,
  so ``SAVE`` and ``NOSAVE`` change nothing; in memory only
  (``--appendonly no``) ``SHUTDOWN SAVE`` is refused rather than silently
  losing the data it was asked to save. ``ABORT`` always finds no shutdown
  in progress (the grace period is not abortable).
* LATENCY HISTOGRAM reports the server's per-command latency histograms
  (request read to reply ready, see ``store.stats``) in Redis 7's shape, with
  power-of-two microsecond bucket bounds (1, 2, 4, ... us). A subcommand has
  its own histogram (``client|id``); naming a container command
  (``client``) reports each of its subcommands, as Redis.
* LATENCY LATEST, HISTORY, RESET, DOCTOR and GRAPH read the latency monitor
  (``store.latency_monitor``; on once ``CONFIG SET latency-monitor-threshold``
  is above 0): the events are ``command``, ``fast-command`` and
  ``expire-cycle``. Replies have Redis' shapes; DOCTOR's report keeps
  Redis' summary lines and gives advice for trio_kv, and GRAPH draws each
  sample as a column of ``#`` (Redis draws a sparkline) under Redis'
  header.
"""

from __future__ import annotations

import time

from ..protocol.replies import NO_REPLY, OK, Error, Map, Verbatim
from .connection import SYNTAX_ERROR
from .container import Container, Subcommand
from .arguments import parse_int64
from .session import Session
from .table import CommandSpec, InMulti, Lock

# Entries SLOWLOG GET returns without a count (Redis' default).
SLOWLOG_DEFAULT_COUNT = 10
# LATENCY GRAPH width (Redis' LATENCY_GRAPH_COLS): the newest samples drawn.
GRAPH_COLUMNS = 80
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
    if b"save" in options and session.control.log is None:
        return Error("ERR SHUTDOWN SAVE is not supported: trio_kv keeps no data on disk. Use SHUTDOWN NOSAVE.")
    session.control.request_shutdown()
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
        for entry in session.store.slowlog.get(count)
    ]


def slowlog_len(session: Session, args: list[bytes]) -> int:
    return len(session.store.slowlog)


def slowlog_reset(session: Session, args: list[bytes]) -> object:
    session.store.slowlog.reset()
    return OK


def _histogram_names(recorded: dict, args: list[bytes]) -> list[str]:
    """The recorded names LATENCY HISTOGRAM reports: all, or each named
    command with its subcommands (``client`` -> ``client|id``...)."""
    if len(args) == 2:
        return list(recorded)
    names: dict[str, None] = {}
    for arg in args[2:]:
        wanted = arg.decode("utf-8", "replace").lower()
        for name in recorded:
            if name == wanted or ("|" not in wanted and name.startswith(wanted + "|")):
                names[name] = None
    return list(names)


def latency_histogram(session: Session, args: list[bytes]) -> Map:
    stats = session.stats
    commands = []
    for name in _histogram_names(stats.command_table(), args):
        total, cumulative = stats.latency_cumulative(name, LATENCY_BUCKET_BOUNDS_US)
        if not total:
            continue  # no latency sample (latency-tracking was off): Redis leaves it out
        buckets = []
        previous = 0
        for bound, count in zip(LATENCY_BUCKET_BOUNDS_US, cumulative):
            if count > previous:
                buckets.append((bound, count))
            previous = count
        commands.append((name.encode(), Map([(b"calls", total), (b"histogram_usec", Map(buckets))])))
    return Map(commands)


def latency_latest(session: Session, args: list[bytes]) -> list:
    return [
        [event.encode(), at_s, latency_ms, max_ms]
        for event, at_s, latency_ms, max_ms in session.store.latency_monitor.latest()
    ]


def latency_history(session: Session, args: list[bytes]) -> list:
    event = args[2].decode("utf-8", "replace")
    return [[at_s, latency_ms] for at_s, latency_ms in session.store.latency_monitor.history(event)]


def latency_reset(session: Session, args: list[bytes]) -> int:
    """How many event series were forgotten (all, or the named ones)."""
    monitor = session.store.latency_monitor
    if len(args) == 2:
        return monitor.reset()
    return monitor.reset([arg.decode("utf-8", "replace") for arg in args[2:]])


# Advice LATENCY DOCTOR gives per event (trio_kv's own words).
DOCTOR_ADVICE = {
    "command": (
        "- Commands without the 'fast' flag took longer than the threshold. SLOWLOG GET names them "
        "(CONFIG SET slowlog-log-slower-than <microseconds> to log them). KEYS, SCAN with a huge COUNT, "
        "FLUSHALL and multi-key commands over many keys are the usual causes; values of many MiB cost "
        "time to copy."
    ),
    "fast-command": (
        "- Commands flagged 'fast' (O(1) or O(log N)) took longer than the threshold: the process was "
        "probably not scheduled (a busy or oversubscribed machine, swapping, or a garbage collection "
        "pause); more --workers than CPU cores makes this worse."
    ),
    "expire-cycle": (
        "- Active expiry of many keys at once took longer than the threshold: spread the expiry times "
        "of large batches of keys."
    ),
}


def latency_doctor(session: Session, args: list[bytes]) -> Verbatim:
    store = session.store
    monitor = store.latency_monitor
    events = monitor.events()
    if not events and not monitor.threshold_ms:
        text = (
            "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this server. You may use "
            '"CONFIG SET latency-monitor-threshold <milliseconds>." in order to enable it.\n'
        )
        return Verbatim("txt", text.encode())
    if not events:
        text = (
            "Dave, no latency spike was observed during the lifetime of this server, not in the slightest "
            "bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n"
        )
        return Verbatim("txt", text.encode())
    lines = ["Dave, I have observed latency spikes in this server. You don't mind talking about it, do you Dave?", ""]
    advice = []
    for number, event in enumerate(events, 1):
        summary = monitor.summary(event)
        period = summary.period_s / summary.samples if summary.samples else 0.0
        lines.append(
            f"{number}. {event}: {summary.samples} latency spikes (average {summary.average_ms}ms, "
            f"mean deviation {summary.mean_deviation_ms}ms, period {period:.2f} sec). "
            f"Worst all time event {summary.max_ms}ms."
        )
        if event in DOCTOR_ADVICE:
            advice.append(DOCTOR_ADVICE[event])
    if advice:
        lines += ["", "I have a few advices for you:", "", *advice]
    return Verbatim("txt", ("\n".join(lines) + "\n").encode())


GRAPH_ROWS = 4


def _ago(elapsed_s: int) -> str:
    if elapsed_s < 60:
        return f"{elapsed_s}s"
    if elapsed_s < 3600:
        return f"{elapsed_s // 60}m"
    if elapsed_s < 86400:
        return f"{elapsed_s // 3600}h"
    return f"{elapsed_s // 86400}d"


def latency_graph(session: Session, args: list[bytes]) -> object:
    event = args[2].decode("utf-8", "replace")
    monitor = session.store.latency_monitor
    max_ms = monitor.max_ms(event)
    if max_ms is None:
        return Error(f"ERR No samples available for event '{event}'")
    samples = monitor.history(event)[-GRAPH_COLUMNS:]
    latencies = [latency for _, latency in samples]
    high, low = (max(latencies), min(latencies)) if latencies else (0, 0)
    lines = [f"{event} - high {high} ms, low {low} ms (all time high {max_ms} ms)", "-" * GRAPH_COLUMNS]
    for row in range(GRAPH_ROWS, 0, -1):
        # A sample fills the rows up to its share of the highest one.
        lines.append(
            "".join("#" if high and latency * GRAPH_ROWS >= row * high else " " for latency in latencies).rstrip()
        )
    now_s = int(time.time())
    labels = [_ago(max(0, now_s - at_s)) for at_s, _ in samples]
    # Labels printed vertically, one character per row, under their column.
    for index in range(max((len(label) for label in labels), default=0)):
        lines.append("".join(label[index] if index < len(label) else " " for label in labels).rstrip())
    return Verbatim("txt", ("\n".join(lines) + "\n").encode())


_SLOWLOG_ADMIN = ("admin", "loading", "stale")
_LATENCY_ADMIN = ("admin", "noscript", "loading", "stale")

SLOWLOG = Container(
    "slowlog",
    [
        Subcommand(
            name="get", arity=-2, lock=Lock.READ, flags=_SLOWLOG_ADMIN, usage="GET [<count>]",
            since="2.2.12", handler=slowlog_get,
            summary="Return top <count> entries from the slowlog (default: 10, -1 mean all).",
        ),
        Subcommand(
            name="len", arity=2, lock=Lock.READ, flags=_SLOWLOG_ADMIN, usage="LEN", since="2.2.12",
            handler=slowlog_len, summary="Return the length of the slowlog.",
        ),
        Subcommand(
            name="reset", arity=2, lock=Lock.READ, flags=_SLOWLOG_ADMIN, usage="RESET",
            since="2.2.12", handler=slowlog_reset, summary="Reset the slowlog.",
        ),
    ],
)

LATENCY = Container(
    "latency",
    [
        Subcommand(
            name="histogram", arity=-2, lock=Lock.READ, flags=_LATENCY_ADMIN,
            usage="HISTOGRAM [COMMAND ...]", since="7.0.0", handler=latency_histogram,
            summary="Return a cumulative distribution of latencies for the named commands (all if none).",
        ),
        Subcommand(
            name="latest", arity=2, lock=Lock.READ, flags=_LATENCY_ADMIN, usage="LATEST",
            since="2.8.13", handler=latency_latest, summary="Return the latest latency samples for all events.",
        ),
        Subcommand(
            name="history", arity=3, lock=Lock.READ, flags=_LATENCY_ADMIN,
            usage="HISTORY <event>", since="2.8.13", handler=latency_history,
            summary="Return time-latency samples for the <event> class.",
        ),
        Subcommand(
            name="reset", arity=-2, lock=Lock.READ, flags=_LATENCY_ADMIN,
            usage="RESET [<event> ...]", since="2.8.13", handler=latency_reset,
            summary="Reset latency data of one or more <event> classes (default: all).",
        ),
        Subcommand(
            name="doctor", arity=2, lock=Lock.READ, flags=_LATENCY_ADMIN, usage="DOCTOR",
            since="2.8.13", handler=latency_doctor, summary="Return a human readable latency analysis report.",
        ),
        Subcommand(
            name="graph", arity=3, lock=Lock.READ, flags=_LATENCY_ADMIN,
            usage="GRAPH <event>", since="2.8.13", handler=latency_graph,
            summary="Return an ASCII latency graph for the <event> class.",
        ),
    ],
)


SPECS: list[CommandSpec] = [
    CommandSpec(
        name="time", arity=1, lock=Lock.READ, flags=("loading", "stale", "fast"), since="2.6.0", group="server",
        handler=cmd_time, summary="Returns the server time.",
    ),
    CommandSpec(
        name="shutdown", arity=-1, lock=Lock.READ,
        flags=("admin", "noscript", "loading", "stale", "no_multi", "allow_busy"), in_multi=InMulti.REFUSE,
        since="1.0.0", group="server", handler=cmd_shutdown,
        summary="Stops the server (the append-only log, if on, is flushed and fsynced).",
    ),
    CommandSpec(
        name="slowlog", arity=-2, lock=Lock.READ, since="2.2.12", group="server", handler=SLOWLOG,
        summary="A container for slow log commands.",
    ),
    CommandSpec(
        name="latency", arity=-2, lock=Lock.READ, reads_stats=True, since="2.8.13", group="server", handler=LATENCY,
        summary="A container for latency diagnostics commands.",
    ),
]
