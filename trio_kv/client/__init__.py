"""trio_kv's RESP client, for trio_kv and for Redis (issue 12).

``Client`` (Trio: a pool of connections, pipelines, RESP2/RESP3, AUTH, TLS)
and ``BlockingClient`` (plain sockets, for code without Trio and for
``trio-kv cli``) share the pure parts in ``wire/`` (the project's one request packer,
``protocol/resp_pack.py``, which the cluster's peer links use too, and
hiredis' ``Reader``: C speed, no hand-written parser on ``execute``'s path).

    async with trio_kv.client.Client("127.0.0.1", 6379, protocol=3) as client:
        await client.execute("SET", "k", "v")
        pipe = client.pipeline()
        for i in range(1000):
            pipe.add("GET", "k")
        replies = await pipe.execute()

Timeouts are the caller's cancel scope; a connection interrupted mid-way is
closed, never reused. Error replies raise ``ReplyError`` (its text as sent).
"""

from .blocking import BlockingClient, BlockingPipeline
from .connection import Connection, open_connection
from .pool import Client, Pipeline
from .wire.errors import ClientConnectionError, ClientError, ProtocolError, ReplyError

__all__ = [
    "BlockingClient",
    "BlockingPipeline",
    "Client",
    "ClientConnectionError",
    "ClientError",
    "Connection",
    "Pipeline",
    "ProtocolError",
    "ReplyError",
    "open_connection",
]
