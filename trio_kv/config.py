"""Server configuration: one frozen dataclass, filled from flags and environment.

Rules kept here:

* Every option has a documented default and a unit in its name where it has one.
* Each option can also come from ``TRIO_KV_<NAME>`` (``--max-clients`` is
  ``TRIO_KV_MAX_CLIENTS``); a flag on the command line wins over the variable.
* A bad value, from either source, is a clear message and exit status 2
  (argparse's convention); unknown ``TRIO_KV_*`` variables are rejected too, so
  a typo in a container's environment is not silently ignored.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .cluster.ring import Member
from .cluster.slots import SLOT_COUNT

ENV_PREFIX = "TRIO_KV_"


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 9099
    # Optional second listener where every connection speaks RESP (inline too).
    redis_port: int | None = None
    workers: int = 4
    max_clients: int = 10_000
    shutdown_grace_seconds: float = 1.0
    max_line_bytes: int = 64 * 1024
    max_key_bytes: int = 64 * 1024
    max_value_bytes: int = 512 * 1024 * 1024
    # Keep every key in byte order beside the hash table (store/sorted_index.py):
    # KRANGE, the line protocol's RANGE and KEYS prefix, HTTP /range (README
    # "Ordered keys"). About 9 bytes a key beside the object table (a
    # SortedList sharing its key objects), 17 beside the compact table (a
    # packed copy of the keys; store/sorted_index.py index_for_table).
    sorted_index: bool = True
    # The keyspace's hash table (README "Execution model"): "objects"
    # (store/hashtable.py: keys and values as Python objects) or "compact"
    # (store/compact_table.py: packed into an arena, about 100 bytes a key less).
    table: str = "objects"
    # KEYS over the text protocol answers at most this many keys (see README).
    max_keys_reply: int = 100_000
    # A client's unsent reply bytes above which its requests wait (server.connection).
    max_pending_reply_bytes: int = 1024 * 1024
    # Commands taken from one read and sent to the workers in one batch.
    max_batch_commands: int = 1024
    proto_max_bulk_len_bytes: int = 512 * 1024 * 1024
    client_query_buffer_limit_bytes: int = 1024 * 1024 * 1024
    # MULTI: most commands / argument bytes one transaction may queue.
    multi_max_queued_commands: int = 1_000_000
    multi_max_queued_bytes: int = 1024 * 1024 * 1024
    active_expire_interval_seconds: float = 0.1
    slowlog_log_slower_than_us: int = 10_000
    slowlog_max_len: int = 128
    # Snapshots (store/snapshots.py): past either limit the oldest (or the
    # idle) snapshot expires and its reads answer "ERR snapshot expired".
    snapshot_max_undo_bytes: int = 256 * 1024 * 1024
    snapshot_idle_timeout_seconds: float = 300.0
    # Memory limit and eviction (store/eviction.py; README "Memory limit and
    # eviction"): 0 is no limit; Redis' policies and sample size; CONFIG SET
    # changes all three at run time.
    maxmemory_bytes: int = 0
    maxmemory_policy: str = "noeviction"
    maxmemory_samples: int = 5
    log_level: str = "INFO"
    # Durability (store.durability): the append-only log and its snapshots.
    data_dir: str = "trio-kv-data"
    appendonly: bool = True
    appendfsync: str = "everysec"
    # Compact when the files recovery reads (snapshot and logs) are this much
    # larger than after the last compaction (percent; 0 disables) and at
    # least aof_rewrite_min_size_bytes.
    aof_rewrite_percentage: int = 100
    aof_rewrite_min_size_bytes: int = 64 * 1024 * 1024
    # A torn tail in the newest log is cut off (yes) or refused (no).
    aof_load_truncated: bool = True
    # HTTP JSON API, /metrics and health checks (server.http_listener); off
    # by default so a plain start opens no port nobody asked for.
    http_port: int | None = None
    # Larger request heads get 431, larger bodies 413.
    http_max_head_bytes: int = 16 * 1024
    http_max_body_bytes: int = 1024 * 1024
    # Reading one request (head and body) once its first byte arrived, and
    # sending its response; past it the client gets 408 and is closed.
    http_request_timeout_seconds: float = 10.0
    # How long a connection may wait for its next request (keep-alive).
    http_idle_timeout_seconds: float = 5.0
    # Authentication and safe defaults (README "AUTH, protected mode and
    # TLS"). The default user's password: None means no password (Redis'
    # nopass); CONFIG SET requirepass changes the live value (Store.requirepass).
    requirepass: str | None = None
    # With no password, only loopback clients are served (Redis' protected mode).
    protected_mode: bool = True
    # Optional TLS listener (RESP only, like --redis-port); needs the
    # certificate and key. With a CA file, clients must present a
    # certificate it signed (Redis' tls-auth-clients yes).
    tls_port: int | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_ca_cert_file: str | None = None
    # Origins a browser page may call the HTTP API from (CORS), comma
    # separated; "*": any (the reference store's behaviour); "": none.
    http_cors_origins: str = ""
    # Cluster (README "Cluster"; design/cluster.md). Off: CLUSTER answers
    # "cluster support disabled", as redis-server's default.
    cluster_enabled: bool = False
    # Every member's client address, this node's included; empty with
    # cluster_enabled: a one-node cluster owning all 16,384 slots.
    cluster_seeds: tuple[str, ...] = ()
    # The address peers and clients know this node by, when --host is a
    # wildcard (0.0.0.0) or not the one in the seed list.
    cluster_announce_host: str | None = None
    # Peers must present the same name, and the same secret (HMAC) when set.
    cluster_name: str = "trio-kv"
    cluster_secret: str | None = None
    # N, W, R: copies of each key, acks an OK waits for, replies a read merges.
    cluster_replicas: int = 3
    cluster_write_quorum: int = 2
    cluster_read_quorum: int = 2
    # Past it a write without W acks answers -NOREPLICAS.
    cluster_write_timeout_seconds: float = 2.0
    # A peer that answers no bus ping for this long is down (this node's opinion).
    cluster_node_timeout_seconds: float = 2.0
    # Fixed partitions of the 16,384 slots (a power of two).
    cluster_partitions: int = 64
    # none: any node coordinates any key; moved: -MOVED for keys a node does not replicate.
    cluster_redirect: str = "none"
    # local: a plain SET supersedes what the coordinator's replica has seen;
    # read: gather the context from R replicas first.
    cluster_write_context: str = "local"
    # A node joining a running cluster (README, "membership changes"): until a
    # member's ring that lists it arrives, it holds no slot (cluster/seeds.py).
    cluster_join: bool = False
    # Anti-entropy (server/cluster/anti_entropy.py): a round with each peer
    # this long after the last one ended; 0: off.
    cluster_aae_interval_seconds: float = 10.0
    # Anti-entropy repairs at most this many keys a second on this node,
    # every peer's exchange together (cluster/repair_rate.py); 0: unlimited.
    # README "Anti-entropy" has the measurement behind the default.
    cluster_aae_max_keys_per_second: int = 1000
    # A tombstone is purged once every replica of its key holds it and it
    # is this old (server/cluster/tombstone_reaper.py): longer than any
    # replica may stay away (down, partitioned) with writes for the key in
    # flight or in hints. Cassandra's gc_grace_seconds, whose default this is.
    cluster_tombstone_grace_seconds: float = 864000.0
    # Hinted handoff (server/cluster/hints.py): a preference-list replica
    # that did not ack a write gets its state from a per-target hint log in
    # DATA/hints/ (only with --appendonly yes), replayed once it is seen up.
    cluster_hinted_handoff: bool = True
    # Hints older than this (seconds; default 3 hours) are dropped unsent:
    # anti-entropy repairs the rest.
    cluster_max_hint_window_seconds: float = 3 * 3600.0
    # Hint bytes kept per target (files plus those waiting to be written);
    # hints beyond it are dropped (counted).
    cluster_max_hint_bytes: int = 64 * 1024 * 1024
    # Sloppy quorum (Dynamo 4.6): a write's preference-list members believed
    # down are stood in for by the next healthy nodes of the ring, which hold
    # the write as a hint (durable under their appendfsync) and count toward
    # W; they hand it back when the member is seen up. Reads still ask the
    # preference list only (README "Sloppy quorum").
    cluster_sloppy_quorum: bool = False
    # A test input, not a setting: this node's hybrid logical clock reads the
    # wall clock shifted by this many milliseconds (either sign), so fault
    # tests give nodes skewed clocks (cluster/hlc.py, offset_clock).
    debug_clock_offset_ms: int = 0


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def _port(text: str) -> int:
    value = _int_at_least(0)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    value = _seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


class _Off:
    """A parsed ``off``: unlike None (option not given) it overrides the
    environment and sets the field to None."""


OFF = _Off()


def _port_or_off(text: str) -> int | _Off:
    return OFF if text.strip().lower() == "off" else _port(text)


def _password(text: str) -> str | _Off:
    # An empty password means none, as Redis' requirepass "" (EMPTY_STRING_IS_NULL).
    return OFF if text == "" else text


def _yes_no(text: str) -> bool:
    value = text.strip().lower()
    if value in ("yes", "true", "1", "on"):
        return True
    if value in ("no", "false", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected yes or no, got {text!r}")


def _table_kind(text: str) -> str:
    value = text.strip().lower()
    if value not in ("objects", "compact"):
        raise argparse.ArgumentTypeError(f"expected objects or compact, got {text!r}")
    return value


def _fsync_policy(text: str) -> str:
    value = text.strip().lower()
    if value not in ("always", "everysec", "no"):
        raise argparse.ArgumentTypeError(f"expected always, everysec or no, got {text!r}")
    return value


def _cors_origins(text: str) -> str:
    """``*``, or comma-separated ``scheme://host[:port]`` origins, normalized
    to ``a,b`` without spaces; empty: CORS off."""
    origins = [part.strip() for part in text.split(",") if part.strip()]
    if origins == ["*"]:
        return "*"
    for origin in origins:
        scheme, separator, rest = origin.partition("://")
        if origin == "*" or not separator or scheme not in ("http", "https") or not rest or "/" in rest:
            raise argparse.ArgumentTypeError(
                f"expected * or origins like https://app.example:8443 (no path), got {origin!r}"
            )
    return ",".join(origins)


def _cluster_seeds(text: str) -> tuple[str, ...]:
    """Comma-separated ``host:port`` list -> normalized, each checked."""
    seeds = []
    for part in text.split(","):
        if part.strip():
            try:
                seeds.append(Member.parse(part).address)
            except ValueError as error:
                raise argparse.ArgumentTypeError(str(error)) from None
    return tuple(seeds)


def _power_of_two(text: str) -> int:
    value = _int_at_least(1)(text)
    if value & (value - 1) or value > SLOT_COUNT:
        raise argparse.ArgumentTypeError(f"must be a power of two up to {SLOT_COUNT}, got {value}")
    return value


def _one_of(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise argparse.ArgumentTypeError(f"expected {' or '.join(choices)}, got {text!r}")
        return value

    return parse


# Redis' memory units (config.c memtoull): k=1000, kb=1024, m, mb, g, gb.
MEMORY_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3, "gb": 1024**3}
MAXMEMORY_POLICIES = (
    "noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random",
    "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl",
)


def memory_size(text: str) -> int:
    """A byte count with Redis' optional unit (``100mb``, ``1gb``, ``512k``)."""
    raw = text.strip().lower()
    digits = raw.rstrip("bkmg")
    unit = raw[len(digits):]
    if not digits.isdigit() or unit not in MEMORY_UNITS:
        raise argparse.ArgumentTypeError(f"expected bytes with an optional unit (k, kb, m, mb, g, gb), got {text!r}")
    return int(digits) * MEMORY_UNITS[unit]


