"""What command handlers may ask of the running server: ``ServerControl``.

A handler gets two things besides its arguments: the store (data: keyspace,
lock, stats, slowlog, latency monitor, config, live settings) through
``session.store``, and the server it runs in through ``session.control``.
This module declares the second, as a ``typing.Protocol``, listing exactly
what handlers use: nothing else of the server is reachable from
``commands/``, and mypy (tests/unit/test_type_check.py) fails on a handler
that reaches for anything not declared here.

Rules kept here:

* Declared next to the commands, implemented once in ``server/``
  (``server.control.RunningServer``, built when the server starts) and
  once for a store used without a server (``store.local_control``, tests).
* Every method may be called from a worker thread while the event loop
  runs; the implementation hands work to the event loop itself. A method
  that waits (``compact_and_wait``) is called with no store lock held.
* Reads are snapshots (``clients()`` copies): a handler never holds a live
  view of the server's registries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..cluster.view import ClusterView
    from .session import Session


class LogStatus(Protocol):
    """What handlers read of the append-only log
    (``store.durability.append_log.Persistence``)."""

    @property
    def rewrite_in_progress(self) -> bool: ...

    @property
    def last_save_time(self) -> int: ...

    def refusal(self) -> str | None:
        """Why writes are refused now (the log cannot be written), or None."""
        ...

    def info(self) -> Mapping[str, object]:
        """INFO persistence's fields for the log (Redis' names)."""
        ...


class ServerControl(Protocol):
    """The running server, as command handlers see it."""

    @property
    def started_at_s(self) -> float:
        """When the server started (Unix seconds): uptime, LASTSAVE before any save."""
        ...

    @property
    def log(self) -> LogStatus | None:
        """The append-only log, or None with ``--appendonly no``."""
        ...

    @property
    def max_clients(self) -> int:
        """The effective connection limit (``--max-clients`` after clamping)."""
        ...

    @property
    def tcp_port(self) -> int:
        """The main listener's port now (0: closed by CONFIG SET port 0)."""
        ...

    def clients(self) -> list[Session]:
        """The sessions of the connected clients, oldest first (a copy)."""
        ...

    def kill_client(self, client_id: int) -> None:
        """Close that client's connection (CLIENT KILL); unknown ids are ignored."""
        ...

    def request_shutdown(self) -> None:
        """Begin shutdown (SHUTDOWN); returns at once."""
        ...

    def set_max_clients(self, requested: int) -> None:
        """CONFIG SET maxclients: the server may clamp it (open-file limit)."""
        ...

    def change_port(self, port: int) -> None:
        """CONFIG SET port: move the main listener; raises ``OSError`` when
        the new port cannot be listened on (nothing changes then)."""
        ...

    def dispatcher_statistics(self) -> Mapping[str, int]:
        """The worker dispatcher's counters (INFO stats, /metrics)."""
        ...

    def request_compaction(self) -> None:
        """BGSAVE / BGREWRITEAOF: compact the log in the background."""
        ...

    def cluster_bus_status(self) -> Mapping[str, object] | None:
        """The cluster bus for INFO cluster, /metrics and ``trio-kv cluster
        status`` (None without a bus): ``epoch``, ``ring_hash``, ``myself``,
        ``members`` (address, node id, up) and ``links`` (one mapping per
        peer: server.cluster.peer_link.LinkStatistics' fields)."""
        ...

    def compact_and_wait(self) -> bool:
        """SAVE with the log on: compact now and wait for it; whether it
        succeeded (False too when the log is off)."""
        ...

    def cluster_view(self) -> ClusterView | None:
        """What this node knows of its cluster now (``cluster.view``), or
        None when cluster mode is off (``--cluster-enabled no``). An
        immutable snapshot: whoever owns the cluster's opinion (the bus)
        replaces the whole view, so a handler reads one consistent value."""
        ...
