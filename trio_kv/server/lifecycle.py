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

``serve`` runs these steps, one helper each: load the data
(``_load_data``), open the listeners (``_open_listeners``), open the
services and build the server's control (``_open_services``), accept until
shutdown (``_accept_until_shutdown``), drain the connections (``_drain``),
close the services (``_close_services``).

Everything a handler may ask of the server (``commands.control.ServerControl``)
is ``server.control.RunningServer``, built in ``_open_services`` from the
parts it controls before any listener accepts: nothing is attached to the
store or the dispatcher afterwards.

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
Started from the command line, the server then freezes the garbage
collector's start-up objects (``server.collector``: full collections walk
only what was made since) before it accepts.

A second signal during shutdown exits the process at once (status 1).

Cluster mode (``--cluster-enabled yes``): the node id is read from the data
directory (created at the first start; a fresh one with ``--appendonly
no``: ``store.durability.node_id``) before the data is loaded, and so is
the incarnation (``store.durability.incarnation``: bumped unless the last
run stopped cleanly); together they make the actor of the keys' versions
(``cluster/actor.py``, ``store/versions.py``). A shutdown whose final log
flush and fsync worked writes the clean-shutdown marker last, before the
data directory is unlocked. The
cluster view handlers answer from is built once the main listener is open
(its address is this node's): without ``--cluster-seeds`` the one-node view
owning every slot (``cluster.view.emulated``).

TLS (``--tls-port``): the listener's streams are ``trio.SSLStream``s over
TCP, RESP only (inline commands too), as on ``--redis-port``; the handshake
runs lazily in the connection's own task at its first read, so a slow
handshake holds up nobody else. The certificate, key and optional client CA
are loaded before any listener opens: a bad file stops the start with one
line (an ``OSError``, as an address in use).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import trio

from ..cluster.actor import actor_id
from ..cluster.ring import Member
from ..cluster.view import ClusterView, emulated
from ..commands.wire import LINE, RESP, WireProtocol, sniff_main_port
from ..http.routes import is_loopback_host
from ..http.wire import HTTP
from ..config import Config
from ..store.durability.memory_snapshot import load_keyspace, snapshot_path
from ..store.durability.append_log import Persistence
from ..store.durability.incarnation import begin_incarnation, mark_clean_shutdown
from ..store.durability.node_id import load_or_create_node_id, new_node_id
from ..store.store import Store
from . import collector
from .cluster.start import ClusterStart, bus_port, prepare_cluster
from .cluster.serve import ClusterHandle, run_cluster
from .control import RunningServer, clamp_max_clients
from .dispatch import Dispatcher
from .expiry import run_active_expiry
from .http_listener import HttpServer, serve_http_listener
from .listener import ConnectionRegistry, serve_listener
from .main_port import MainPort
from .log_commit import DISK_THREADS, LogFlusher, load_and_open_log

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerAddresses:
    """What ``serve`` reports through ``task_status.started``."""

    main: tuple[str, int]
    redis: tuple[str, int] | None
    store: Store
    shutdown: trio.Event
    # The running server as handlers see it (clients, ports, compaction).
    control: RunningServer
    # The --http-port listener (JSON API, /metrics, health checks), if on.
    http: tuple[str, int] | None = None
    # The --tls-port listener (RESP over TLS), if on.
    tls: tuple[str, int] | None = None
    # The cluster bus (client port + 10000) and its node, with --cluster-seeds.
    bus: tuple[str, int] | None = None
    cluster: ClusterHandle | None = None


@dataclass(frozen=True)
class _Listeners:
    """The sockets opened at start: the main port's (line protocol and
    RESP), the RESP-only, HTTP and TLS ones (each but the first may be empty)."""

    main: list[trio.SocketListener]
    redis: list[trio.SocketListener]
    http: list[trio.SocketListener]
    tls: list[trio.SSLListener[trio.SocketStream]]
    # The cluster bus (server.cluster), only with --cluster-enabled yes and --cluster-seeds.
    bus: list[trio.SocketListener]


@dataclass(frozen=True)
class _Services:
    """What runs beside the connections, each built once, here."""

    store: Store
    registry: ConnectionRegistry
    dispatcher: Dispatcher
    main_port: MainPort
    control: RunningServer
    # The log's commit thread with --appendonly yes; None: memory only.
    flusher: LogFlusher | None
    # The cluster's node and its bus (server.cluster); None without --cluster-seeds.
    cluster: ClusterStart | None = None


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
    freeze_start_up: bool = False,
    task_status=trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the server until ``shutdown`` is set (or a signal arrives when
    ``handle_signals``). Reports a ``ServerAddresses`` once listening.
    Tests may pass their own ``store`` (for example with a fake clock).
    ``freeze_start_up``: the process is this server's own (the command
    line): freeze the collector's start-up objects once started (``collector``)."""
    started_at_s = time.time()
    shutdown = trio.Event() if shutdown is None else shutdown
    disk = trio.CapacityLimiter(DISK_THREADS)
    # Cluster mode: read (or create) before any socket opens, and before the
    # store: the node id is the actor of the keys' versions (store/versions.py).
    node_id = await _node_id(config, disk)
    # The versions' actor: the node id in this incarnation (cluster/actor.py).
    incarnation = 0 if node_id is None else await _incarnation(config, disk)
    if store is None:
        store = Store(config, actor_id=None if node_id is None else actor_id(node_id, incarnation))
    persistence = await _load_data(store, disk)
    try:
        # Outside the nursery, so "address in use" reaches the caller as a
        # plain OSError (the command line turns it into a one-line message).
        listeners = await _open_listeners(config)
    except BaseException:
        if persistence is not None:
            persistence.data_dir.unlock()
        raise
    main_address = listeners.main[0].socket.getsockname()[:2]
    try:
        # With --cluster-seeds: the membership (this node must be in the
        # list) before anything is served, so a wrong seed list stops the start.
        cluster_start = None if node_id is None else prepare_cluster(config, main_address[1], node_id)
    except BaseException:
        for listener in [*listeners.main, *listeners.redis, *listeners.http, *listeners.tls, *listeners.bus]:
            await trio.aclose_forcefully(listener)
        if persistence is not None:
            persistence.data_dir.unlock()
        raise
    # Whether the log's final flush and fsync worked (then the stop is clean).
    log_closed = False
    if cluster_start is not None:
        cluster: ClusterView | None = cluster_start.node.view()
    else:
        cluster = None if node_id is None else _cluster_view(config, node_id, main_address)
    async with trio.open_nursery() as root:
        services = await _open_services(
            root, store, persistence, disk, shutdown, handle_signals, started_at_s, cluster, cluster_start
        )
        handle = None
        if cluster_start is not None:
            # Handlers see every new opinion of the bus from here on.
            cluster_start.node.on_view_change(services.control.set_cluster_view)
            handle = await root.start(
                run_cluster, cluster_start.node, listeners.bus, store, services.control, services.dispatcher
            )
        if freeze_start_up:
            collector.freeze_start_up()
        async with trio.open_nursery() as connections:
            await _accept_until_shutdown(services, listeners, connections, shutdown, task_status, handle)
            await _drain(services.registry, config.shutdown_grace_seconds)
            connections.cancel_scope.cancel()
        if handle is not None:
            # After the clients (the data path may need the links until
            # then), before the dispatcher (bus commands run on it).
            await handle.stop()
        log_closed = await _close_services(services, root)
    if persistence is not None:
        if log_closed and node_id is not None:
            # Every dot this incarnation issued is on disk: the next start
            # may keep it (store/durability/incarnation.py).
            await _mark_clean_shutdown(config, incarnation, disk)
        # Only now: a compaction still writing at close has finished (its
        # thread is never abandoned), so no file changes after the release.
        persistence.data_dir.unlock()
    log.info("trio_kv stopped")


