"""``trio-kv cluster add HOST:PORT``, ``remove NODE`` and ``plan add|remove ...``:
membership changes, asked of any member (``-h/-p``: its client address, as
``status``; the request goes to its bus port, client port + 10000, or
``--bus-port``).

The node computes the new ring (``cluster.ring_change.reclaim`` of its
ring) in ``TKV.RING.CHANGE``; ``plan`` prints it and changes nothing.
``add``/``remove`` run the change in two epochs (commands/peer/ring.py):
the staged ring, adopted by every member (its ``TKV.RING`` shows that
epoch and hash); then every partition copy done (the members' INFO
cluster ``cluster_moves_pending``/``streaming`` at 0, read on their client
ports: ``-a`` or ``TRIO_KV_REQUIREPASS`` if they want a password); then
``TKV.RING.CHANGE FINISH``, the final ring, adopted by every member. Each
step waits at most ``--wait`` seconds.

NODE is a member's address or node id. A node to add is started first with
``--cluster-seeds`` naming itself and at least one member: it is refused by
the members until it is added, then learns the ring from its first ping.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from collections.abc import Sequence

from ...cluster.ring import BUS_PORT_OFFSET, Member
from ...protocol.replies import Error
from ...protocol.resp_reply import ReplyParser
from .status import TIMEOUT_SECONDS, _call, fetch_fields

USAGE = "usage: trio-kv cluster add HOST:PORT | remove NODE | plan add HOST:PORT | plan remove NODE  [-h HOST] -p PORT"
POLL_SECONDS = 0.1


def _request(host: str, bus_port: int, *args: bytes) -> object:
    with socket.create_connection((host, bus_port), timeout=TIMEOUT_SECONDS) as sock:
        return _call(sock, ReplyParser(), *args)


def _fields(reply: object) -> dict[bytes, object]:
    if isinstance(reply, Error):
        raise ConnectionError(reply.message)
    if not isinstance(reply, list) or len(reply) % 2:
        raise ConnectionError(f"unexpected reply {str(reply)[:80]}")
    return dict(zip(reply[::2], reply[1::2]))


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def render_change(fields: dict[bytes, object], *, planned: bool) -> str:
    changes = fields[b"changes"]
    assert isinstance(changes, list)
    verb = "would move" if planned else "moves"
    lines = [
        f"ring epoch {fields[b'epoch']}  hash {_text(fields[b'hash'])}  members "
        + ", ".join(_text(member) for member in fields[b"members"]),  # type: ignore[attr-defined]
        f"{verb} {fields[b'moved_partitions']} partitions (first member changes) and "
        f"{fields[b'replica_moves']} replica places (copies to make) in {len(changes)} preference lists",
    ]
    lines += [
        f"  partition {partition:>5}: {_text(before)} -> {_text(after)}" for partition, before, after in changes
    ]
    return "\n".join(lines)


def _ring_of(host: str, bus_port: int) -> tuple[int, str] | None:
    """(epoch, hash) a member's TKV.RING shows; None if it does not answer."""
    try:
        fields = _fields(_request(host, bus_port, b"TKV.RING"))
    except (OSError, ConnectionError):
        return None
    epoch, hash_text = fields.get(b"epoch"), fields.get(b"hash")
    return (epoch, _text(hash_text)) if isinstance(epoch, int) else None


def _wait_adopted(options: argparse.Namespace, bus_port: int, fields: dict[bytes, object], deadline: float) -> bool:
    """Until the node, then every member, shows the epoch and hash in ``fields``."""
    wanted = (fields[b"epoch"], _text(fields[b"hash"]))
    while _ring_of(options.host, bus_port) != wanted:
        if time.monotonic() > deadline:
            print(f"trio-kv cluster: {options.host}:{options.port} did not adopt epoch {wanted[0]} in time "
                  "(another change won?); see trio-kv cluster status", file=sys.stderr)
            return False
        time.sleep(POLL_SECONDS)
    # The other members: pushed at once, or learnt at their next ping.
    members = _members(fields)
    pending = set(members)
    while pending and time.monotonic() <= deadline:
        pending = {member for member in pending if _ring_of(member.host, member.port + BUS_PORT_OFFSET) != wanted}
        if pending:
            time.sleep(POLL_SECONDS)
    if pending:
        print(f"trio-kv cluster: not adopted in time by {', '.join(sorted(m.address for m in pending))}", file=sys.stderr)
        return False
    print(f"epoch {wanted[0]} adopted by all {len(members)} members")
    return True