def _maxmemory_samples(text: str) -> int:
    value = _int_at_least(1)(text)
    if value > 64:  # Redis' bound (config.c)
        raise argparse.ArgumentTypeError(f"must be at most 64, got {value}")
    return value


def _log_level(text: str) -> str:
    level = text.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise argparse.ArgumentTypeError(f"unknown log level {text!r}")
    return level


@dataclass(frozen=True)
class _Option:
    field: str
    parse: Callable[[str], object]
    help: str
    # Other spellings of the flag (the issue's or Redis' name for it).
    aliases: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        return "--" + self.field.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.field.upper()


_OPTIONS = [
    _Option("host", str, "address to listen on"),
    _Option("port", _port, "TCP port for both protocols; 0 picks a free port"),
    _Option("redis_port", _port, "optional RESP-only port (inline commands in RESP); 0 picks a free port"),
    _Option("workers", _int_at_least(1), "worker threads for store operations"),
    _Option("max_clients", _int_at_least(1), "most connections at once (clamped below the open-file limit)"),
    _Option("shutdown_grace_seconds", _seconds, "time for running commands to finish on SIGTERM"),
    _Option("max_line_bytes", _int_at_least(16), "longest text-protocol request line"),
    _Option("max_key_bytes", _int_at_least(1), "largest key"),
    _Option("max_value_bytes", _int_at_least(1), "largest value"),
    _Option("max_keys_reply", _int_at_least(1), "most keys one text-protocol KEYS reply lists"),
    _Option("sorted_index", _yes_no, "yes: keep keys in byte order (KRANGE, RANGE, KEYS prefix, HTTP /range; about 9 bytes a key beside the object table, 17 beside the compact one); no: those refuse"),
    _Option("table", _table_kind, "the keyspace's hash table: objects (keys and values as Python objects) or compact (packed records, about 100 bytes a key less, slower per operation)"),
    _Option("max_pending_reply_bytes", _int_at_least(1024), "a client's unsent reply bytes above which its requests wait (the output limit)"),
    _Option("max_batch_commands", _int_at_least(1), "most commands a connection sends to the workers in one hop"),
    _Option("proto_max_bulk_len_bytes", _int_at_least(1024), "largest RESP bulk string"),
    _Option("client_query_buffer_limit_bytes", _int_at_least(1024 * 1024), "most unparsed request bytes per client (past it the client is closed; CONFIG SET client-query-buffer-limit changes it)"),
    _Option("multi_max_queued_commands", _int_at_least(1), "most commands one MULTI may queue (past it: error, EXECABORT)"),
    _Option("multi_max_queued_bytes", _int_at_least(1024), "most argument bytes one MULTI may queue (past it: error, EXECABORT)"),
    _Option("active_expire_interval_seconds", _seconds, "period of the background sweep of expired keys"),
    _Option("slowlog_log_slower_than_us", _int_at_least(-1), "SLOWLOG threshold in microseconds (-1 disables)"),
    _Option("slowlog_max_len", _int_at_least(0), "entries SLOWLOG keeps"),
    _Option("snapshot_max_undo_bytes", _int_at_least(0), "undo-log bytes open snapshots may hold; past it the oldest expires"),
    _Option("snapshot_idle_timeout_seconds", _positive_seconds, "a snapshot unused this long expires"),
    _Option("maxmemory_bytes", memory_size, "memory limit (bytes, or 100mb, 1gb...; 0: none): above it writes evict or are refused, by --maxmemory-policy", ("--maxmemory",)),
    _Option("maxmemory_policy", _one_of(*MAXMEMORY_POLICIES), "what a write does above --maxmemory: noeviction (refused, -OOM) or evict by allkeys-/volatile- lru, lfu, random, or volatile-ttl"),
    _Option("maxmemory_samples", _maxmemory_samples, "keys sampled per eviction, 1 to 64 (more: closer to true LRU/LFU, slower)"),
    _Option("log_level", _log_level, "DEBUG, INFO, WARNING or ERROR"),
    _Option("data_dir", str, "folder for the append-only log and snapshots"),
    _Option("appendonly", _yes_no, "yes: persist every write to the log; no: memory only"),
    _Option("appendfsync", _fsync_policy, "always (fsync before replying), everysec or no"),
    _Option("aof_rewrite_percentage", _int_at_least(0), "compact when snapshot + logs grew this many percent (0: never)"),
    _Option("aof_rewrite_min_size_bytes", _int_at_least(0), "no automatic compaction while snapshot + logs are smaller"),
    _Option("aof_load_truncated", _yes_no, "yes: cut a torn log tail at start (with a warning); no: refuse"),
    _Option("http_port", _port_or_off, "HTTP JSON API, /metrics and /healthz port; 0 picks a free port; off disables"),
    _Option("http_max_head_bytes", _int_at_least(1024), "largest HTTP request line and headers (431 beyond)"),
    _Option("http_max_body_bytes", _int_at_least(1), "largest HTTP request body (413 beyond)"),
    _Option("http_request_timeout_seconds", _positive_seconds, "time to read one HTTP request and send its response"),
    _Option("http_idle_timeout_seconds", _positive_seconds, "time an idle HTTP keep-alive connection stays open"),
    _Option(
        "requirepass",
        _password,
        "password clients must send (AUTH, HELLO AUTH, HTTP Authorization: Bearer); "
        "prefer the environment variable: flags show in ps",
    ),
    _Option("protected_mode", _yes_no, "yes: with no password, serve only loopback clients"),
    _Option("tls_port", _port, "optional TLS listener (RESP only); needs --tls-cert-file and --tls-key-file"),
    _Option("tls_cert_file", str, "PEM certificate (chain) of the TLS listener"),
    _Option("tls_key_file", str, "PEM private key of the TLS listener"),
    _Option("tls_ca_cert_file", str, "PEM CA: TLS clients must present a certificate it signed"),
    _Option("http_cors_origins", _cors_origins, "origins (comma separated) allowed to call the HTTP API from a browser (CORS); * for any; empty for none"),
    _Option("cluster_enabled", _yes_no, "yes: Redis Cluster mode; without --cluster-seeds one node owning every slot"),
    _Option("cluster_seeds", _cluster_seeds, "every member's host:port, comma separated, this node's included"),
    _Option("cluster_announce_host", str, "the host this node is known by in --cluster-seeds (default: --host)"),
    _Option("cluster_name", str, "peers must present the same cluster name"),
    _Option("cluster_secret", _password, "shared secret peers prove on the bus (HMAC); prefer the environment variable"),
    _Option("cluster_replicas", _int_at_least(1), "N: copies of each key"),
    _Option("cluster_write_quorum", _int_at_least(1), "W: replica acks an OK waits for"),
    _Option("cluster_read_quorum", _int_at_least(1), "R: replica replies a read merges"),
    _Option("cluster_write_timeout_seconds", _positive_seconds, "wait for W acks this long, then -NOREPLICAS", ("--cluster-write-timeout",)),
    _Option("cluster_node_timeout_seconds", _positive_seconds, "a peer silent on the bus this long is down", ("--cluster-node-timeout",)),
    _Option("cluster_partitions", _power_of_two, "fixed partitions of the 16384 slots (power of two, fixed at creation)"),
    _Option("cluster_redirect", _one_of("none", "moved"), "none: any node coordinates any key; moved: -MOVED for keys this node does not replicate"),
    _Option("cluster_write_context", _one_of("local", "read"), "local: a plain write supersedes what this node's replica has seen; read: gather the context from R replicas first"),
    _Option("cluster_join", _yes_no, "yes: join a running cluster: --cluster-seeds name this node and members to learn the ring from; no slot here until `trio-kv cluster add` lists it"),
    _Option("cluster_aae_interval_seconds", _seconds, "compare Tictac trees with each peer and repair what differs this often (0: off)", ("--cluster-aae-interval",)),
    _Option("cluster_aae_max_keys_per_second", _int_at_least(0), "anti-entropy repairs at most this many keys a second on this node (0: unlimited)"),
    _Option("cluster_tombstone_grace_seconds", _positive_seconds, "purge a delete's tombstone once all N replicas hold it and it is this many seconds old (default 864000: 10 days)", ("--cluster-tombstone-grace",)),
    _Option("cluster_hinted_handoff", _yes_no, "yes: a replica that missed a write gets it from a hint log when seen up again (needs --appendonly yes)"),
    _Option("cluster_max_hint_window_seconds", _positive_seconds, "hints older than this many seconds are dropped unsent (default 10800: 3 h)", ("--cluster-max-hint-window",)),
    _Option("cluster_max_hint_bytes", _int_at_least(4096), "hint bytes kept per target node; hints beyond are dropped (counted)"),
    _Option("cluster_sloppy_quorum", _yes_no, "yes: healthy nodes past a key's preference list stand in for its down members and count toward W, holding the write as a hint (needs hinted handoff on every node)"),
    _Option("debug_clock_offset_ms", _int_at_least(-(1 << 40)), "TEST INPUT: shift this node's hybrid logical clock by N ms (clock-skew tests)"),
]

