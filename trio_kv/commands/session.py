"""A connection's state as command handlers see it.

One ``Session`` per connection. Handlers read the shared data through it
(``session.store``, and its ``keyspace``, ``stats`` and ``config`` directly),
ask the running server through ``session.control`` (commands.control), and
keep the connection's own state in it (wire protocol and RESP version,
name, whether to close; its MULTI/WATCH state is a ``Transaction``,
commands/transactions.py's alone). A connection has at most one batch
at the workers at a time, so its session is only ever touched by one thread
at a time and needs no lock of its own.

Typing without importing down: ``Store`` and ``Keyspace`` are imported only
under ``if TYPE_CHECKING:``. The store's types are the store layer's own
(keyspace, stats, slowlog, latency monitor: hundreds of methods), so a
Protocol here would be a second copy of each signature to keep in step;
mypy checks handlers against the real classes, while at run time
``commands/`` still imports nothing from ``store/`` (tests/unit/
test_layering.py rejects every import outside an ``if TYPE_CHECKING:``
block). What handlers need of the server is different: it is declared
in ``commands/control.py`` as the ``ServerControl`` Protocol, for
``server/`` to implement.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .control import ServerControl

from .transactions import Transaction

if TYPE_CHECKING:
    from ..store.snapshots import SnapshotView
    from ..store.store import Store
    from .peer.state import PeerState
    from .wire import WireProtocol


class Session:
    def __init__(
        self,
        client_id: int,
        store: Store,
        control: ServerControl,
        *,
        wire: WireProtocol,
        address: str = "",
        local_address: str = "",
    ) -> None:
        self.id = client_id
        # The shared data (store.store.Store): keyspace, lock, stats, config, live settings.
        self.store = store
        # The running server (commands.control): shutdown, clients, ports, compaction.
        self.control = control
        self.keyspace = store.keyspace
        self.stats = store.stats
        self.config = store.config
        self.address = address
        # The connection's wire protocol (commands.wire): its command table
        # and the wording of the errors the engine makes. The main port sets
        # it once more when the first byte chose RESP.
        self.wire = wire
        # RESP version: 2, or 3 once HELLO switches it.
        self.protocol = 2
        self.name = b""
        # Redis' c->authenticated: true when no password is set at connect
        # time, then set by AUTH / HELLO AUTH and cleared by RESET (see
        # commands.auth). The engine refuses commands while auth_required().
        self.authenticated = store.requirepass is None
        self.library_name = b""
        self.library_version = b""
        # Set by QUIT / CLIENT KILL: the connection closes after sending replies.
        self.closing = False
        # Request bytes the connection holds for this client (CLIENT LIST
        # qbuf): unparsed bytes plus the batch being executed. Kept by
        # server.connection.
        self.query_buffer_bytes = 0
        # MULTI's queue and the watched keys (only commands.transactions writes it).
        self.transaction = Transaction(store.keyspace)
        self.last_command = ""
        self.created_ms = 0
        # The server's end of the connection, "host:port" (CLIENT LIST laddr=).
        self.local_address = local_address
        # CLIENT REPLY: OFF drops every reply until ON; SKIP drops the reply
        # of the next request (``skip_next`` is set by SKIP itself and becomes
        # ``skip`` once SKIP's own request is done). The engine applies them.
        self.reply_off = False
        self.reply_skip = False
        self.reply_skip_next = False
        # READONLY / READWRITE in cluster mode (Redis' CLIENT_READONLY);
        # RESET clears it.
        self.cluster_readonly = False
        # A cluster bus connection's handshake (commands.peer.state); None
        # on every client connection.
        self.peer: PeerState | None = None
        # Cluster mode: TKV.CONSISTENCY's level for this connection's reads
        # and writes (None: QUORUM), and what WAIT counts (the coordinator's
        # record of this connection's last replicated writes).
        self.cluster_consistency: str | None = None
        # An HTTP request's ?w= / ?r= (its writes' and reads' levels), None: the above.
        self.cluster_write_level: str | None = None
        self.cluster_read_level: str | None = None
        self.cluster_last_write: object | None = None
        # WATCHed keys this node does not replicate: key -> the clock their
        # first live member held when watched (None: no versions); the
        # coordinator's, checked where a forwarded EXEC runs.
        self.cluster_watch_clocks: dict[bytes, bytes | None] = {}
        # SNAPSHOT's open snapshots, by id (commands/snapshot.py); released
        # when the connection closes or RESETs.
        self.snapshots: dict[int, SnapshotView] = {}

    def release_snapshots(self) -> None:
        """Release every snapshot this connection opened (no store lock:
        releasing only sets a flag, store/snapshots.py)."""
        snapshots, self.snapshots = self.snapshots, {}
        for view in snapshots.values():
            view.release()

    def auth_required(self) -> bool:
        """Redis' authRequired: a password is set and this connection has
        not authenticated (the RESP parser's unauthenticated limits)."""
        return not self.authenticated and self.store.requirepass is not None
