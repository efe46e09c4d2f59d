"""``trio-kv cluster status -p PORT [-h HOST]``: one node's view of its
cluster, read from ``INFO cluster`` on its client port (the
``cluster_bus_*`` fields, ``commands.cluster_bus_info``): members with
their node ids and up/down, the ring epoch and hash, each peer link's
state, last ping round trip and traffic, and the hints pending per target. Exit 1 if the node runs no bus.
Set ``TRIO_KV_REQUIREPASS`` (or ``-a``) when the node wants a password."""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from collections.abc import Sequence

from ...protocol.replies import Error
from ...protocol.resp_pack import pack_command
from ...protocol.resp_reply import NEED_DATA, ReplyParser

TIMEOUT_SECONDS = 5.0


def _call(sock: socket.socket, parser: ReplyParser, *args: bytes) -> object:
    sock.sendall(pack_command(args))
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


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns as wide as their widest cell, two spaces apart."""
    widths = [max(len(row[column]) for row in (header, *rows)) for column in range(len(header))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in (header, *rows)]


def _microseconds(text: str | None, none_below: int = 0) -> str:
    """``ping_rtt_us`` / ``oldest_request_age_us`` as milliseconds; "-" for
    a missing value or one below ``none_below`` (-1: no ping answered)."""
    if text is None or int(text) < none_below:
        return "-"
    return f"{int(text) / 1000:.2f} ms"


def _indexed(fields: dict[str, str], prefix: str) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    while f"{prefix}{len(rows)}" in fields:
        rows.append(_pairs(fields[f"{prefix}{len(rows)}"]))
    return rows


def _ago(unix_ms: str) -> str:
    """How long ago a unix-ms time was, for a person ("never" for 0)."""
    if unix_ms == "0":
        return "never"
    return f"{max(0.0, time.time() - int(unix_ms) / 1000):.1f} s ago"


# What the status says of this node's place in the ring (node.ring_state).
_RING_STATES = {
    "staged": ["a ring change is under way: writes go to the old and new preference lists, reads to the old ones"],
    "leaving": ["LEAVING: a ring change removes this node; it serves its partitions and hands them off"],
    "removed": ["REMOVED: this node is not a member of the ring; it serves no partition (stop it)"],
}


def render(fields: dict[str, str]) -> str:
    myself = fields["cluster_bus_myself"]
    lines = [
        f"node {myself}  ring epoch {fields['cluster_bus_epoch']}  hash {fields['cluster_bus_ring_hash']}  "
        f"members {fields['cluster_bus_members']} ({fields['cluster_bus_members_up']} up)",
        *_RING_STATES.get(fields.get("cluster_bus_ring_state", "final"), []),
        "",
    ]
    members = [
        [member["address"], member["node_id"], ("up" if member["up"] == "1" else "down")
         + ("  (myself)" if member["address"] == myself else "")]
        for member in _indexed(fields, "cluster_bus_member")
    ]
    lines += _table(["MEMBER", "NODE ID", "STATE"], members)
    links = [
        [
            link["peer"], link["state"], _microseconds(link.get("ping_rtt_us"), none_below=0),
            f"{link['sent_messages']} / {_bytes(link['sent_bytes'])}",
            f"{link['received_messages']} / {_bytes(link['received_bytes'])}",
            link["queued"], link["in_flight"], _microseconds(link.get("oldest_request_age_us"), none_below=1),
        ]
        for link in _indexed(fields, "cluster_bus_link")
    ]
    lines += [""] + _table(
        ["PEER LINK", "STATE", "PING RTT", "SENT (MSGS / BYTES)", "RECEIVED", "QUEUED", "IN FLIGHT", "LAG"], links
    )
    if "cluster_versions_keys" in fields:
        lines += ["", "VERSIONS"] + [
            f"  keys with versions    {fields['cluster_versions_keys']}",
            f"  keys with siblings    {fields['cluster_versions_keys_with_siblings']}",
            f"  largest sibling count {fields['cluster_versions_largest_siblings']}"
            f" (peak {fields['cluster_versions_largest_siblings_peak']})",
            f"  tombstones kept       {fields['cluster_versions_tombstones']}",
            f"  clock bytes           {_bytes(fields['cluster_versions_bytes'])}",
        ]
    if "cluster_aae_rounds" in fields:
        lines += ["", "ANTI-ENTROPY"] + [
            f"  rounds                {fields['cluster_aae_rounds']} ({fields['cluster_aae_rounds_failed']} failed,"
            f" {fields['cluster_aae_rounds_limited']} at the repair limit)",
            f"  partitions compared   {fields['cluster_aae_partitions_compared']}"
            f" ({fields['cluster_aae_partitions_differing']} differing)",
            f"  segments compared     {fields['cluster_aae_segments_compared']}"
            f" ({fields['cluster_aae_segments_differing']} differing)",
            f"  keys compared         {fields['cluster_aae_keys_compared']}"
            f" ({fields['cluster_aae_keys_differing']} differing)",
            f"  keys repaired         {fields['cluster_aae_keys_repaired']}"
            f" ({fields.get('cluster_aae_rate_waits', 0)} waits for the rate limit)",
        ]
        if "cluster_aae_reap_rounds" in fields:
            lines += [
                f"  tombstones purged     {fields['cluster_aae_tombstones_purged']}"
                f" ({fields['cluster_aae_tombstones_confirmed']} confirmed on every replica;"
                f" {fields['cluster_aae_partitions_waiting']} partition rounds waited for a replica that was down)",
            ]
        peers = [
            [
                peer["peer"], _ago(peer["last_exchange_unix_ms"]),
                "-" if peer["last_exchange_unix_ms"] == "0" else ("ok" if peer["last_ok"] == "1" else "failed"),
                peer["last_repaired"], peer["last_partitions_differing"], peer["rounds"], peer["failed"],
                peer["keys_repaired"],
            ]
            for peer in _indexed(fields, "cluster_aae_peer")
        ]
        if peers:
            lines += [""] + _table(
                ["AAE PEER", "LAST EXCHANGE", "RESULT", "REPAIRED", "PARTITIONS DIFFERING", "ROUNDS", "FAILED",
                 "KEYS REPAIRED"],
                peers,
            )
    if "cluster_moves_pending" in fields:
        lines += ["", "PARTITION MOVES (copies from this node after ring changes)"] + [
            f"  pending {fields['cluster_moves_pending']}  streaming {fields['cluster_moves_streaming']}"
            f"  done {fields['cluster_moves_done']}  keys copied {fields['cluster_moves_keys_copied']}",
        ]
    if "cluster_hints_written" in fields:
        targets = _indexed(fields, "cluster_hints_target")
        lines += ["", "HINTED HANDOFF"] + [
            f"  hints pending         {fields['cluster_hints_pending_records']}"
            f" ({_bytes(fields['cluster_hints_pending_bytes'])})",
            f"  written               {fields['cluster_hints_written']}",
            f"  replayed              {fields['cluster_hints_replayed']}"
            f" ({fields['cluster_hints_replay_failed']} replays stopped)",
            f"  dropped               {fields['cluster_hints_dropped_window']} past the window,"
            f" {fields['cluster_hints_dropped_full']} over the size bound,"
            f" {fields['cluster_hints_dropped_damaged']} damaged,"
            f" {fields.get('cluster_hints_dropped_error', 0)} refused by their target,"
            f" {fields.get('cluster_hints_dropped_removed', 0)} for removed members",
            f"  held for others       {fields.get('cluster_hints_held', 0)} (sloppy quorum fallback)",
        ] + [
            f"  hints pending for {target['target']}: {target['records']} ({_bytes(target['bytes'])})"
            for target in targets
        ]
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
