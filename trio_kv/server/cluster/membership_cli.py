"""``trio-kv cluster add HOST:PORT``, ``remove NODE``, ``plan add|remove ...``
and ``finish``: membership changes, asked of any member (``-h/-p``: its
client address, as ``status``; the request goes to its bus port, client
port + 10000, or ``--bus-port``).

The node computes the new ring (``cluster.ring_change.reclaim`` of its
ring) in ``TKV.RING.CHANGE``; ``plan`` prints it and changes nothing.
``add``/``remove`` first lock every member for the change
(``TKV.RING.LOCK epoch token``, one member at a time in address order:
server/cluster/change_lock.py; a member being removed that does not
answer is skipped), so of two admins changing the ring at once one wins
and the other is refused with the member that refused it; then run the
change in two epochs (commands/peer/ring.py): the staged ring, adopted by
every member (its ``TKV.RING`` shows that epoch and hash); then every
partition copy done (the members' INFO cluster ``cluster_moves_pending``/
``streaming`` at 0, and a leaving member's hints pending at 0, read on
their client ports: ``-a`` or ``TRIO_KV_REQUIREPASS`` if they want a
password); then ``TKV.RING.CHANGE FINISH``, the final ring, adopted by
every member. Each step waits at most ``--wait`` seconds; ``finish``
runs the last step alone (after a ``--wait`` that ran out).

With ``--cluster-secret`` set on the nodes, the tool proves it holds the
secret (``TKV.ADMIN.HELLO``/``TKV.ADMIN.AUTH``, an HMAC over fresh nonces:
the secret never crosses the wire). It reads the secret from the
environment variable ``TRIO_KV_CLUSTER_SECRET`` (the one the server reads)
or from the file ``--cluster-secret-file``, never from an argument, which
any user could read in ``ps``.

NODE is a member's address or node id. A node to add is started first with
``--cluster-seeds`` naming itself and at least one member: it is refused by
the members until it is added, then learns the ring from its first ping.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import sys
import time
from collections.abc import Mapping, Sequence

from ...cluster.handshake import admin_proof, new_nonce
from ...cluster.ring import BUS_PORT_OFFSET, Member
from ...protocol.replies import Error
from ...protocol.resp_reply import ReplyParser
from .change_lock import DEFAULT_SECONDS
from .status import TIMEOUT_SECONDS, _call, fetch_fields

USAGE = ("usage: trio-kv cluster add HOST:PORT | remove NODE | plan add HOST:PORT | plan remove NODE | finish"
         "  [-h HOST] -p PORT [--cluster-secret-file FILE]")
POLL_SECONDS = 0.1
SECRET_ENV = "TRIO_KV_CLUSTER_SECRET"


def _request(host: str, bus_port: int, secret: str | None, *args: bytes) -> object:
    """One request on a new bus connection, after proving ``secret`` (if any)."""
    with socket.create_connection((host, bus_port), timeout=TIMEOUT_SECONDS) as sock:
        parser = ReplyParser()
        if secret is not None:
            nonce = _call(sock, parser, b"TKV.ADMIN.HELLO")
            if not isinstance(nonce, bytes):
                raise ConnectionError(f"TKV.ADMIN.HELLO answered {str(nonce)[:80]}")
            mine = new_nonce()
            proved = _call(sock, parser, b"TKV.ADMIN.AUTH", mine.encode(),
                           admin_proof(secret, nonce.decode(), mine).encode())
            if isinstance(proved, Error):
                raise ConnectionError(proved.message)
        return _call(sock, parser, *args)


def read_secret(path: str | None, environ: Mapping[str, str] = os.environ) -> str | None:
    """The cluster secret: the file ``path`` (its first line) if given, else
    ``TRIO_KV_CLUSTER_SECRET``; None when neither is set."""
    if path is not None:
        with open(path, encoding="utf-8") as file:
            return file.readline().rstrip("\r\n")
    return environ.get(SECRET_ENV) or None


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


def _ring_of(host: str, bus_port: int, secret: str | None) -> tuple[int, str] | None:
    """(epoch, hash) a member's TKV.RING shows; None if it does not answer."""
    try:
        fields = _fields(_request(host, bus_port, secret, b"TKV.RING"))
    except (OSError, ConnectionError):
        return None
    epoch, hash_text = fields.get(b"epoch"), fields.get(b"hash")
    return (epoch, _text(hash_text)) if isinstance(epoch, int) else None


