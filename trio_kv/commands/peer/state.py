"""A bus connection's handshake state, and what peer handlers may ask of
the node (``BusNode``, implemented by ``server.cluster.node.ClusterNode``).

Stages: ``NEW`` (nothing yet), ``CHALLENGED`` (HELLO answered, a secret is
set, TKV.AUTH expected), ``DONE`` (the peer is who the cluster lets in).
Only the connection's own task (one job at a time) touches it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from ...cluster.handshake import Hello
from ...cluster.ring import Ring
from ...cluster.view import ClusterView


class Stage(enum.Enum):
    NEW = "new"
    CHALLENGED = "challenged"
    DONE = "done"


class BusNode(Protocol):
    """The node, as peer handlers see it (every method safe from a worker thread)."""

    def hello(self, nonce: str) -> Hello:
        """This node's introduction with ``nonce``."""
        ...

    def view(self) -> ClusterView:
        """The current view (an immutable snapshot)."""
        ...

    @property
    def secret(self) -> str | None: ...

    @property
    def ring_hash(self) -> str:
        """``cluster.ring_document.ring_hash`` of the view's ring (computed once)."""
        ...

    @property
    def replicas(self) -> int:
        """N, which a membership change keeps."""
        ...

    @property
    def previous_ring(self) -> Ring | None:
        """The ring the current one was made from, if this node had it."""
        ...

    def member_addresses(self) -> frozenset[str]:
        """The addresses the handshake accepts (the ring's members)."""
        ...

    @property
    def previous_ring_hash(self) -> str | None:
        """The hash of the ring the current one was made from, when known."""
        ...

    def offer_ring(
        self, ring: Ring, *, previous_hash: str | None = None, push: bool = False, change: str | None = None,
    ) -> None:
        """Adopt ``ring`` (made from the ring hashed ``previous_hash``, by the
        admin change ``change``) soon if its epoch is higher (``push``: then
        send it to every member)."""
        ...

    @property
    def change_token(self) -> str | None:
        """The token of the admin change that made the adopted ring."""
        ...

    def lock_change(self, epoch: int, token: str, seconds: float) -> str | None:
        """Lock this node for ``token``'s ring change of ``epoch`` (None: granted; else why not)."""
        ...

    def unlock_change(self, token: str) -> bool:
        """Release ``token``'s lock (False: it did not hold this node)."""
        ...

    def holds_change(self, token: str, epoch: int) -> bool:
        """Whether ``token``'s lock holds this node at ``epoch``."""
        ...


@dataclass
class PeerState:
    node: BusNode
    stage: Stage = Stage.NEW
    # Set by TKV.HELLO: the peer's introduction and this node's answer.
    theirs: Hello | None = None
    mine: Hello | None = None
    # Set by TKV.ADMIN.HELLO: the nonce an admin tool's proof must cover.
    admin_nonce: str | None = None
    # An admin tool that proved the cluster secret (TKV.ADMIN.AUTH): read
    # and admin commands, not the peer ones.
    admin: bool = False

    @property
    def authenticated(self) -> bool:
        return self.stage is Stage.DONE
