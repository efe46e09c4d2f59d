"""CONFIG GET / SET / RESETSTAT: the server's configuration as Redis tools read it.

CONFIG GET answers Redis' parameter names with values that are true for
trio_kv (``databases 1``; ``save ""``: there
are no timed snapshots, compaction is driven by the log's size and by
SAVE/BGSAVE/BGREWRITEAOF), the persistence settings (``appendonly``:
whether the log runs; ``appendfsync``; ``dir``: the data directory, or the
working directory when persistence is off; ``auto-aof-rewrite-*``,
``aof-load-truncated``), the two SLOWLOG settings live, and trio_kv's own
options under their command-line names (``max-batch-commands``...).
Patterns are Redis globs, matched without regard to case, as Redis does.
redis-benchmark reads ``save`` and ``appendonly`` at start.

CONFIG SET changes what can change at run time: ``maxmemory`` (bytes, or
with Redis' units k/kb/m/mb/g/gb; 0, the default, is no limit; above it a
command flagged ``denyoom`` evicts by ``maxmemory-policy`` first, or is
refused with ``-OOM`` under ``noeviction``: store/eviction.py),
``maxmemory-policy`` (Redis' eight; only ``noeviction`` in cluster mode),
``maxmemory-samples`` (1 to 64), ``slowlog-log-slower-than``,
``slowlog-max-len``, ``latency-monitor-threshold`` (ms; 0, the default,
turns the latency monitor off), ``latency-tracking`` (yes/no: record the
per-command latency histograms), ``latency-tracking-info-percentiles`` (up
to 64 numbers in [0, 100], what INFO latencystats reports) and
``requirepass`` (the live password every protocol
checks, ``Store.requirepass``; ``""`` removes it; as in Redis, CONFIG GET
shows it in clear, and changing it neither logs out nor disconnects anyone),
``protected-mode`` (``yes``/``no``), ``maxclients`` (applied to new connections at once, clamped below the
open-file limit exactly as at start-up; CONFIG GET shows the clamped value;
connections already open stay), ``port`` (moves the main listener through
``ServerControl.change_port``, server.main_port: the new port is
bound before the old one closes; a port that cannot be listened on is
Redis' "Unable to listen on this port" error; 0 closes it, as in Redis) and
``client-query-buffer-limit`` (memory units, at least 1mb as in Redis;
read by each new RESP connection). Any other known parameter may be "set" to
the value it already has (a no-op, so ``CONFIG SET save ""`` in test setups
works); another value is Redis' immutable-config error.

Several pairs are all or nothing, as in Redis 7: every value is validated
first; then they are applied, those whose apply can fail (``port``) last,
and when one fails the ones already applied get their previous values back,
newest first, and the reply is the failed one's error.

A *hidden* parameter (``key-load-delay``: trio_kv never delays loading) is
returned only when asked for by its exact name, as Redis does.

CONFIG RESETSTAT zeroes the counters, command statistics, error statistics
and latency histograms (``store.stats``), and the keyspace's
``expired_keys`` and ``evicted_keys``, as Redis does.

CONFIG REWRITE answers as Redis started without a config file does
(``-ERR The server is running without a config file``): trio_kv is
configured by its command line and environment only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..config import MAXMEMORY_POLICIES
from ..protocol.glob import glob_match
from ..protocol.replies import OK, Error, Map
from .connection import SYNTAX_ERROR
from .container import Container, Subcommand
from .arguments import INT64_MAX, parse_int64
from .auth import redact
from .info import percentile_label
from .session import Session
from .table import CommandSpec, Lock

NO_CONFIG_FILE = Error("ERR The server is running without a config file")
# How many percentiles latency-tracking-info-percentiles accepts (memory stays fixed).
MAX_INFO_PERCENTILES = 64


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    # The current value, from the session's store or the server (session.control).
    read: Callable[[Session], str]
    # For parameters CONFIG SET may change: stores a validated value.
    apply: Callable[[Session, Any], None] | None = None
    minimum: int = 0
    maximum: int = INT64_MAX
    # The value's parser (raises ValueError with Redis' reason); None: an
    # integer in [minimum, maximum].
    parse: Callable[[bytes], Any] | None = None
    # Listed only when asked for by exact name (Redis' HIDDEN_CONFIG).
    hidden: bool = False
    # The current value as ``apply`` takes it, kept to roll back; None: the
    # text ``read`` gives, parsed again (exact for every other parameter).
    current: Callable[[Session], Any] | None = None
    # ``apply`` may fail (raises ValueError with Redis' reason): applied after
    # the others, so a failure only ever has to undo changes that cannot fail.
    fallible: bool = False

    def current_value(self, session: Session) -> Any:
        if self.current is not None:
            return self.current(session)
        text = self.read(session).encode("utf-8", "surrogateescape")
        return int(text) if self.parse is None else self.parse(text)


def _fixed(value: str) -> Callable[[Session], str]:
    return lambda session: value


def _from_config(field: str) -> Callable[[Session], str]:
    def read(session: Session) -> str:
        value = getattr(session.store.config, field)
        return "" if value is None else str(value)

    return read


def _yes_no_from_config(field: str) -> Callable[[Session], str]:
    return lambda session: "yes" if getattr(session.store.config, field) else "no"


def _appendonly(session: Session) -> str:
    # Whether the log is running (a Store made without the server shell has none).
    return "no" if session.control.log is None else "yes"


def _data_dir(session: Session) -> str:
    # Relative paths are relative to the server's working directory, which it never changes.
    return os.getcwd() if session.control.log is None else os.path.abspath(session.config.data_dir)


def _set_requirepass(session: Session, password: bytes | None) -> None:
    session.store.requirepass = password


def _parse_password(raw: bytes) -> bytes | None:
    return raw or None  # "" removes the password (Redis' EMPTY_STRING_IS_NULL)


def _set_protected_mode(session: Session, on: bool) -> None:
    session.store.protected_mode = on


def _set_slowlog_threshold(session: Session, value: int) -> None:
    session.store.slowlog.threshold_us = value


def _set_slowlog_max_len(session: Session, value: int) -> None:
    session.store.slowlog.set_max_len(value)


def _parse_yes_no(raw: bytes) -> bool:
    value = raw.lower()
    if value not in (b"yes", b"no"):
        raise ValueError("argument must be 'yes' or 'no'")
    return value == b"yes"


def _set_latency_tracking(session: Session, value: bool) -> None:
    session.store.stats.latency_tracking = value


def _parse_percentiles(raw: bytes) -> tuple[float, ...]:
    """Redis' latency-tracking-info-percentiles: numbers separated by spaces."""
    values = []
    for word in raw.split():
        try:
            value = float(word)
        except ValueError:
            raise ValueError("Invalid latency-tracking-info-percentiles parameters") from None
        if not 0.0 <= value <= 100.0:
            raise ValueError("latency-tracking-info-percentiles parameters should sit between [0.0,100.0]")
        values.append(value)
    if len(values) > MAX_INFO_PERCENTILES:
        raise ValueError(f"at most {MAX_INFO_PERCENTILES} latency-tracking-info-percentiles are kept")
    return tuple(values)


