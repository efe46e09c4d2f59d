"""The ring on the bus.

    TKV.RING                -> the ring document (``cluster.ring_document``) as
                               this node sees it, with the node ids it learned
                               and its up/down opinion; the debugging tool
                               (``redis-cli -p <bus port> TKV.RING``)
    TKV.RING RECORD         -> the ring record (``cluster.ring_record``, JSON):
                               what a node that saw a higher epoch fetches
    TKV.RING.PUSH record    -> +OK; the node adopts the ring soon if its epoch
                               is higher (a member pushing a change)
    TKV.RING.LOCK epoch token seconds
                            -> +OK, or an error saying why not: the ring-change
                               lock (server/cluster/change_lock.py), a
                               compare-and-set on the epoch this node is at
    TKV.RING.UNLOCK token   -> 1 if the lock was that token's, else 0
    TKV.RING.CHANGE ADD host:port | REMOVE host:port-or-node-id PLAN | LOCKED token
                            -> the change (``change_reply``); PLAN changes
                               nothing; LOCKED (this node locked by ``token``,
                               as every member should be) adopts the staged
                               ring and pushes it to every member
                               (``trio-kv cluster add/remove/plan``)
    TKV.RING.CHANGE FINISH  -> once every copy is made: the final ring, epoch + 1

A change runs in two epochs. ADD/REMOVE: the final ring is
``cluster.ring_change.reclaim`` of this node's ring, and the node adopts
it *staged* (``ring_change.staged``: the old lists serve reads and
coordinate, writes go to the union of old and new lists). FINISH (asked
of any member, while a change is staged): ``ring_change.finished``, the
new lists, one epoch later, which moves no data; every node computes the
same one. Adoption happens on the event loop after the reply: the caller
confirms it by reading ``TKV.RING`` until the epoch and hash match.
"""

from __future__ import annotations

from ...cluster.ring import Member, Ring, movement
from ...cluster.ring_change import finished, reclaim, staged
from ...cluster.ring_document import ring_document, ring_hash
from ...cluster.ring_record import RingRecordError, change_of, decode_ring, encode_ring, previous_hash_of
from ...protocol.integers import parse_int64
from ...protocol.replies import OK, Error, Map
from ..session import Session
from .state import BusNode

SYNTAX = "TKV.RING.CHANGE ADD|REMOVE member PLAN|LOCKED token | FINISH"
STAGED = "ERR ring epoch {epoch} is a staged change under way: finish it first (trio-kv cluster finish)"


def _node(session: Session) -> BusNode:
    peer = session.peer
    assert peer is not None  # access.guarded
    return peer.node


def cmd_ring(session: Session, args: list[bytes]) -> object:
    node = _node(session)
    view = node.view()
    if len(args) == 1:
        return ring_document(view.ring, view.node_ids, frozenset(view.up))
    if len(args) == 2 and args[1].upper() == b"RECORD":
        return encode_ring(view.ring, node.previous_ring_hash, node.change_token)
    return Error("ERR syntax error: TKV.RING [RECORD]")


def cmd_push(session: Session, args: list[bytes]) -> object:
    try:
        ring = decode_ring(args[1])
    except RingRecordError as error:
        return Error(f"ERR {error}")
    _node(session).offer_ring(ring, previous_hash=previous_hash_of(args[1]), change=change_of(args[1]))
    return OK


def cmd_lock(session: Session, args: list[bytes]) -> object:
    epoch, seconds = parse_int64(args[1]), parse_int64(args[3])
    token = args[2].decode("utf-8", "replace")
    if epoch is None or seconds is None or seconds < 1 or not token:
        return Error("ERR syntax error: TKV.RING.LOCK epoch token seconds")
    refused = _node(session).lock_change(epoch, token, float(seconds))
    return OK if refused is None else Error(f"CHANGELOCKED {refused}")


def cmd_unlock(session: Session, args: list[bytes]) -> object:
    return int(_node(session).unlock_change(args[1].decode("utf-8", "replace")))


def cmd_change(session: Session, args: list[bytes]) -> object:
    node = _node(session)
    operation = args[1].upper()
    if operation == b"FINISH" and len(args) == 2:
        return _finish(node)
    planned = len(args) == 4 and args[3].upper() == b"PLAN"
    locked = len(args) == 5 and args[3].upper() == b"LOCKED"
    if not (planned or locked):
        return Error(f"ERR syntax error: {SYNTAX}")
    view = node.view()
    if view.ring.staged:
        return Error(STAGED.format(epoch=view.ring.epoch))
    token = args[4].decode("utf-8", "replace") if locked else ""
    if locked and not node.holds_change(token, view.ring.epoch):
        return Error(
            f"CHANGELOCKED this node is not locked for this change at ring epoch {view.ring.epoch} "
            "(TKV.RING.LOCK every member first; the lock expired, or the ring changed)"
        )
    target = args[2].decode("utf-8", "replace")
    members = set(view.ring.members)
    if operation == b"ADD":
        try:
            member = Member.parse(target)
        except ValueError as error:
            return Error(f"ERR {error}")
        if member in members:
            return Error(f"ERR {member.address} is already a member (epoch {view.ring.epoch})")
        members.add(member)
    elif operation == b"REMOVE":
        by_id = {node_id: member for member, node_id in view.node_ids.items() if member in members}
        found = by_id.get(target) or next((m for m in members if m.address == target), None)
        if found is None:
            return Error(f"ERR {target} is not a member's address or node id (epoch {view.ring.epoch})")
        if len(members) == 1:
            return Error("ERR cannot remove the last member")
        members.discard(found)
    else:
        return Error(f"ERR syntax error: {SYNTAX}")
    final = reclaim(view.ring, members, replicas=node.replicas)
    stage = staged(view.ring, final)
    if locked:
        node.offer_ring(stage, previous_hash=ring_hash(view.ring), push=True, change=token)
    return change_reply(view.ring, final, stage)


def _finish(node: BusNode) -> object:
    """The staged ring's final ring (the module docstring), one epoch later; no data moves."""
    view = node.view()
    if not view.ring.staged:
        return Error(f"ERR nothing to finish: epoch {view.ring.epoch} is not a staged change")
    final = finished(view.ring)
    node.offer_ring(final, previous_hash=ring_hash(view.ring), push=True)
    return change_reply(view.ring, final, final, copies=0)


def change_reply(old: Ring, final: Ring, adopted: Ring, *, copies: int | None = None) -> Map:
    """The ring adopted now (epoch, hash, members), the partitions whose
    first member changes in the final ring ("moved"), the replica moves
    (copies to make; ``copies`` overrides: a FINISH makes none), and each
    changed partition as [partition, old list, final list] (comma-separated
    addresses)."""
    changes = [
        [partition, ",".join(m.address for m in before).encode(), ",".join(m.address for m in after).encode()]
        for partition, (before, after) in enumerate(zip(old.preference_lists, final.preference_lists, strict=True))
        if before != after
    ]
    moved = movement(old, final)
    return Map([
        (b"epoch", adopted.epoch),
        (b"hash", ring_hash(adopted).encode()),
        (b"members", [member.address.encode() for member in adopted.members]),
        (b"moved_partitions", moved.primaries),
        (b"replica_moves", moved.replicas if copies is None else copies),
        (b"changes", changes),
    ])