def _wait_adopted(options: argparse.Namespace, bus_port: int, fields: dict[bytes, object], deadline: float,
                  *, optional: frozenset[Member] = frozenset()) -> bool:
    """Until the node, then every member (but those of ``optional`` that do
    not answer: a dead node being removed), shows the epoch and hash in ``fields``."""
    wanted = (fields[b"epoch"], _text(fields[b"hash"]))
    secret = options.secret
    while _ring_of(options.host, bus_port, secret) != wanted:
        if time.monotonic() > deadline:
            print(f"trio-kv cluster: {options.host}:{options.port} did not adopt epoch {wanted[0]} in time "
                  "(another change won?); see trio-kv cluster status", file=sys.stderr)
            return False
        time.sleep(POLL_SECONDS)
    # The other members: pushed at once, or learnt at their next ping.
    members = _members(fields)
    pending = set(members)
    while pending and time.monotonic() <= deadline:
        pending = {
            member for member in pending
            if (found := _ring_of(member.host, member.port + BUS_PORT_OFFSET, secret)) != wanted
            and not (found is None and member in optional)
        }
        if pending:
            time.sleep(POLL_SECONDS)
    if pending:
        print(f"trio-kv cluster: not adopted in time by {', '.join(sorted(m.address for m in pending))}", file=sys.stderr)
        return False
    print(f"epoch {wanted[0]} adopted by all {len(members)} members")
    return True


def _members(fields: dict[bytes, object]) -> list[Member]:
    return [Member.parse(_text(member)) for member in fields[b"members"]]  # type: ignore[attr-defined]


def _moves_left(member: Member, password: str | None, *, leaving: bool) -> int | None:
    """Partition copies pending or streaming from ``member``, and for a
    member that leaves its hints not yet handed to their targets (None: no
    answer; 0 for a leaving member that does not answer: a dead node has
    nothing left to hand off)."""
    try:
        info = fetch_fields(member.host, member.port, password)
    except (OSError, ConnectionError):
        return 0 if leaving else None
    left = int(info.get("cluster_moves_pending", 0)) + int(info.get("cluster_moves_streaming", 0))
    return left + (int(info.get("cluster_hints_pending_records", 0)) if leaving else 0)


def _wait_moves(options: argparse.Namespace, fields: dict[bytes, object], deadline: float,
                leaving: frozenset[Member]) -> bool:
    started = time.monotonic()
    last_report = started
    while True:
        left = [_moves_left(member, options.password, leaving=member in leaving) for member in _members(fields)]
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


def _change(options: argparse.Namespace, bus_port: int, fields: dict[bytes, object],
            leaving: frozenset[Member]) -> int:
    """Staged ring adopted everywhere, copies made, final ring adopted everywhere."""
    deadline = time.monotonic() + options.wait
    if not _wait_adopted(options, bus_port, fields, deadline, optional=leaving) or not _wait_moves(
            options, fields, deadline, leaving):
        return 1
    return _finish(options, bus_port)


def _finish(options: argparse.Namespace, bus_port: int) -> int:
    try:
        finished = _fields(_request(options.host, bus_port, options.secret, b"TKV.RING.CHANGE", b"FINISH"))
    except (OSError, ConnectionError) as error:
        print(f"trio-kv cluster: finish: {error}", file=sys.stderr)
        return 1
    print(f"final ring epoch {finished[b'epoch']} (the new members coordinate their share)")
    return 0 if _wait_adopted(options, bus_port, finished, time.monotonic() + options.wait) else 1


