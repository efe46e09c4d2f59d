"""Helpers for cluster bus tests: free ports for nodes on their own
loopback addresses (127.0.0.x, so port and port + 10000 are free on each:
harness/loopback.py, re-exported here), in-process nodes, and a raw RESP
client for the bus. Real processes: process_cluster.py."""

from __future__ import annotations

import functools

import trio

from harness.loopback import BUS_OFFSET, bindable, free_cluster_port, node_hosts
from trio_kv.config import Config
from trio_kv.protocol.resp_pack import pack_command
from trio_kv.protocol.resp_reply import NEED_DATA, ReplyParser
from trio_kv.server.lifecycle import ServerAddresses, serve

__all__ = ["BUS_OFFSET", "BusClient", "bindable", "free_cluster_port", "node_hosts", "seeds_of", "start_node",
           "wait_until"]


def seeds_of(hosts: list[str], port: int) -> tuple[str, ...]:
    return tuple(f"{host}:{port}" for host in hosts)


async def start_node(nursery: trio.Nursery, host: str, port: int, seeds: tuple[str, ...], **overrides) -> ServerAddresses:
    overrides.setdefault("appendonly", False)
    overrides.setdefault("cluster_node_timeout_seconds", 1.0)
    config = Config(host=host, port=port, cluster_enabled=True, cluster_seeds=seeds, **overrides)
    return await nursery.start(functools.partial(serve, config))


async def wait_until(predicate, poll_seconds: float = 0.02) -> None:
    """Poll ``predicate`` (the caller bounds the wait with trio.fail_after)."""
    while not predicate():
        await trio.sleep(poll_seconds)


class BusClient:
    """A raw RESP client: send requests, read replies, see the close."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.parser = ReplyParser()
        self.sent = bytearray()

    @classmethod
    async def connect(cls, host: str, port: int) -> BusClient:
        return cls(await trio.open_tcp_stream(host, port))

    async def call(self, *args: bytes) -> object:
        data = pack_command(args)
        self.sent += data
        await self.stream.send_all(data)
        return await self.reply()

    async def reply(self) -> object:
        while (reply := self.parser.next_reply()) is NEED_DATA:
            data = await self.stream.receive_some(65536)
            if not data:
                raise EOFError("closed")
            self.parser.receive_data(data)
        return reply

    async def closed_by_peer(self) -> bool:
        """True once the server closes (EOF or reset)."""
        try:
            while True:
                if not await self.stream.receive_some(65536):
                    return True
        except trio.BrokenResourceError:
            return True
