"""TKV.HELLO and TKV.AUTH: the listening side of the bus handshake
(``cluster.handshake`` describes the exchange and its rules).

    TKV.HELLO version cluster-name node-id address ring-hash nonce
      -> [version, cluster-name, node-id, address, ring-hash, nonce, proof]
    TKV.AUTH proof -> +OK

A refused HELLO (malformed, other version, cluster name or ring, not a
member) or a wrong proof answers ``-TKVREFUSED <reason>``, is logged with
the reason, and closes the connection.
"""

from __future__ import annotations

import logging

from ...cluster.handshake import REFUSED, Hello, dialer_proof, listener_proof, new_nonce, proof_ok, refusal
from ...protocol.replies import OK
from ..session import Session
from .access import refuse
from .state import Stage


def cmd_hello(session: Session, args: list[bytes]) -> object:
    peer = session.peer
    assert peer is not None  # access.guarded
    if peer.stage is not Stage.NEW:
        return refuse(session, f"{REFUSED} TKV.HELLO sent twice")
    try:
        theirs = Hello.from_args(args[1:])
    except ValueError as error:
        return refuse(session, f"{REFUSED} malformed TKV.HELLO: {error}")
    mine = peer.node.hello(new_nonce())
    members = peer.node.member_addresses()
    reason = refusal(mine, theirs, members)
    if reason is not None:
        return refuse(session, f"{REFUSED} peer {theirs.address} ({theirs.node_id[:8]}): {reason}", logging.WARNING)
    secret = peer.node.secret
    peer.theirs, peer.mine = theirs, mine
    peer.stage = Stage.DONE if secret is None else Stage.CHALLENGED
    return [*mine.to_args(), listener_proof(secret, theirs, mine).encode()]


def cmd_auth(session: Session, args: list[bytes]) -> object:
    peer = session.peer
    assert peer is not None
    if peer.stage is not Stage.CHALLENGED or peer.theirs is None or peer.mine is None:
        return refuse(session, f"{REFUSED} TKV.AUTH without a challenge (send TKV.HELLO first; no secret is set?)")
    expected = dialer_proof(peer.node.secret, peer.theirs, peer.mine)
    if not proof_ok(expected, args[1].decode("ascii", "replace")):
        return refuse(session, f"{REFUSED} peer {peer.theirs.address}: wrong cluster secret", logging.WARNING)
    peer.stage = Stage.DONE
    return OK
