"""TKV.PING [epoch ring-hash]: the liveness probe every node sends each
peer every 500 ms (design: the pings are the gossip). Replies
``[PONG, epoch, ring-hash]``: this node's ring epoch and hash, which the
pinger compares with its own. The optional arguments are the sender's
(for a human reading a capture; the answer does not depend on them).
"""

from __future__ import annotations

from ..session import Session


def cmd_ping(session: Session, args: list[bytes]) -> object:
    peer = session.peer
    assert peer is not None
    return [b"PONG", peer.node.view().ring.epoch, peer.node.ring_hash.encode()]
