"""A connection's state as command handlers see it.

One ``Session`` per connection. Handlers read the shared store through it
(``session.keyspace``, ``session.stats``, ``session.server``) and keep the
connection's own state in it (wire protocol and RESP version, name,
whether to close; its MULTI/WATCH state is a ``Transaction``,
commands/transactions.py's alone). A connection has at most one batch at
the workers at a time, so its session is only ever touched by one thread
at a time and needs no lock of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .transactions import Transaction

if TYPE_CHECKING:
    from .wire import WireProtocol


class Session:
    def __init__(
        self, client_id: int, server: Any, *, wire: WireProtocol, address: str = "", local_address: str = ""
    ) -> None:
        self.id = client_id
        # The shared server state (store.engine.Store): keyspace, stats, config, clients.
        self.server = server
        self.keyspace = server.keyspace
        self.stats = server.stats
        self.config = server.config
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
        self.authenticated = getattr(server, "requirepass", None) is None
        self.library_name = b""
        self.library_version = b""
        # Set by QUIT / CLIENT KILL: the connection closes after sending replies.
        self.closing = False
        # Request bytes the connection holds for this client (CLIENT LIST
        # qbuf): unparsed bytes plus the batch being executed. Kept by
        # server.connection.
        self.query_buffer_bytes = 0
        # MULTI's queue and the watched keys (only commands.transactions writes it).
        self.transaction = Transaction(server.keyspace)
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

    def auth_required(self) -> bool:
        """Redis' authRequired: a password is set and this connection has
        not authenticated (the RESP parser's unauthenticated limits)."""
        return not self.authenticated and self.server.requirepass is not None
