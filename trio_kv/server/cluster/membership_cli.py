"""``trio-kv cluster add HOST:PORT``, ``remove NODE`` and ``plan add|remove ...``:
membership changes, asked of any member (``-h/-p``: its client address, as
``status``; the request goes to its bus port, client port + 10000, or
``--bus-port``).

The node computes the new ring (``cluster.ring_change.reclaim`` of its
ring, epoch + 1) in ``TKV.RING.CHANGE``; ``plan`` prints it and changes
nothing. ``add``/``remove`` then wait (up to ``--wait`` seconds) until the
node has adopted it (its ``TKV.RING`` shows that epoch and hash), and
report which members have it; the others learn it from their next ping.

NODE is a member's address or node id. A node to add is started first with
``--cluster-seeds`` naming itself and at least one member: it is refused by
the members until it is added, then learns the ring from its first ping.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from collections.abc import Sequence

from ...cluster.ring import BUS_PORT_OFFSET, Member
from ...protocol.replies import Error
from ...protocol.resp_reply import ReplyParser
from .status import TIMEOUT_SECONDS, _call

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


def _wait_adopted(options: argparse.Namespace, bus_port: int, fields: dict[bytes, object]) -> int:
    wanted = (fields[b"epoch"], _text(fields[b"hash"]))
    deadline = time.monotonic() + options.wait
    while _ring_of(options.host, bus_port) != wanted:
        if time.monotonic() > deadline:
            print(f"trio-kv cluster: {options.host}:{options.port} did not adopt epoch {wanted[0]} within "
                  f"{options.wait:g} s (another change won?); see trio-kv cluster status", file=sys.stderr)
            return 1
        time.sleep(POLL_SECONDS)
    # The other members: pushed at once, or learnt at their next ping.
    members = [Member.parse(_text(member)) for member in fields[b"members"]]  # type: ignore[attr-defined]
    pending = set(members)
    while pending and time.monotonic() <= deadline:
        pending = {member for member in pending if _ring_of(member.host, member.port + BUS_PORT_OFFSET) != wanted}
        if pending:
            time.sleep(POLL_SECONDS)
    print(f"adopted by {len(members) - len(pending)} of {len(members)} members"
          + ("" if not pending else f" (not yet: {', '.join(sorted(member.address for member in pending))})"))
    return 0


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
    parser.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the members to adopt it")
    options = parser.parse_args(words[1:])
    bus_port = options.bus_port or options.port + BUS_PORT_OFFSET
    request = [b"TKV.RING.CHANGE", words[0].upper().encode(), options.target.encode()]
    try:
        fields = _fields(_request(options.host, bus_port, *request, *([b"PLAN"] if planned else [])))
    except (OSError, ConnectionError) as error:
        print(f"trio-kv cluster: {options.host}:{bus_port}: {error}", file=sys.stderr)
        return 1
    print(render_change(fields, planned=planned))
    return 0 if planned else _wait_adopted(options, bus_port, fields)
