"""Helpers for cluster bus tests: free ports for nodes on their own
loopback addresses (127.0.0.x, so port and port + 10000 are free on each),
in-process nodes, and a raw RESP client for the bus."""

from __future__ import annotations

import functools
import random
import socket

import trio

from trio_kv.config import Config
from trio_kv.protocol.resp_reply import NEED_DATA, ReplyParser, encode_request
from trio_kv.server.lifecycle import ServerAddresses, serve

BUS_OFFSET = 10000


def bindable(host: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_cluster_port(hosts: list[str]) -> int:
    """A port P such that P and P + 10000 are free on every host."""
    for _ in range(200):
        port = random.randrange(20000, 30000)
        if all(bindable(host, port) and bindable(host, port + BUS_OFFSET) for host in hosts):
            return port
    raise RuntimeError("no free port pair")


def node_hosts(count: int) -> list[str]:
    """``count`` loopback addresses from a random block (tests may run side by side)."""
    base = random.randrange(20, 240)
    return [f"127.0.0.{base + i}" for i in range(count)]


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
        data = encode_request(list(args))
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
