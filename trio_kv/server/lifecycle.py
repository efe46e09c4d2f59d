"""Start, run and stop the server: the nursery tree, signals and shutdown.

The tree (every task's lifetime is owned by a nursery):

    root nursery
      signal watcher            (only when started from the command line)
      dispatcher runners        (the worker-thread hops; outlive connections)
      active expiry sweep
      connections nursery
        accept loops            (main port, optional --redis-port, --tls-port, --http-port;
                                 CONFIG SET port moves the main one: server.main_port)
        one task per connection (HTTP ones too: same registry, same shutdown)

Shutdown (SIGTERM, SIGINT, SHUTDOWN, or the ``shutdown`` event a test
passes in) goes in this order:

1. stop accepting: the accept loops are cancelled and the listening sockets
   closed at once;
2. every connection stops reading; what it had already read still runs and
   its replies are sent;
3. after ``--shutdown-grace-seconds`` (default 1 s) whatever is still open is
   cancelled and closed; a long command running in slices (KEYS, a big
   SCAN, FLUSHALL: ``commands/slicing.py``) is abandoned at its next slice
   boundary (``server.dispatch``), so this step takes at most one slice
   whatever was pipelined, and never leaves a write half-applied;
4. with the append-only log on, everything appended is written and fsynced
   (whatever the fsync policy) and the log closed;
5. the dispatcher runners are cancelled; a hop already on a worker thread
   always finishes first (no command is half-applied), so when ``serve``
   returns no worker is running.

Start: with ``--appendonly yes`` (the default) the data directory is
locked, the snapshot loaded and the logs replayed before any listener
opens; damaged files stop the start with an error naming file and offset.

A second signal during shutdown exits the process at once (status 1).

TLS (``--tls-port``): the listener's streams are ``trio.SSLStream``s over
TCP, RESP only (inline commands too), as on ``--redis-port``; the handshake
runs lazily in the connection's own task at its first read, so a slow
handshake holds up nobody else. The certificate, key and optional client CA
are loaded before any listener opens: a bad file stops the start with one
line (an ``OSError``, as an address in use).
"""

from __future__ import annotations

import logging
import os
import resource
import signal
import ssl
from dataclasses import dataclass

import trio

from ..commands.wire import LINE, RESP, WireProtocol, sniff_main_port
from ..http.routes import is_loopback_host
from ..http.wire import HTTP
from ..config import Config
from ..store.durability.memory_snapshot import load_keyspace, snapshot_path
from ..store.engine import Store
from .dispatch import Dispatcher
from .expiry import run_active_expiry
from .http_listener import HttpServer, serve_http_listener
from .listener import ConnectionRegistry, serve_listener
from .main_port import MainPort
from .log_commit import DISK_THREADS, LogFlusher, load_and_open_log

log = logging.getLogger(__name__)

# File descriptors kept free for listeners, logs and later data files.
RESERVED_FDS = 32


@dataclass(frozen=True)
class ServerAddresses:
    """What ``serve`` reports through ``task_status.started``."""

    main: tuple[str, int]
    redis: tuple[str, int] | None
    store: Store
    shutdown: trio.Event
    # The --http-port listener (JSON API, /metrics, health checks), if on.
    http: tuple[str, int] | None = None
    # The --tls-port listener (RESP over TLS), if on.
    tls: tuple[str, int] | None = None


