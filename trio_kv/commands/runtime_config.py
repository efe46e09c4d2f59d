"""CONFIG GET / SET / RESETSTAT: the server's configuration as Redis tools read it.

CONFIG GET answers Redis' parameter names with values that are true for
trio_kv (``databases 1``; ``maxmemory 0``: no eviction; ``save ""``: there
are no timed snapshots, compaction is driven by the log's size and by
SAVE/BGSAVE/BGREWRITEAOF), the persistence settings (``appendonly``:
whether the log runs; ``appendfsync``; ``dir``: the data directory, or the
working directory when persistence is off; ``auto-aof-rewrite-*``,
``aof-load-truncated``), the two SLOWLOG settings live, and trio_kv's own
options under their command-line names (``max-batch-commands``...).
Patterns are Redis globs, matched without regard to case, as Redis does.
redis-benchmark reads ``save`` and ``appendonly`` at start.

CONFIG SET changes what can change at run time: ``slowlog-log-slower-than``,
``slowlog-max-len``, ``requirepass`` (the live password every protocol
checks, ``Store.requirepass``; ``""`` removes it) and ``protected-mode``
(``yes``/``no``). As in Redis, CONFIG GET shows ``requirepass`` in clear
(a client that can run CONFIG already has the password), and changing it
neither logs out nor disconnects anyone. Any other known parameter may be "set" to the value
it already has (a no-op, so ``CONFIG SET save ""`` in test setups works);
another value is Redis' immutable-config error. Several pairs are applied
all or nothing, as in Redis 7.

CONFIG RESETSTAT zeroes the counters, command statistics and latency
histograms (``store.stats``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..protocol.glob import glob_match
from ..protocol.replies import OK, Error, Map
from .connection import SYNTAX_ERROR
from .container import Container, subcommand
from .arguments import INT64_MAX, parse_int64
from .auth import redact
from .session import Session
from .table import CommandSpec


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    # The current value, from the Store.
    read: Callable[[Any], str]
    # For parameters CONFIG SET may change: stores a validated value (an
    # integer at least ``minimum``, or what ``parse`` made of the bytes).
    apply: Callable[[Any, Any], None] | None = None
    minimum: int = 0
    # For non-integer parameters: the raw value to what ``apply`` takes;
    # raises ValueError with the reason CONFIG SET reports.
    parse: Callable[[bytes], Any] | None = None


def _fixed(value: str) -> Callable[[Any], str]:
    return lambda store: value


def _from_config(field: str) -> Callable[[Any], str]:
    def read(store: Any) -> str:
        value = getattr(store.config, field)
        return "" if value is None else str(value)

    return read


def _yes_no_from_config(field: str) -> Callable[[Any], str]:
    return lambda store: "yes" if getattr(store.config, field) else "no"


def _appendonly(store: Any) -> str:
    # Whether the log is running (a Store made without the server shell has none).
    return "no" if store.persistence is None else "yes"


def _data_dir(store: Any) -> str:
    # Relative paths are relative to the server's working directory, which it never changes.
    return os.getcwd() if store.persistence is None else os.path.abspath(store.config.data_dir)


def _set_requirepass(store: Any, password: bytes | None) -> None:
    store.requirepass = password


def _parse_password(raw: bytes) -> bytes | None:
    return raw or None  # "" removes the password (Redis' EMPTY_STRING_IS_NULL)


def _parse_yes_no(raw: bytes) -> bool:
    value = raw.lower()
    if value not in (b"yes", b"no"):
        raise ValueError("argument(s) must be one of the following: yes, no")
    return value == b"yes"


def _set_protected_mode(store: Any, on: bool) -> None:
    store.protected_mode = on


def _set_slowlog_threshold(store: Any, value: int) -> None:
    store.slowlog.threshold_us = value


def _set_slowlog_max_len(store: Any, value: int) -> None:
    store.slowlog.set_max_len(value)


PARAMETERS: list[Parameter] = [
    # Redis' names.
    Parameter("bind", _from_config("host")),
    Parameter("port", lambda store: str(store.info.get("tcp_port", store.config.port))),
    Parameter("databases", _fixed("1")),
    Parameter("save", _fixed("")),
    Parameter("appendonly", _appendonly),
    Parameter("appendfsync", _from_config("appendfsync")),
    Parameter("auto-aof-rewrite-percentage", _from_config("aof_rewrite_percentage")),
    Parameter("auto-aof-rewrite-min-size", _from_config("aof_rewrite_min_size_bytes")),
    Parameter("aof-load-truncated", _yes_no_from_config("aof_load_truncated")),
    Parameter("maxmemory", _fixed("0")),
    Parameter("maxmemory-policy", _fixed("noeviction")),
    Parameter("maxclients", lambda store: str(store.max_clients)),
    Parameter("timeout", _fixed("0")),
    Parameter(
        "requirepass",
        lambda store: (store.requirepass or b"").decode("utf-8", "surrogateescape"),
        _set_requirepass,
        parse=_parse_password,
    ),
    Parameter(
        "protected-mode",
        lambda store: "yes" if store.protected_mode else "no",
        _set_protected_mode,
        parse=_parse_yes_no,
    ),
    Parameter("tls-port", _from_config("tls_port")),
    Parameter("tls-cert-file", _from_config("tls_cert_file")),
    Parameter("tls-key-file", _from_config("tls_key_file")),
    Parameter("tls-ca-cert-file", _from_config("tls_ca_cert_file")),
    Parameter("tls-auth-clients", lambda store: "no" if store.config.tls_ca_cert_file is None else "yes"),
    Parameter("dir", _data_dir),
    Parameter("proto-max-bulk-len", _from_config("proto_max_bulk_len_bytes")),
    Parameter("client-query-buffer-limit", _from_config("client_query_buffer_limit_bytes")),
    Parameter(
        "slowlog-log-slower-than", lambda store: str(store.slowlog.threshold_us), _set_slowlog_threshold, minimum=-1
    ),
    Parameter("slowlog-max-len", lambda store: str(store.slowlog.max_len), _set_slowlog_max_len),
    Parameter("latency-tracking", _fixed("yes")),
    Parameter("latency-tracking-info-percentiles", _fixed("50 99 99.9")),
    # trio_kv's own options, as spelled on the command line.
    Parameter("redis-port", _from_config("redis_port")),
    Parameter("data-dir", _from_config("data_dir")),
    Parameter("workers", _from_config("workers")),
    Parameter("shutdown-grace-seconds", _from_config("shutdown_grace_seconds")),
    Parameter("max-line-bytes", _from_config("max_line_bytes")),
    Parameter("max-key-bytes", _from_config("max_key_bytes")),
    Parameter("max-value-bytes", _from_config("max_value_bytes")),
    Parameter("max-keys-reply", _from_config("max_keys_reply")),
    Parameter("max-pending-reply-bytes", _from_config("max_pending_reply_bytes")),
    Parameter("max-batch-commands", _from_config("max_batch_commands")),
    Parameter("active-expire-interval-seconds", _from_config("active_expire_interval_seconds")),
    Parameter("log-level", _from_config("log_level")),
]
PARAMETERS_BY_NAME = {parameter.name: parameter for parameter in PARAMETERS}


def config_get(session: Session, args: list[bytes]) -> Map:
    store = session.server
    patterns = args[2:]
    return Map(
        [
            (parameter.name.encode(), parameter.read(store).encode("utf-8", "surrogateescape"))
            for parameter in PARAMETERS
            if any(glob_match(pattern, parameter.name.encode(), nocase=True) for pattern in patterns)
        ]
    )


def _set_failed(name: str, reason: str) -> Error:
    return Error(f"ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}")


def config_set(session: Session, args: list[bytes]) -> object:
    if len(args) % 2:
        return SYNTAX_ERROR
    store = session.server
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
            if raw != parameter.read(store).encode("utf-8", "surrogateescape"):
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
        if value < parameter.minimum:
            return _set_failed(
                parameter.name, f"argument must be between {parameter.minimum} and {INT64_MAX} inclusive"
            )
        changes.append((parameter, value))
    for parameter, value in changes:
        parameter.apply(store, value)  # type: ignore[misc]
    return OK


def config_resetstat(session: Session, args: list[bytes]) -> object:
    session.stats.reset()
    return OK


_ADMIN = "admin noscript loading stale"

CONFIG = Container(
    "config",
    [
        subcommand(
            "get", -3, _ADMIN, "GET <pattern>",
            "Return parameters matching the glob-like <pattern> and their values.", config_get, "2.0.0",
        ),
        subcommand(
            "set", -4, _ADMIN, "SET <directive> <value>",
            "Set the configuration <directive> to <value>.", config_set, "2.0.0",
        ),
        subcommand(
            "resetstat", 2, _ADMIN, "RESETSTAT",
            "Reset statistics reported by the INFO command.", config_resetstat, "2.0.0",
        ),
    ],
)

SPECS: list[CommandSpec] = [
    CommandSpec("config", -2, frozenset({"stats"}), "A container for server configuration commands.", CONFIG, group="server"),
]
