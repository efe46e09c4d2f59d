"""The cluster bus's ``WireProtocol``: RESP (inline commands too, for
``nc``), the peer table, Redis' wording for the engine's own errors. A bus
connection is a plain ``server.connection.Connection`` with this protocol
(the "one new object" ``commands.wire`` promises)."""

from __future__ import annotations

from dataclasses import replace

from ..wire import RESP
from .table import PEER_COMMANDS

BUS = replace(
    RESP,
    label="bus",
    table=PEER_COMMANDS,
    max_clients_reply=b"-ERR max number of cluster bus connections reached\r\n",
)