def clamp_max_clients(requested: int) -> int:
    """Raise the open-file limit if allowed, then keep max-clients below it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = requested + RESERVED_FDS
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as error:
            log.warning("could not raise the open-file limit to %d: %s", target, error)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        clamped = max(1, soft - RESERVED_FDS)
        log.warning("max-clients %d clamped to %d (open-file limit %d)", requested, clamped, soft)
        return clamped
    return requested


def _set_max_clients(store: Store, registry: ConnectionRegistry, requested: int) -> None:
    """CONFIG SET maxclients (from a worker thread): clamped as at start-up;
    the accept loop reads ``registry.max_clients`` for each new connection."""
    registry.max_clients = store.max_clients = clamp_max_clients(requested)


async def watch_signals(shutdown: trio.Event) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            name = signal.Signals(signum).name
            if shutdown.is_set():
                log.warning("second %s: exiting now", name)
                logging.shutdown()
                os._exit(1)
            log.info("%s received: shutting down", name)
            shutdown.set()


async def serve(
    config: Config,
    *,
    shutdown: trio.Event | None = None,
    store: Store | None = None,
    handle_signals: bool = False,
    task_status=trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the server until ``shutdown`` is set (or a signal arrives when
    ``handle_signals``). Reports a ``ServerAddresses`` once listening.
    Tests may pass their own ``store`` (for example with a fake clock)."""
    shutdown = trio.Event() if shutdown is None else shutdown
    store = Store(config) if store is None else store
    disk = trio.CapacityLimiter(DISK_THREADS)
    persistence = None
    if config.appendonly:
        # Before any listener opens: a client never sees a half-loaded store.
        persistence = await load_and_open_log(store, disk)
    else:
        # The last SAVE's dump.snapshot, if any (store.durability.memory_snapshot).
        loaded = await trio.to_thread.run_sync(load_keyspace, store.keyspace, config.data_dir, limiter=disk)
        if loaded is not None:
            log.info("loaded %d keys from %s", loaded.keys, snapshot_path(config.data_dir))
    try:
        # Outside the nursery, so "address in use" reaches the caller as a
        # plain OSError (the command line turns it into a one-line message).
        listeners, redis_listeners, http_listeners, tls_listeners = await _open_listeners(config)
    except BaseException:
        if persistence is not None:
            persistence.data_dir.unlock()
        raise
    token = trio.lowlevel.current_trio_token()
    registry = ConnectionRegistry(clamp_max_clients(config.max_clients))
    store.max_clients = registry.max_clients
    # Hooks for command handlers on worker threads (SHUTDOWN, CLIENT KILL).
    store.request_shutdown = lambda: token.run_sync_soon(shutdown.set)
    store.kill_client = lambda client_id: token.run_sync_soon(_kill, registry, client_id)
    store.set_max_clients = lambda requested: _set_max_clients(store, registry, requested)

    async with trio.open_nursery() as root:
        if handle_signals:
            root.start_soon(watch_signals, shutdown)
        dispatcher = Dispatcher(store, config.workers)
        await root.start(dispatcher.run)
        store.dispatcher_statistics = dispatcher.statistics
        flusher = None
        if persistence is not None:
            flusher = LogFlusher(store, persistence, disk)
            await root.start(flusher.run)
            dispatcher.flusher = flusher
            flusher.on_flushed = dispatcher.log_flushed
            store.request_compaction = lambda request=None: token.run_sync_soon(flusher.request_compaction, request)
            store.persistence = persistence
        root.start_soon(run_active_expiry, store, dispatcher)

        async with trio.open_nursery() as connections:
            main_address = listeners[0].socket.getsockname()[:2]
            redis_address = redis_listeners[0].socket.getsockname()[:2] if redis_listeners else None
            http_address = http_listeners[0].socket.getsockname()[:2] if http_listeners else None
            tls_address = tls_listeners[0].transport_listener.socket.getsockname()[:2] if tls_listeners else None
            store.info["tcp_port"] = main_address[1]
            async with trio.open_nursery() as accepting:
                # The main port (line protocol and RESP, the first byte
                # chooses) moves with CONFIG SET port (server.main_port).
                main_port = MainPort(
                    store, config.host, accepting,
                    lambda listener: serve_listener(
                        listener, store, dispatcher, registry, connections, LINE, sniff_main_port
                    ),
                    token,
                )
                main_port.start(listeners)
                store.change_port = main_port.change_port
                http_server = HttpServer(store, dispatcher, registry)
                # The other listeners: (protocol, listeners). A new protocol adds a row.
                served: list[tuple[WireProtocol, list[trio.abc.Listener]]] = [
                    (RESP, redis_listeners), (RESP, tls_listeners), (HTTP, http_listeners),
                ]
                for wire, group in served:
                    for listener in group:
                        if wire is HTTP:  # framed by h11: server.http_connection
                            accepting.start_soon(serve_http_listener, listener, http_server, connections)
                        else:
                            accepting.start_soon(
                                serve_listener, listener, store, dispatcher, registry, connections, wire
                            )
                if http_address is not None:
                    # Logged before the "listening on" line, which tools wait for.
                    log.info("trio_kv HTTP API on %s:%d (JSON, /metrics, /healthz, /readyz)", *http_address)
                if tls_address is not None:
                    log.info(
                        "trio_kv TLS listener on %s:%d (RESP%s)", *tls_address,
                        ", client certificates required" if config.tls_ca_cert_file else "",
                    )
                if store.requirepass is None and store.protected_mode and not is_loopback_host(config.host):
                    log.warning(
                        "protected mode: no password is set, so only loopback clients are served "
                        "(set --requirepass / TRIO_KV_REQUIREPASS, or --protected-mode no)"
                    )
                log.info("trio_kv listening on %s:%d (line protocol and RESP)", *main_address)
                if redis_address is not None:
                    log.info("trio_kv RESP-only listener on %s:%d", *redis_address)
                task_status.started(
                    ServerAddresses(main_address, redis_address, store, shutdown, http_address, tls_address)
                )
                await shutdown.wait()
                main_port.close()
                accepting.cancel_scope.cancel()

            log.info("stopped accepting; draining %d connection(s)", len(registry))
            registry.stop_reading_all()
            with trio.move_on_after(config.shutdown_grace_seconds) as grace:
                await registry.wait_all_closed()
            if grace.cancelled_caught:
                log.warning("grace period over: closing %d connection(s)", len(registry))
            connections.cancel_scope.cancel()
        if flusher is not None:
            # Every acknowledged write is already written; this makes the
            # rest (everysec, no) durable too before the process exits.
            await flusher.close()
        root.cancel_scope.cancel()
    if persistence is not None:
        # Only now: a compaction still writing at close has finished (its
        # thread is never abandoned), so no file changes after the release.
        persistence.data_dir.unlock()
    log.info("trio_kv stopped")