async def _load_data(store: Store, disk: trio.CapacityLimiter) -> Persistence | None:
    """Before any listener opens, so a client never sees a half-loaded
    store: with the log on, recovery (the data directory stays locked until
    ``serve`` returns) and the log; else the last SAVE's dump.snapshot, if
    any (store.durability.memory_snapshot), and None."""
    config = store.config
    if config.appendonly:
        return await load_and_open_log(store, disk)
    loaded = await trio.to_thread.run_sync(load_keyspace, store.keyspace, config.data_dir, store.versions, limiter=disk)
    if loaded is not None:
        log.info("loaded %d keys from %s", loaded.keys, snapshot_path(config.data_dir))
    return None


async def _node_id(config: Config, disk: trio.CapacityLimiter) -> str | None:
    """This node's id in cluster mode (None: cluster mode off): kept in the
    data directory with the log on, fresh with ``--appendonly no``."""
    if not config.cluster_enabled:
        return None
    if config.appendonly:
        node_id = await trio.to_thread.run_sync(load_or_create_node_id, config.data_dir, limiter=disk)
    else:
        node_id = new_node_id()
    log.info("cluster mode: node id %s", node_id)
    return node_id


async def _incarnation(config: Config, disk: trio.CapacityLimiter) -> int:
    """This run's incarnation (store/durability/incarnation.py): bumped,
    durably, unless the last run stopped cleanly; 0 for a memory-only node,
    whose node id is new anyway."""
    if not config.appendonly:
        return 0
    incarnation = await trio.to_thread.run_sync(begin_incarnation, config.data_dir, limiter=disk)
    log.info("cluster mode: versions written as incarnation %d of this node", incarnation)
    return incarnation