def _read_percentiles(session: Session) -> str:
    return " ".join(percentile_label(value) for value in session.store.stats.latency_percentiles)


def _set_percentiles(session: Session, value: tuple[float, ...]) -> None:
    session.store.stats.latency_percentiles = value


def _set_latency_monitor_threshold(session: Session, value: int) -> None:
    session.store.latency_monitor.threshold_ms = value


# Redis' memtoull units: k/m/g are powers of 1000, kb/mb/gb of 1024.
MEMORY_UNITS = {b"": 1, b"b": 1, b"k": 1000, b"kb": 1024, b"m": 1000**2, b"mb": 1024**2, b"g": 1000**3, b"gb": 1024**3}
MEMORY_VALUE = re.compile(rb"([0-9]+)([a-z]*)")


def _parse_memory(raw: bytes, overflow: int | None = None) -> int:
    """A memory value; above INT64_MAX it is refused, or, when ``overflow``
    is given, answered as ``overflow`` (so the caller's range check speaks)."""
    match = MEMORY_VALUE.fullmatch(raw.lower())
    if match is None or match.group(2) not in MEMORY_UNITS:
        raise ValueError("argument must be a memory value")
    value = int(match.group(1)) * MEMORY_UNITS[match.group(2)]
    if value > INT64_MAX:
        if overflow is None:
            raise ValueError("argument must be a memory value")
        return overflow
    return value


def _parse_maxmemory_clients(raw: bytes) -> int:
    """Redis' checks (a memory value, or a percentage up to 100), then
    trio_kv's: clients are never evicted, so only 0 (off) is accepted."""
    if raw.endswith(b"%"):
        if not raw[:-1].isdigit():
            raise ValueError("argument must be a memory or percent value")
        if int(raw[:-1]) > 100:
            raise ValueError("percentage argument must be less or equal to 100")
        value = int(raw[:-1])
    else:
        try:
            value = _parse_memory(raw)
        except ValueError:
            raise ValueError("argument must be a memory or percent value") from None
    if value:
        raise ValueError("client eviction is not supported: maxmemory-clients can only be 0")
    return 0