async def _open_listeners(config: Config):
    """The main, RESP-only, HTTP and TLS listeners (all but the first may be
    empty); on a failure the ones already open are closed."""
    tls_context = tls_server_context(config) if config.tls_port is not None else None
    opened: list[list[trio.abc.Listener]] = []
    try:
        for port in (config.port, config.redis_port, config.http_port):
            opened.append([] if port is None else await trio.open_tcp_listeners(port, host=config.host))
        tls: list[trio.abc.Listener] = []
        if tls_context is not None:
            tls = await trio.open_ssl_over_tcp_listeners(
                config.tls_port, tls_context, host=config.host, https_compatible=False
            )
        opened.append(tls)
    except BaseException:
        for group in opened:
            for listener in group:
                await trio.aclose_forcefully(listener)
        raise
    return tuple(opened)


def tls_server_context(config: Config) -> ssl.SSLContext:
    """The TLS listener's context: Python's server defaults (TLS 1.2+), the
    certificate chain and key, and with ``--tls-ca-cert-file`` a required
    client certificate signed by that CA (Redis' tls-auth-clients yes).
    ``ssl.SSLError`` and missing files are ``OSError``s."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.tls_cert_file, config.tls_key_file)
    if config.tls_ca_cert_file is not None:
        context.load_verify_locations(cafile=config.tls_ca_cert_file)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _kill(registry: ConnectionRegistry, client_id: int) -> None:
    connection = registry.connections.get(client_id)
    if connection is not None:
        connection.kill()
