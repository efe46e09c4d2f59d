"""``trio-kv cluster status -p PORT [-h HOST]``: one node's view of its
cluster, read from ``INFO cluster`` on its client port (the
``cluster_bus_*`` fields, ``commands.cluster_bus_info``): members with
their node ids and up/down, the ring epoch and hash, and each peer link's
state, last ping round trip and traffic. Exit 1 if the node runs no bus.
Set ``TRIO_KV_REQUIREPASS`` (or ``-a``) when the node wants a password."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Sequence

from ...protocol.replies import Error
from ...protocol.resp_reply import NEED_DATA, ReplyParser, encode_request

TIMEOUT_SECONDS = 5.0


def _call(sock: socket.socket, parser: ReplyParser, *args: bytes) -> object:
    sock.sendall(encode_request(list(args)))
    while (reply := parser.next_reply()) is NEED_DATA:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        parser.receive_data(data)
    return reply


def fetch_fields(host: str, port: int, password: str | None) -> dict[str, str]:
    with socket.create_connection((host, port), timeout=TIMEOUT_SECONDS) as sock:
        parser = ReplyParser()
        if password:
            reply = _call(sock, parser, b"AUTH", password.encode())
            if isinstance(reply, Error):
                raise ConnectionError(reply.message)
        reply = _call(sock, parser, b"INFO", b"cluster")
    if not isinstance(reply, bytes):
        raise ConnectionError(f"unexpected INFO reply {reply!r}")
    fields = {}
    for line in reply.decode().splitlines():
        name, separator, value = line.partition(":")
        if separator and not line.startswith("#"):
            fields[name] = value
    return fields


def _pairs(text: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in text.split(",") if "=" in part)


def _bytes(count: str) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return count


def render(fields: dict[str, str]) -> str:
    lines = [
        f"node {fields['cluster_bus_myself']}  ring epoch {fields['cluster_bus_epoch']}  "
        f"hash {fields['cluster_bus_ring_hash']}  members {fields['cluster_bus_members']} "
        f"({fields['cluster_bus_members_up']} up)",
        "",
        f"{'MEMBER':<24}{'NODE ID':<42}STATE",
    ]
    index = 0
    while f"cluster_bus_member{index}" in fields:
        member = _pairs(fields[f"cluster_bus_member{index}"])
        myself = "  (myself)" if member["address"] == fields["cluster_bus_myself"] else ""
        lines.append(f"{member['address']:<24}{member['node_id']:<42}{'up' if member['up'] == '1' else 'down'}{myself}")
        index += 1
    lines += ["", f"{'PEER LINK':<24}{'STATE':<13}{'PING RTT':<11}{'SENT':<22}{'RECEIVED':<22}{'QUEUED':<8}IN FLIGHT"]
    index = 0
    while f"cluster_bus_link{index}" in fields:
        link = _pairs(fields[f"cluster_bus_link{index}"])
        rtt = int(link["ping_rtt_us"])
        rtt_text = "-" if rtt < 0 else f"{rtt / 1000:.2f} ms"
        sent = f"{link['sent_messages']} / {_bytes(link['sent_bytes'])}"
        received = f"{link['received_messages']} / {_bytes(link['received_bytes'])}"
        lines.append(
            f"{link['peer']:<24}{link['state']:<13}{rtt_text:<11}{sent:<22}{received:<22}"
            f"{link['queued']:<8}{link['in_flight']}"
        )
        index += 1
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="trio-kv cluster status", add_help=False,
                                     description="Show one node's view of its cluster.")
    parser.add_argument("--help", action="help")
    parser.add_argument("-h", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    parser.add_argument("-a", "--password", default=os.environ.get("TRIO_KV_REQUIREPASS"))
    options = parser.parse_args(argv)
    try:
        fields = fetch_fields(options.host, options.port, options.password)
    except OSError as error:
        print(f"trio-kv cluster status: {options.host}:{options.port}: {error}", file=sys.stderr)
        return 1
    if "cluster_bus_myself" not in fields:
        print(f"trio-kv cluster status: {options.host}:{options.port} runs no cluster bus "
              "(started without --cluster-enabled yes --cluster-seeds ...)", file=sys.stderr)
        return 1
    print(render(fields))
    return 0