async def _mark_clean_shutdown(config: Config, incarnation: int, disk: trio.CapacityLimiter) -> None:
    try:
        await trio.to_thread.run_sync(mark_clean_shutdown, config.data_dir, incarnation, limiter=disk)
    except OSError as error:
        # Harmless: the next start takes the stop for unclean and uses a new actor.
        log.error("writing the clean-shutdown marker failed: %s", error)


def _cluster_view(config: Config, node_id: str, main_address: tuple[str, int]) -> ClusterView | None:
    """The cluster view at start; see the module docstring. This node is
    known by ``--cluster-announce-host``, else the main listener's address;
    a wildcard address (0.0.0.0) is announced as an empty host, as a
    redis-server cluster node that met no peer shows itself (clients then
    use the address they connected to)."""
    host, port = main_address
    if config.cluster_announce_host:
        host = config.cluster_announce_host
    elif ipaddress.ip_address(host).is_unspecified:
        host = ""
    if config.cluster_seeds:
        return None  # the static cluster's view comes from the bus (issue 10, part 2)
    return emulated(Member(host, port), node_id)


async def _open_services(
    root: trio.Nursery,
    store: Store,
    persistence: Persistence | None,
    disk: trio.CapacityLimiter,
    shutdown: trio.Event,
    handle_signals: bool,
    started_at_s: float,
    cluster: ClusterView | None,
    cluster_start: ClusterStart | None = None,
) -> _Services:
    """Build the dispatcher, the log's commit thread, the main port and the
    server's control, each with what it needs, then start the ones that run
    in ``root``: the signal watcher, the dispatcher runners, the commit
    thread and the active expiry sweep."""
    config = store.config
    token = trio.lowlevel.current_trio_token()
    registry = ConnectionRegistry(clamp_max_clients(config.max_clients))
    flusher = None
    if persistence is not None:
        # The commit thread reports each flush to the dispatcher, which is
        # built next with the thread as its commit waiter; the report only
        # comes once both run.
        flusher = LogFlusher(store, persistence, disk, on_flushed=lambda error: dispatcher.log_flushed(error))
    dispatcher = Dispatcher(store, config.workers, commit=flusher)
    main_port = MainPort(config.host, token)
    control = RunningServer(
        token=token, shutdown=shutdown, registry=registry, dispatcher=dispatcher,
        main_port=main_port, log=persistence, flusher=flusher, started_at_s=started_at_s, cluster=cluster,
        cluster_node=None if cluster_start is None else cluster_start.node,
    )
    if handle_signals:
        root.start_soon(watch_signals, shutdown)
    await root.start(dispatcher.run)
    if flusher is not None:
        await root.start(flusher.run)
        # The engine appends every applied write to it from now on.
        store.persistence = persistence
    root.start_soon(run_active_expiry, store, dispatcher)
    return _Services(store, registry, dispatcher, main_port, control, flusher, cluster_start)


