"""TKV.HELLO and TKV.AUTH: the listening side of the bus handshake
(``cluster.handshake`` describes the exchange and its rules).

    TKV.HELLO version cluster-name node-id address ring-hash nonce
      -> [version, cluster-name, node-id, address, ring-hash, nonce, proof]
    TKV.AUTH proof -> +OK
    TKV.ADMIN.HELLO -> a fresh nonce (an admin tool, not a peer)
    TKV.ADMIN.AUTH admin-nonce proof -> +OK: the connection may run the read
                      and admin commands (``access``); without a secret, +OK

A refused HELLO (malformed, other version, cluster name or ring, not a
member) or a wrong proof answers ``-TKVREFUSED <reason>``, is logged with
the reason, and closes the connection.
"""

from __future__ import annotations

import logging

from ...cluster.handshake import (
    NONCE_BYTES, REFUSED, Hello, admin_proof, dialer_proof, listener_proof, new_nonce, proof_ok, refusal,
)
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


def cmd_admin_hello(session: Session, args: list[bytes]) -> object:
    peer = session.peer
    assert peer is not None
    if peer.stage is not Stage.NEW:
        return refuse(session, f"{REFUSED} TKV.ADMIN.HELLO on a peer's connection")
    peer.admin_nonce = new_nonce()
    return peer.admin_nonce.encode()


def cmd_admin_auth(session: Session, args: list[bytes]) -> object:
    peer = session.peer
    assert peer is not None
    secret = peer.node.secret
    if secret is None:
        peer.admin = True  # nothing to prove
        return OK
    nonce = args[1].decode("ascii", "replace")
    if peer.admin_nonce is None or len(nonce) != 2 * NONCE_BYTES:
        return refuse(session, f"{REFUSED} TKV.ADMIN.AUTH needs TKV.ADMIN.HELLO first and a {2 * NONCE_BYTES}-digit nonce")
    expected = admin_proof(secret, peer.admin_nonce, nonce)
    peer.admin_nonce = None  # one try per nonce
    if not proof_ok(expected, args[2].decode("ascii", "replace")):
        return refuse(session, f"{REFUSED} admin tool {session.address}: wrong cluster secret", logging.WARNING)
    peer.admin = True
    return OK