def _members(fields: dict[bytes, object]) -> list[Member]:
    return [Member.parse(_text(member)) for member in fields[b"members"]]  # type: ignore[attr-defined]


def _moves_left(member: Member, password: str | None) -> int | None:
    """Partition copies pending or streaming from ``member`` (None: no answer)."""
    try:
        info = fetch_fields(member.host, member.port, password)
    except (OSError, ConnectionError):
        return None
    return int(info.get("cluster_moves_pending", 0)) + int(info.get("cluster_moves_streaming", 0))


def _wait_moves(options: argparse.Namespace, fields: dict[bytes, object], deadline: float) -> bool:
    started = time.monotonic()
    last_report = started
    while True:
        left = [_moves_left(member, options.password) for member in _members(fields)]
        if all(count == 0 for count in left):
            print(f"every partition copy done in {time.monotonic() - started:.1f} s")
            return True
        if time.monotonic() > deadline:
            print("trio-kv cluster: partition copies not done in time (see trio-kv cluster status); "
                  "finish later with the same command's FINISH step", file=sys.stderr)
            return False
        if time.monotonic() - last_report >= 5:
            print(f"  copies left: {sum(count or 0 for count in left)}")
            last_report = time.monotonic()
        time.sleep(POLL_SECONDS * 5)


def _change(options: argparse.Namespace, bus_port: int, fields: dict[bytes, object]) -> int:
    """Staged ring adopted everywhere, copies made, final ring adopted everywhere."""
    deadline = time.monotonic() + options.wait
    if not _wait_adopted(options, bus_port, fields, deadline) or not _wait_moves(options, fields, deadline):
        return 1
    try:
        finished = _fields(_request(options.host, bus_port, b"TKV.RING.CHANGE", b"FINISH"))
    except (OSError, ConnectionError) as error:
        print(f"trio-kv cluster: finish: {error}", file=sys.stderr)
        return 1
    print(f"final ring epoch {finished[b'epoch']} (the new members coordinate their share)")
    return 0 if _wait_adopted(options, bus_port, finished, time.monotonic() + options.wait) else 1


def main(argv: Sequence[str]) -> int:
    planned = bool(argv) and argv[0] == "plan"
    words = list(argv[1:] if planned else argv)
    if len(words) < 2 or words[0] not in ("add", "remove"):
        print(USAGE, file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog=f"trio-kv cluster {'plan ' if planned else ''}{words[0]}", add_help=False)
    parser.add_argument("--help", action="help")
    parser.add_argument("target", help="HOST:PORT to add; address or node id to remove")
    parser.add_argument("-h", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True, help="the member's client port")
    parser.add_argument("--bus-port", type=int, help=f"its bus port (default: port + {BUS_PORT_OFFSET})")
    parser.add_argument("--wait", type=float, default=600.0, help="seconds to wait for each step")
    parser.add_argument("-a", "--password", default=os.environ.get("TRIO_KV_REQUIREPASS"),
                        help="the members' client password (to read their partition moves)")
    options = parser.parse_args(words[1:])
    bus_port = options.bus_port or options.port + BUS_PORT_OFFSET
    request = [b"TKV.RING.CHANGE", words[0].upper().encode(), options.target.encode()]
    try:
        fields = _fields(_request(options.host, bus_port, *request, *([b"PLAN"] if planned else [])))
    except (OSError, ConnectionError) as error:
        print(f"trio-kv cluster: {options.host}:{bus_port}: {error}", file=sys.stderr)
        return 1
    print(render_change(fields, planned=planned))
    return 0 if planned else _change(options, bus_port, fields)
