"""The ring on the bus.

    TKV.RING                -> the ring document (``cluster.ring_document``) as
                               this node sees it, with the node ids it learned
                               and its up/down opinion; the debugging tool
                               (``redis-cli -p <bus port> TKV.RING``)
    TKV.RING RECORD         -> the ring record (``cluster.ring_record``, JSON):
                               what a node that saw a higher epoch fetches
    TKV.RING.PUSH record    -> +OK; the node adopts the ring soon if its epoch
                               is higher (a member pushing a change)
    TKV.RING.CHANGE ADD host:port | REMOVE host:port-or-node-id [PLAN]
                            -> the change (``change_reply``); without PLAN the
                               node adopts the staged ring and pushes it to
                               every member (``trio-kv cluster add/remove/plan``)
    TKV.RING.CHANGE FINISH  -> once every copy is made: the final ring, epoch + 1

A change runs in two epochs. ADD/REMOVE: the final ring is
``cluster.ring_change.reclaim`` of this node's ring, and the node adopts
it *staged* (``ring_change.staged``: the same places, the members that
were in each list first, so reads ask only them while the newcomers are
copied to). FINISH (asked of a node that had the ring before the staged
one): the final ring itself, one epoch later, which moves no data. Adoption happens on the event loop after the reply: the
caller confirms it by reading ``TKV.RING`` until the epoch and hash match.
"""

from __future__ import annotations

from ...cluster.ring import Member, Ring, movement
from ...cluster.ring_change import reclaim, staged
from ...cluster.ring_document import ring_document, ring_hash
from ...cluster.ring_record import RingRecordError, decode_ring, encode_ring, previous_hash_of
from ...protocol.replies import OK, Error, Map
from ..session import Session
from .state import BusNode

SYNTAX = "TKV.RING.CHANGE ADD|REMOVE member [PLAN] | FINISH"


def _node(session: Session) -> BusNode:
    peer = session.peer
    assert peer is not None  # access.guarded
    return peer.node


def cmd_ring(session: Session, args: list[bytes]) -> object:
    view = _node(session).view()
    if len(args) == 1:
        return ring_document(view.ring, view.node_ids, frozenset(view.up))
    if len(args) == 2 and args[1].upper() == b"RECORD":
        return encode_ring(view.ring, _node(session).previous_ring_hash)
    return Error("ERR syntax error: TKV.RING [RECORD]")


def cmd_push(session: Session, args: list[bytes]) -> object:
    try:
        ring = decode_ring(args[1])
    except RingRecordError as error:
        return Error(f"ERR {error}")
    _node(session).offer_ring(ring, previous_hash=previous_hash_of(args[1]))
    return OK


def cmd_change(session: Session, args: list[bytes]) -> object:
    node = _node(session)
    operation = args[1].upper()
    if operation == b"FINISH" and len(args) == 2:
        return _finish(node)
    if len(args) < 3:
        return Error(f"ERR syntax error: {SYNTAX}")
    if len(args) not in (3, 4) or (len(args) == 4 and args[3].upper() != b"PLAN"):
        return Error(f"ERR syntax error: {SYNTAX}")
    view = node.view()
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
    if len(args) == 3:
        node.offer_ring(stage, previous_hash=ring_hash(view.ring), push=True)
    return change_reply(view.ring, final, stage)


def _finish(node: BusNode) -> object:
    """The staged ring's final order (the module docstring), made from the
    ring the staged one came from, one epoch later; no data moves."""
    view = node.view()
    previous = node.previous_ring
    if previous is None:
        return Error("ERR this node does not know the ring the current one was made from (ask the node that made the change)")
    final = reclaim(previous, view.ring.members, replicas=node.replicas)
    if final.preference_lists == view.ring.preference_lists:
        return Error(f"ERR nothing to finish: epoch {view.ring.epoch} is already final")
    if staged(previous, final).preference_lists != view.ring.preference_lists:
        return Error(f"ERR epoch {view.ring.epoch} is not a staged change of the ring before it")
    final = Ring(epoch=view.ring.epoch + 1, members=final.members, partition_count=final.partition_count,
                 preference_lists=final.preference_lists)
    node.offer_ring(final, previous_hash=ring_hash(view.ring), push=True)
    return change_reply(view.ring, final, final)


def change_reply(old: Ring, final: Ring, adopted: Ring) -> Map:
    """The ring adopted now (epoch, hash, members), the partitions whose
    first member changes in the final ring ("moved"), the replica moves
    (copies to make), and each changed partition as [partition, old list,
    final list] (comma-separated addresses)."""
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
        (b"replica_moves", moved.replicas),
        (b"changes", changes),
    ])