def _set_nothing(session: Session, value: object) -> None:
    pass


def _set_hash_max_entries(session: Session, value: int) -> None:
    session.store.hash_max_listpack_entries = value


def _set_hash_max_value(session: Session, value: int) -> None:
    session.store.hash_max_listpack_value_bytes = value


def _parse_sanitize_dump_payload(raw: bytes) -> str:
    value = raw.lower().decode("ascii", "replace")
    if value not in ("yes", "no", "clients"):
        raise ValueError("argument(s) must be one of the following: no, yes, clients")
    return value


def _set_sanitize_dump_payload(session: Session, value: str) -> None:
    session.store.sanitize_dump_payload = value


def _set_maxmemory(session: Session, value: int) -> None:
    session.store.maxmemory_bytes = value


def _parse_maxmemory_policy(raw: bytes) -> str:
    value = raw.decode("utf-8", "replace").lower()
    if value not in MAXMEMORY_POLICIES:
        raise ValueError(f"argument(s) must be one of the following: {', '.join(MAXMEMORY_POLICIES)}")
    return value


def _set_maxmemory_policy(session: Session, value: str) -> None:
    # Cluster mode keeps noeviction: anti-entropy would bring evicted keys
    # back from the other replicas (store/eviction.py).
    store = session.store
    if value != "noeviction" and store.config.cluster_enabled:
        raise ValueError("cluster mode supports only noeviction")
    store.set_maxmemory_policy(value, store.evictor.samples)


def _set_maxmemory_samples(session: Session, value: int) -> None:
    store = session.store
    store.set_maxmemory_policy(store.evictor.policy, value)


def _set_max_clients(session: Session, value: int) -> None:
    # The server clamps it below the open-file limit and updates the cap.
    session.control.set_max_clients(value)


PORT_UNAVAILABLE = "Unable to listen on this port. Check server logs."


def _read_port(session: Session) -> str:
    return str(session.control.tcp_port)


def _set_port(session: Session, port: int) -> None:
    # The server binds the new port before closing the old one
    # (server.main_port) and logs why a bind failed, as Redis does.
    try:
        session.control.change_port(port)
    except OSError:
        raise ValueError(PORT_UNAVAILABLE) from None


# Redis' bounds for client-query-buffer-limit (config.c: 1mb to LONG_MAX).
MIN_QUERY_BUFFER_LIMIT_BYTES = 1024 * 1024


def _parse_query_buffer_limit(raw: bytes) -> int:
    value = _parse_memory(raw, INT64_MAX + 1)
    if not MIN_QUERY_BUFFER_LIMIT_BYTES <= value <= INT64_MAX:
        raise ValueError(f"argument must be between {MIN_QUERY_BUFFER_LIMIT_BYTES} and {INT64_MAX} inclusive")
    return value


def _set_query_buffer_limit(session: Session, value: int) -> None:
    # Read when a connection builds its RESP parser: applies to new connections.
    session.store.client_query_buffer_limit_bytes = value


