"""The bus's command table (commands/peer/) through the engine, no sockets:
who may run what before the handshake, the HELLO/AUTH exchange with and
without a secret, and the fallback that closes a non-TKV request."""

from __future__ import annotations

import time

import pytest

from trio_kv.cluster.handshake import PROTOCOL_VERSION, Hello, dialer_proof, listener_proof, new_nonce, proof_ok
from trio_kv.cluster.ring import Member, claim
from trio_kv.cluster.ring_document import ring_hash
from trio_kv.cluster.view import ClusterView
from trio_kv.commands.peer.state import PeerState, Stage
from trio_kv.commands.peer.wire import BUS
from trio_kv.commands.session import Session
from trio_kv.config import Config
from trio_kv.protocol.replies import OK, Error, Map
from trio_kv.store.engine import Job, Store, run_batch
from trio_kv.store.local_control import LocalControl

MYSELF, PEER = Member("127.0.0.11", 7001), Member("127.0.0.12", 7001)
RING = claim([MYSELF, PEER])


class FakeNode:
    def __init__(self, secret: str | None) -> None:
        self.secret = secret
        self.ring_hash = ring_hash(RING)

    def hello(self, nonce: str) -> Hello:
        return Hello(PROTOCOL_VERSION, "trio-kv", "a" * 40, MYSELF.address, self.ring_hash, nonce)

    def view(self) -> ClusterView:
        return ClusterView(MYSELF, RING, {MYSELF: "a" * 40, PEER: "b" * 40}, frozenset([MYSELF]))

    def member_addresses(self) -> frozenset[str]:
        return frozenset(member.address for member in RING.members)


def _session(secret: str | None) -> Session:
    store = Store(Config())
    session = Session(1, store, LocalControl(store), wire=BUS)
    session.peer = PeerState(FakeNode(secret))
    session.authenticated = True
    return session


def _call(session: Session, *args: bytes) -> object:
    job = Job(session, BUS.table, [list(args)], time.perf_counter())
    run_batch(session.store, [job])
    return job.replies[0]


def _peer_hello() -> Hello:
    return Hello(PROTOCOL_VERSION, "trio-kv", "b" * 40, PEER.address, ring_hash(RING), new_nonce())


@pytest.mark.parametrize("request_args", [[b"GET", b"k"], [b"post"], [b"COMMAND"], [b"tkv.nosuch"]])
def test_anything_but_tkv_commands_is_refused_and_closes(request_args: list[bytes]) -> None:
    session = _session(None)
    reply = _call(session, *request_args)
    assert isinstance(reply, Error) and "only TKV.*" in reply.message
    assert session.closing


def test_without_a_secret_reads_run_before_the_handshake_and_hello_completes_it() -> None:
    session = _session(None)
    assert _call(session, b"TKV.PING") == [b"PONG", 1, ring_hash(RING).encode()]
    document = _call(session, b"TKV.RING")
    assert isinstance(document, Map) and dict(document.pairs)[b"epoch"] == 1
    reply = _call(session, b"TKV.HELLO", *_peer_hello().to_args())
    assert isinstance(reply, list) and reply[6] == b""  # no proof without a secret
    assert session.peer is not None and session.peer.stage is Stage.DONE and not session.closing


def test_with_a_secret_only_the_handshake_runs_until_auth_proves_it() -> None:
    session = _session("s3cret")
    reply = _call(session, b"TKV.PING")
    assert isinstance(reply, Error) and "TKV.HELLO, TKV.AUTH" in reply.message and session.closing
    session = _session("s3cret")
    mine = _peer_hello()
    reply = _call(session, b"TKV.HELLO", *mine.to_args())
    assert isinstance(reply, list)
    theirs = Hello.from_args(reply[:6])
    assert proof_ok(listener_proof("s3cret", mine, theirs), reply[6].decode())
    assert _call(session, b"TKV.AUTH", dialer_proof("s3cret", mine, theirs).encode()) == OK
    assert _call(session, b"TKV.PING")[0] == b"PONG"
    # A second HELLO on the same connection is refused.
    reply = _call(session, b"TKV.HELLO", *mine.to_args())
    assert isinstance(reply, Error) and "twice" in reply.message and session.closing


def test_a_wrong_proof_or_a_stray_auth_is_refused_and_closes() -> None:
    session = _session("s3cret")
    reply = _call(session, b"TKV.AUTH", b"00" * 32)
    assert isinstance(reply, Error) and "without a challenge" in reply.message and session.closing
    session = _session("s3cret")
    mine = _peer_hello()
    reply = _call(session, b"TKV.HELLO", *mine.to_args())
    theirs = Hello.from_args(reply[:6])
    reply = _call(session, b"TKV.AUTH", dialer_proof("guess", mine, theirs).encode())
    assert isinstance(reply, Error) and "wrong cluster secret" in reply.message and session.closing
    assert session.peer is not None and session.peer.stage is Stage.CHALLENGED


def test_a_hello_from_a_stranger_is_refused() -> None:
    session = _session(None)
    stranger = Hello(PROTOCOL_VERSION, "trio-kv", "b" * 40, "127.0.0.99:7001", ring_hash(RING), new_nonce())
    reply = _call(session, b"TKV.HELLO", *stranger.to_args())
    assert isinstance(reply, Error) and "not a member" in reply.message and session.closing
