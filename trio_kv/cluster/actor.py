"""The actor id a node's versions are written under: its node id and its
incarnation, in 20 bytes.

A DVVSet dot ``(actor, n)`` must never stand for two different writes. A
node issues its dots from the counters its log holds, and a power loss (or
an OS crash) with ``appendfsync everysec`` or ``no`` can take the log's
tail with it, including dots this node already sent to replicas: after the
restart it would issue the same dot again for a new value, and a replica
that holds the old one would take the new value as already seen and drop
it. So a node that did not stop cleanly comes back as a new actor (the
incarnation, ``store/durability/incarnation.py``, is bumped), as Riak's
vnode ids are ``<<NodeId, Epoch:32>>`` with a new epoch whenever the
vnode's counter cannot be trusted (``riak_kv_vnode_status_mgr``). The node
id itself (CLUSTER MYID, the ring, the bus handshake) never changes.

The id: incarnation 0 is the node id's own 20 bytes (a node that never
stopped uncleanly writes as itself); incarnation ``i`` keeps the node id's
first 16 bytes and adds ``i`` to the last 4 as a big-endian number, modulo
2**32. So:

* every actor id is 20 bytes and ids are compared as bytes: the total order
  GET's winner rule ``(timestamp, actor)`` needs. Where one node's
  incarnations fall in that order does not matter for correctness: a new
  local write always carries a timestamp above every version of its key
  that this node holds (the hybrid clock), and between concurrent writes
  any fixed order is as good as another, as long as every node applies the
  same one (bytes do);
* the incarnations 0 .. 2**32 - 1 of one node are distinct, and two nodes'
  ids collide only if 16 random bytes of their node ids do (2**-128);
* an actor id shows which node wrote: its first 32 hex digits are the node
  id's.

Pure: no IO.
"""

from __future__ import annotations

NODE_ID_BYTES = 20
# The node id's bytes kept as they are; the rest counts incarnations.
_KEPT_BYTES = 16
INCARNATIONS = 1 << 32


def actor_id(node_id: str, incarnation: int) -> bytes:
    """The 20-byte actor of ``node_id`` (40 hex digits) in ``incarnation``
    (0 to 2**32 - 1). ``ValueError`` for anything else."""
    raw = bytes.fromhex(node_id)
    if len(raw) != NODE_ID_BYTES:
        raise ValueError(f"a node id is {NODE_ID_BYTES} bytes, got {len(raw)}")
    if not 0 <= incarnation < INCARNATIONS:
        raise ValueError(f"incarnation {incarnation} outside 0 .. {INCARNATIONS - 1}")
    if incarnation == 0:
        return raw
    tail = (int.from_bytes(raw[_KEPT_BYTES:], "big") + incarnation) % INCARNATIONS
    return raw[:_KEPT_BYTES] + tail.to_bytes(NODE_ID_BYTES - _KEPT_BYTES, "big")
