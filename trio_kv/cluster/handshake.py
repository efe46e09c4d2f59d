"""The cluster bus handshake, as data: what ``TKV.HELLO`` carries, when a
peer is refused, and the HMAC proofs of ``--cluster-secret``. Pure: the
inbound side (``commands.peer.hello``) and the outbound side
(``server.cluster.dial``) both use it, so they cannot disagree.

The exchange (A dials B's bus port, client port + 10000)::

    A -> B  TKV.HELLO <version> <cluster name> <A's node id> <A's address> <ring hash> <A's nonce>
    B -> A  [<version>, <cluster name>, <B's node id>, <B's address>, <ring hash>, <B's nonce>, <B's proof>]
    A -> B  TKV.AUTH <A's proof>          (only when a secret is set)
    B -> A  +OK

Rules kept here:

1. The secret never crosses the wire: each side proves it holds it with
   HMAC-SHA256 over both nonces, both node ids and the cluster name, under
   a label naming the direction (so B's proof can never be replayed as A's,
   and a proof from one connection is useless on another: fresh nonces).
   Proofs are compared with ``hmac.compare_digest``.
2. Both sides check each other (``refusal``): same protocol version, same
   cluster name, the other side's address a member, and, when both are at
   the same ring epoch, the same ring (hash of members, partition count and
   preference lists). Nodes at different epochs meet: their pings then
   tell the one behind to fetch the newer ring (a membership change). A refusal is
   a sentence for the log and the error reply.
3. Without a secret the HELLO alone completes the handshake and the proof
   is empty; a side with a secret refuses a peer that sends an empty proof.

An admin tool (``trio-kv cluster add/remove``) is not a peer: it proves
the secret with ``TKV.ADMIN.HELLO`` (the node answers a fresh nonce) and
``TKV.ADMIN.AUTH <its nonce> <admin_proof>``, which lets the connection
run the read and admin commands, never the peer ones.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

PROTOCOL_VERSION = 1
NONCE_BYTES = 16
# The error code every handshake refusal starts with.
REFUSED = "TKVREFUSED"
_NODE_ID = re.compile(r"[0-9a-f]{40}")
_HEX = re.compile(r"[0-9a-f]*")


@dataclass(frozen=True)
class Hello:
    """One side's introduction (the HELLO's arguments, or its reply)."""

    version: int
    cluster_name: str
    node_id: str
    # The sender's client address (host:port), a ring member.
    address: str
    ring_hash: str
    # Hex; the other side's proof covers it.
    nonce: str

    def to_args(self) -> list[bytes]:
        return [
            str(self.version).encode(), self.cluster_name.encode(), self.node_id.encode(),
            self.address.encode(), self.ring_hash.encode(), self.nonce.encode(),
        ]

    @classmethod
    def from_args(cls, args: list[bytes]) -> Hello:
        """From the six fields; ValueError with a reason when malformed."""
        if len(args) != 6:
            raise ValueError(f"a HELLO has 6 fields, got {len(args)}")
        version_text, name, node_id, address, ring_hash, nonce = (arg.decode("utf-8", "replace") for arg in args)
        if not version_text.isdigit():
            raise ValueError(f"protocol version must be a number, got {version_text!r}")
        if not _NODE_ID.fullmatch(node_id):
            raise ValueError("node id must be 40 lowercase hex characters")
        if len(nonce) != 2 * NONCE_BYTES or not _HEX.fullmatch(nonce):
            raise ValueError(f"nonce must be {2 * NONCE_BYTES} lowercase hex characters")
        return cls(int(version_text), name, node_id, address, ring_hash, nonce)


def new_nonce() -> str:
    return secrets.token_hex(NONCE_BYTES)


def refusal(mine: Hello, theirs: Hello, members: frozenset[str]) -> str | None:
    """Why a peer introducing itself as ``theirs`` is refused (None: accepted).
    ``members``: the ring's member addresses."""
    if theirs.version != mine.version:
        return f"protocol version {theirs.version}, this node speaks {mine.version}"
    if theirs.cluster_name != mine.cluster_name:
        return f"cluster name {theirs.cluster_name!r}, this node's is {mine.cluster_name!r}"
    if theirs.address not in members:
        return f"address {theirs.address} is not a member of this node's ring"
    if theirs.address == mine.address:
        return f"address {theirs.address} is this node's own"
    their_hash, their_epoch = split_hello_ring(theirs.ring_hash)
    my_hash, my_epoch = split_hello_ring(mine.ring_hash)
    if their_hash != my_hash and their_epoch == my_epoch:
        return (
            f"ring hash {their_hash}, this node's is {my_hash} at the same epoch {my_epoch} "
            "(different members, partitions or replicas)"
        )
    return None


def hello_ring(hash_text: str, epoch: int) -> str:
    """The HELLO's ring field: the ring hash, with ``@epoch`` after the
    first epoch (so a node at epoch 1 sends what it always sent)."""
    return hash_text if epoch == 1 else f"{hash_text}@{epoch}"


def split_hello_ring(field: str) -> tuple[str, int]:
    """(hash, epoch) of a HELLO's ring field (``hello_ring``); a malformed
    epoch reads as -1, which no ring has (a joining node's is 0)."""
    hash_text, separator, epoch_text = field.partition("@")
    if not separator:
        return hash_text, 1
    return hash_text, int(epoch_text) if epoch_text.isdigit() else -1


def _proof(secret: str, direction: bytes, cluster_name: str, dialer: Hello, listener: Hello) -> str:
    message = b"\0".join([
        b"trio-kv bus", direction, cluster_name.encode(),
        dialer.nonce.encode(), listener.nonce.encode(), dialer.node_id.encode(), listener.node_id.encode(),
    ])
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def listener_proof(secret: str | None, dialer: Hello, listener: Hello) -> str:
    """What the listening side (B) sends to prove it holds the secret ("" without one)."""
    return "" if secret is None else _proof(secret, b"listener", listener.cluster_name, dialer, listener)


def dialer_proof(secret: str | None, dialer: Hello, listener: Hello) -> str:
    """What the dialing side (A) sends in TKV.AUTH ("" without a secret)."""
    return "" if secret is None else _proof(secret, b"dialer", dialer.cluster_name, dialer, listener)


def admin_proof(secret: str, listener_nonce: str, admin_nonce: str) -> str:
    """What an admin tool sends in ``TKV.ADMIN.AUTH`` to prove it holds the
    cluster secret: an HMAC over the node's nonce (fresh per connection)
    and its own, under a label no peer proof uses (rule 1)."""
    message = b"\0".join([b"trio-kv bus", b"admin", listener_nonce.encode(), admin_nonce.encode()])
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def proof_ok(expected: str, presented: str) -> bool:
    """Constant-time comparison; an empty expected proof (no secret) accepts only an empty one."""
    return hmac.compare_digest(expected.encode(), presented.encode())