def _lock_members(options: argparse.Namespace, bus_port: int, token: bytes) -> tuple[list[Member], set[Member]] | str:
    """Lock every member of the asked node's ring for this change, in address
    order (change_lock.py); (members locked, members leaving), or why not."""
    try:
        ring = _fields(_request(options.host, bus_port, options.secret, b"TKV.RING"))
    except (OSError, ConnectionError) as error:
        return f"{options.host}:{bus_port}: {error}"
    epoch = ring[b"epoch"]
    if not isinstance(epoch, int):
        return f"TKV.RING answered no epoch ({str(epoch)[:40]})"
    if b"next_members" in ring:
        return f"ring epoch {epoch} is a staged change under way: finish it first (trio-kv cluster finish)"
    listed = ring[b"members"]
    assert isinstance(listed, list)
    # [address, node id, up|down] each.
    members = {Member.parse(_text(entry[0])): _text(entry[1]) for entry in listed}
    leaving = {member for member, node_id in members.items()
               if options.command == "remove" and options.target in (member.address, node_id)}
    locked: list[Member] = []
    for member in sorted(members):
        try:
            reply = _request(member.host, member.port + BUS_PORT_OFFSET, options.secret, b"TKV.RING.LOCK",
                             b"%d" % epoch, token, b"%d" % DEFAULT_SECONDS)
        except (OSError, ConnectionError) as error:
            if member in leaving:
                print(f"  {member.address} (leaving) does not answer ({error}): not locked")
                continue
            reply = Error(f"does not answer: {error}")
        if isinstance(reply, Error):
            _unlock(options, locked, token)
            return (f"{member.address} refused the change: {reply.message} "
                    "(another ring change may be under way: see trio-kv cluster status, then try again)")
        locked.append(member)
    return locked, leaving


def _unlock(options: argparse.Namespace, members: list[Member], token: bytes) -> None:
    for member in members:
        try:
            _request(member.host, member.port + BUS_PORT_OFFSET, options.secret, b"TKV.RING.UNLOCK", token)
        except (OSError, ConnectionError):
            pass  # the lock expires by itself (change_lock.DEFAULT_SECONDS)


def _options(command: str, planned: bool, words: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"trio-kv cluster {'plan ' if planned else ''}{command}", add_help=False)
    parser.add_argument("--help", action="help")
    if command != "finish":
        parser.add_argument("target", help="HOST:PORT to add; address or node id to remove")
    parser.add_argument("-h", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True, help="the member's client port")
    parser.add_argument("--bus-port", type=int, help=f"its bus port (default: port + {BUS_PORT_OFFSET})")
    parser.add_argument("--wait", type=float, default=600.0, help="seconds to wait for each step")
    parser.add_argument("-a", "--password", default=os.environ.get("TRIO_KV_REQUIREPASS"),
                        help="the members' client password (to read their partition moves)")
    parser.add_argument("--cluster-secret-file", help=f"a file holding the cluster secret (else ${SECRET_ENV})")
    options = parser.parse_args(words)
    options.command = command
    try:
        options.secret = read_secret(options.cluster_secret_file)
    except OSError as error:
        parser.error(f"--cluster-secret-file: {error}")
    return options


def main(argv: Sequence[str]) -> int:
    planned = bool(argv) and argv[0] == "plan"
    words = list(argv[1:] if planned else argv)
    if not words or words[0] not in ("add", "remove", "finish") or (words[0] != "finish" and len(words) < 2) or (
            planned and words[0] == "finish"):
        print(USAGE, file=sys.stderr)
        return 2
    options = _options(words[0], planned, words[1:])
    bus_port = options.bus_port or options.port + BUS_PORT_OFFSET
    if options.command == "finish":
        return _finish(options, bus_port)
    request = [b"TKV.RING.CHANGE", words[0].upper().encode(), options.target.encode()]
    if planned:
        try:
            fields = _fields(_request(options.host, bus_port, options.secret, *request, b"PLAN"))
        except (OSError, ConnectionError) as error:
            print(f"trio-kv cluster: {options.host}:{bus_port}: {error}", file=sys.stderr)
            return 1
        print(render_change(fields, planned=True))
        return 0
    token = secrets.token_hex(8).encode()
    locked = _lock_members(options, bus_port, token)
    if isinstance(locked, str):
        print(f"trio-kv cluster: {words[0]} refused: {locked}", file=sys.stderr)
        return 1
    members, leaving = locked
    try:
        try:
            fields = _fields(_request(options.host, bus_port, options.secret, *request, b"LOCKED", token))
        except (OSError, ConnectionError) as error:
            print(f"trio-kv cluster: {options.host}:{bus_port}: {error}", file=sys.stderr)
            return 1
        print(render_change(fields, planned=False))
        return _change(options, bus_port, fields, frozenset(leaving))
    finally:
        _unlock(options, members, token)