async def _accept_until_shutdown(
    services: _Services,
    listeners: _Listeners,
    connections: trio.Nursery,
    shutdown: trio.Event,
    task_status: trio.TaskStatus[ServerAddresses],
    cluster: ClusterHandle | None = None,
) -> None:
    """Serve every listener (connections run in ``connections``), report the
    addresses, and on shutdown stop accepting: the accept loops are
    cancelled and the listening sockets closed at once."""
    store, control, registry, dispatcher = services.store, services.control, services.registry, services.dispatcher
    config = store.config
    main_address = listeners.main[0].socket.getsockname()[:2]
    redis_address = listeners.redis[0].socket.getsockname()[:2] if listeners.redis else None
    http_address = listeners.http[0].socket.getsockname()[:2] if listeners.http else None
    tls_address = (
        cast(trio.SocketListener, listeners.tls[0].transport_listener).socket.getsockname()[:2]
        if listeners.tls else None
    )
    bus_address = listeners.bus[0].socket.getsockname()[:2] if listeners.bus else None
    async with trio.open_nursery() as accepting:
        # The main port (line protocol and RESP, the first byte chooses)
        # moves with CONFIG SET port (server.main_port).
        services.main_port.start(
            accepting,
            lambda listener: serve_listener(
                listener, store, control, dispatcher, registry, connections, LINE, sniff_main_port
            ),
            listeners.main,
        )
        http_server = HttpServer(store, control, dispatcher, registry)
        # The other listeners: (protocol, listeners). A new protocol adds a row.
        served: list[tuple[WireProtocol, Sequence[trio.abc.Listener[Any]]]] = [
            (RESP, listeners.redis), (RESP, listeners.tls), (HTTP, listeners.http),
        ]
        for wire, group in served:
            for listener in group:
                if wire is HTTP:  # framed by h11: server.http_connection
                    accepting.start_soon(serve_http_listener, listener, http_server, connections)
                else:
                    accepting.start_soon(
                        serve_listener, listener, store, control, dispatcher, registry, connections, wire
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
        if bus_address is not None and cluster is not None:
            log.info(
                "trio_kv cluster bus on %s:%d: node %s, %d peer(s)",
                *bus_address, cluster.node.node_id, len(cluster.node.links),
            )
        task_status.started(
            ServerAddresses(
                main_address, redis_address, store, shutdown, control, http_address, tls_address,
                bus_address, cluster,
            )
        )
        await shutdown.wait()
        services.main_port.close()
        accepting.cancel_scope.cancel()


async def _drain(registry: ConnectionRegistry, grace_seconds: float) -> None:
    """Every connection stops reading and sends what it owes; after the
    grace period the caller cancels whatever is still open."""
    log.info("stopped accepting; draining %d connection(s)", len(registry))
    registry.stop_reading_all()
    with trio.move_on_after(grace_seconds) as grace:
        await registry.wait_all_closed()
    if grace.cancelled_caught:
        log.warning("grace period over: closing %d connection(s)", len(registry))


async def _close_services(services: _Services, root: trio.Nursery) -> bool:
    """Flush and close the log, then cancel the services in ``root``: a hop
    already on a worker thread finishes first. Returns whether the log's
    final flush and fsync worked (False without a log)."""
    closed = False
    if services.flusher is not None:
        # Every acknowledged write is already written; this makes the
        # rest (everysec, no) durable too before the process exits.
        closed = await services.flusher.close()
    root.cancel_scope.cancel()
    return closed


async def _open_listeners(config: Config) -> _Listeners:
    """The main, RESP-only, HTTP and TLS listeners (all but the first may be
    empty); on a failure the ones already open are closed."""
    tls_context = tls_server_context(config) if config.tls_port is not None else None
    opened: list[trio.abc.Listener[Any]] = []

    async def tcp(port: int | None) -> list[trio.SocketListener]:
        listeners = [] if port is None else await trio.open_tcp_listeners(port, host=config.host)
        opened.extend(listeners)
        return listeners

    try:
        main, redis, http = await tcp(config.port), await tcp(config.redis_port), await tcp(config.http_port)
        # The cluster bus: the client port + 10000, with a multi-node cluster only.
        bus = await tcp(bus_port(config, main[0].socket.getsockname()[1]))
        tls: list[trio.SSLListener[trio.SocketStream]] = []
        if tls_context is not None and config.tls_port is not None:
            tls = await trio.open_ssl_over_tcp_listeners(
                config.tls_port, tls_context, host=config.host, https_compatible=False
            )
    except BaseException:
        for listener in opened:
            await trio.aclose_forcefully(listener)
        raise
    return _Listeners(main, redis, http, tls, bus)


def tls_server_context(config: Config) -> ssl.SSLContext:
    """The TLS listener's context: Python's server defaults (TLS 1.2+), the
    certificate chain and key, and with ``--tls-ca-cert-file`` a required
    client certificate signed by that CA (Redis' tls-auth-clients yes).
    ``ssl.SSLError`` and missing files are ``OSError``s."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    # Config refuses a TLS port without both files.
    assert config.tls_cert_file is not None
    context.load_cert_chain(config.tls_cert_file, config.tls_key_file)
    if config.tls_ca_cert_file is not None:
        context.load_verify_locations(cafile=config.tls_ca_cert_file)
        context.verify_mode = ssl.CERT_REQUIRED
    return context