_OPTIONS_BY_FIELD = {option.field: option for option in _OPTIONS}


def parse_option(field: str, value: object) -> Any:
    """One option's value checked and converted as its flag's would be
    (``str(value)`` through the same parser: ``True``, ``"yes"`` and ``1``
    all mean yes); the embedded library's keyword options go through it.
    ``KeyError`` for an unknown option, ``ValueError`` for a bad value."""
    option = _OPTIONS_BY_FIELD[field]
    try:
        parsed = option.parse(str(value))
    except argparse.ArgumentTypeError as error:
        raise ValueError(f"{field}: {error}") from None
    return None if parsed is OFF else parsed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trio-kv",
        description="trio_kv: a key-value server speaking a line protocol and Redis RESP on one port.",
        epilog=f"Every option can also be set as an environment variable {ENV_PREFIX}<OPTION>, "
        f"for example {ENV_PREFIX}MAX_CLIENTS=500; command-line flags win.",
    )
    defaults = Config()
    for option in _OPTIONS:
        parser.add_argument(
            option.flag,
            *option.aliases,
            dest=option.field,
            type=option.parse,
            default=None,
            help=f"{option.help} (default: {getattr(defaults, option.field)}; env {option.env})",
        )
    return parser


def parse_config(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Flags, then ``TRIO_KV_*`` variables, then defaults. Exits 2 on bad input."""
    environ = os.environ if environ is None else environ
    parser = build_parser()
    known_env = {option.env for option in _OPTIONS}
    unknown = sorted(name for name in environ if name.startswith(ENV_PREFIX) and name not in known_env)
    if unknown:
        parser.error(f"unknown environment variable(s): {', '.join(unknown)}")
    args = parser.parse_args(argv)
    values: dict[str, Any] = {}
    for option in _OPTIONS:
        value = getattr(args, option.field)
        if value is None and option.env in environ:
            try:
                value = option.parse(environ[option.env])
            except argparse.ArgumentTypeError as error:
                parser.error(f"{option.env}: {error}")
        if value is not None:
            values[option.field] = None if value is OFF else value
    config = dataclasses.replace(Config(), **values)
    if config.tls_port is not None and (config.tls_cert_file is None or config.tls_key_file is None):
        parser.error("--tls-port needs --tls-cert-file and --tls-key-file")
    if config.cluster_write_quorum > config.cluster_replicas or config.cluster_read_quorum > config.cluster_replicas:
        parser.error("--cluster-write-quorum and --cluster-read-quorum must not exceed --cluster-replicas")
    if config.cluster_seeds and not config.cluster_enabled:
        parser.error("--cluster-seeds needs --cluster-enabled yes")
    if config.cluster_enabled and config.maxmemory_policy != "noeviction":
        parser.error("--maxmemory-policy: cluster mode supports only noeviction (anti-entropy would restore evicted keys)")
    return config
