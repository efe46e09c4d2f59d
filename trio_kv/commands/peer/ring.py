"""TKV.RING: the ring document (``cluster.ring_document``) as this node
sees it, with the node ids it learned and its up/down opinion; the
debugging tool (``redis-cli -p <bus port> TKV.RING``)."""

from __future__ import annotations

from ...cluster.ring_document import ring_document
from ..session import Session


def cmd_ring(session: Session, args: list[bytes]) -> object:
    peer = session.peer
    assert peer is not None
    view = peer.node.view()
    return ring_document(view.ring, view.node_ids, frozenset(view.up))