PARAMETERS: list[Parameter] = [
    # Redis' names.
    Parameter("bind", _from_config("host")),
    Parameter("port", _read_port, _set_port, maximum=65535, fallible=True),
    Parameter("databases", _fixed("1")),
    Parameter("save", _fixed("")),
    Parameter("appendonly", _appendonly),
    Parameter("appendfsync", _from_config("appendfsync")),
    Parameter("auto-aof-rewrite-percentage", _from_config("aof_rewrite_percentage")),
    Parameter("auto-aof-rewrite-min-size", _from_config("aof_rewrite_min_size_bytes")),
    Parameter("aof-load-truncated", _yes_no_from_config("aof_load_truncated")),
    Parameter("maxmemory", lambda session: str(session.store.maxmemory_bytes), _set_maxmemory, parse=_parse_memory),
    Parameter(
        "maxmemory-policy", lambda session: session.store.evictor.policy, _set_maxmemory_policy,
        parse=_parse_maxmemory_policy, fallible=True,
    ),
    Parameter(
        "maxmemory-samples", lambda session: str(session.store.evictor.samples), _set_maxmemory_samples,
        minimum=1, maximum=64,
    ),
    # Redis' LFU defaults, fixed here (store/eviction_policy.py).
    Parameter("lfu-log-factor", _fixed("10")),
    Parameter("lfu-decay-time", _fixed("1")),
    # Clients are never evicted.
    Parameter("maxmemory-clients", _fixed("0"), _set_nothing, parse=_parse_maxmemory_clients),
    Parameter("maxclients", lambda session: str(session.control.max_clients), _set_max_clients, minimum=1),
    Parameter("timeout", _fixed("0")),
    Parameter(
        "requirepass",
        lambda session: (session.store.requirepass or b"").decode("utf-8", "surrogateescape"),
        _set_requirepass,
        parse=_parse_password,
        current=lambda session: session.store.requirepass,
    ),
    Parameter(
        "protected-mode",
        lambda session: "yes" if session.store.protected_mode else "no",
        _set_protected_mode,
        parse=_parse_yes_no,
    ),
    Parameter("tls-port", _from_config("tls_port")),
    Parameter("tls-cert-file", _from_config("tls_cert_file")),
    Parameter("tls-key-file", _from_config("tls_key_file")),
    Parameter("tls-ca-cert-file", _from_config("tls_ca_cert_file")),
    Parameter("tls-auth-clients", lambda session: "no" if session.store.config.tls_ca_cert_file is None else "yes"),
    Parameter("dir", _data_dir),
    Parameter("proto-max-bulk-len", _from_config("proto_max_bulk_len_bytes")),
    Parameter(
        "client-query-buffer-limit", lambda session: str(session.store.client_query_buffer_limit_bytes),
        _set_query_buffer_limit, parse=_parse_query_buffer_limit,
    ),
    Parameter(
        "slowlog-log-slower-than", lambda session: str(session.store.slowlog.threshold_us),
        _set_slowlog_threshold, minimum=-1,
    ),
    Parameter("slowlog-max-len", lambda session: str(session.store.slowlog.max_len), _set_slowlog_max_len),
    Parameter(
        "latency-tracking", lambda session: "yes" if session.store.stats.latency_tracking else "no",
        _set_latency_tracking, parse=_parse_yes_no,
    ),
    Parameter(
        "latency-tracking-info-percentiles", _read_percentiles, _set_percentiles, parse=_parse_percentiles,
        current=lambda session: session.store.stats.latency_percentiles,
    ),
    Parameter(
        "latency-monitor-threshold", lambda session: str(session.store.latency_monitor.threshold_ms),
        _set_latency_monitor_threshold,
    ),
    # Hashes have one encoding (commands/hash_value.py): kept, no effect.
    *[
        Parameter(
            f"hash-max-{encoding}-entries", lambda session: str(session.store.hash_max_listpack_entries),
            _set_hash_max_entries,
        )
        for encoding in ("listpack", "ziplist")
    ],
    *[
        Parameter(
            f"hash-max-{encoding}-value", lambda session: str(session.store.hash_max_listpack_value_bytes),
            _set_hash_max_value, parse=_parse_memory,
        )
        for encoding in ("listpack", "ziplist")
    ],
    Parameter(
        "sanitize-dump-payload", lambda session: session.store.sanitize_dump_payload,
        _set_sanitize_dump_payload, parse=_parse_sanitize_dump_payload,
    ),
    Parameter("daemonize", _fixed("no")),
    Parameter("replicaof", _fixed("")),
    Parameter("slaveof", _fixed("")),
    Parameter("key-load-delay", _fixed("0"), hidden=True),
    # trio_kv's own options, as spelled on the command line.
    Parameter("redis-port", _from_config("redis_port")),
    Parameter("data-dir", _from_config("data_dir")),
    Parameter("workers", _from_config("workers")),
    Parameter("shutdown-grace-seconds", _from_config("shutdown_grace_seconds")),
    Parameter("max-line-bytes", _from_config("max_line_bytes")),
    Parameter("max-key-bytes", _from_config("max_key_bytes")),
    Parameter("max-value-bytes", _from_config("max_value_bytes")),
    Parameter("max-keys-reply", _from_config("max_keys_reply")),
    Parameter("sorted-index", _yes_no_from_config("sorted_index")),
    Parameter("max-pending-reply-bytes", _from_config("max_pending_reply_bytes")),
    Parameter("max-batch-commands", _from_config("max_batch_commands")),
    Parameter("active-expire-interval-seconds", _from_config("active_expire_interval_seconds")),
    Parameter("log-level", _from_config("log_level")),
    Parameter("cluster-sloppy-quorum", _yes_no_from_config("cluster_sloppy_quorum")),
]
PARAMETERS_BY_NAME = {parameter.name: parameter for parameter in PARAMETERS}


def _matches(pattern: bytes, parameter: Parameter) -> bool:
    name = parameter.name.encode()
    if parameter.hidden:
        return pattern.lower() == name
    return glob_match(pattern, name, nocase=True)


def config_get(session: Session, args: list[bytes]) -> Map:
    patterns = args[2:]
    return Map(
        [
            (parameter.name.encode(), parameter.read(session).encode("utf-8", "surrogateescape"))
            for parameter in PARAMETERS
            if any(_matches(pattern, parameter) for pattern in patterns)
        ]
    )


def _set_failed(name: str, reason: str) -> Error:
    return Error(f"ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}")


def config_set(session: Session, args: list[bytes]) -> object:
    if len(args) % 2:
        return SYNTAX_ERROR
    changes: list[tuple[Parameter, Any]] = []
    seen: set[str] = set()
    for index in range(2, len(args), 2):
        sent_name = args[index].decode("utf-8", "replace")
        parameter = PARAMETERS_BY_NAME.get(sent_name.lower())
        if parameter is None:
            return Error(f"ERR Unknown option or number of arguments for CONFIG SET - '{sent_name}'")
        if parameter.name in seen:
            return _set_failed(parameter.name, "duplicate parameter")
        seen.add(parameter.name)
        raw = args[index + 1]
        if parameter.name == "requirepass":
            redact(args, index + 1)  # never in SLOWLOG (Redis' sensitive config)
        if parameter.apply is None:
            if raw != parameter.read(session).encode("utf-8", "surrogateescape"):
                return _set_failed(parameter.name, "can't set immutable config")
            continue
        if parameter.parse is not None:
            try:
                changes.append((parameter, parameter.parse(raw)))
            except ValueError as error:
                return _set_failed(parameter.name, str(error))
            continue
        value = parse_int64(raw)
        if value is None:
            return _set_failed(parameter.name, "argument couldn't be parsed into an integer")
        if not parameter.minimum <= value <= parameter.maximum:
            return _set_failed(
                parameter.name, f"argument must be between {parameter.minimum} and {parameter.maximum} inclusive"
            )
        changes.append((parameter, value))
    return _apply_all_or_nothing(session, changes)


def _apply_all_or_nothing(session: Session, changes: list[tuple[Parameter, Any]]) -> object:
    """Apply validated changes; when one fails (CONFIG SET port to a port in
    use), undo those applied, newest first, and answer Redis' error for it."""
    changes = sorted(changes, key=lambda change: change[0].fallible)  # stable: sent order otherwise
    previous = [parameter.current_value(session) for parameter, _ in changes]
    for applied, (parameter, value) in enumerate(changes):
        try:
            parameter.apply(session, value)  # type: ignore[misc]
        except ValueError as error:
            for (undone, _), old in reversed(list(zip(changes[:applied], previous))):
                undone.apply(session, old)
            return _set_failed(parameter.name, str(error))
    return OK


def config_resetstat(session: Session, args: list[bytes]) -> object:
    session.stats.reset()
    # Redis' resetServerStats zeroes these too. Plain counters that only
    # writers move, under the write lock: this runs under the read lock,
    # which keeps every writer out while it stores the zeros.
    keyspace = session.keyspace
    keyspace.expired_keys = keyspace.evicted_keys = 0
    return OK


def config_rewrite(session: Session, args: list[bytes]) -> Error:
    return NO_CONFIG_FILE


_ADMIN = ("admin", "noscript", "loading", "stale")

CONFIG = Container(
    "config",
    [
        Subcommand(
            name="get", arity=-3, lock=Lock.READ, flags=_ADMIN,
            usage="GET <pattern>", since="2.0.0", handler=config_get,
            summary="Return parameters matching the glob-like <pattern> and their values.",
        ),
        Subcommand(
            name="set", arity=-4, lock=Lock.READ, flags=_ADMIN,
            usage="SET <directive> <value>", since="2.0.0", handler=config_set,
            summary="Set the configuration <directive> to <value>.",
        ),
        Subcommand(
            name="resetstat", arity=2, lock=Lock.READ, flags=_ADMIN,
            usage="RESETSTAT", since="2.0.0", handler=config_resetstat,
            summary="Reset statistics reported by the INFO command.",
        ),
        Subcommand(
            name="rewrite", arity=2, lock=Lock.READ, flags=_ADMIN,
            usage="REWRITE", since="2.8.0", handler=config_rewrite,
            summary="Rewrite the configuration file (there is none: configuration comes from the command line).",
        ),
    ],
)

SPECS: list[CommandSpec] = [
    CommandSpec(
        name="config", arity=-2, lock=Lock.READ, reads_stats=True, since="2.0.0", group="server", handler=CONFIG,
        summary="A container for server configuration commands.",
    ),
]
