"""The bus handshake's pure rules (cluster.handshake), the ring hash and
static membership: refusals name their reason, proofs bind both nonces,
both ids and the direction, and the secret is not in anything sent."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_kv.cluster.handshake import (
    PROTOCOL_VERSION, Hello, dialer_proof, listener_proof, new_nonce, proof_ok, refusal,
)
from trio_kv.cluster.ring import Member, claim
from trio_kv.cluster.ring_document import ring_hash
from trio_kv.cluster.seeds import MembershipError, static_membership
from trio_kv.config import parse_config

MEMBERS = frozenset({"127.0.0.11:7001", "127.0.0.12:7001"})


def _hello(address: str = "127.0.0.11:7001", **changes: object) -> Hello:
    hello = Hello(PROTOCOL_VERSION, "trio-kv", "a" * 40, address, "0123456789abcdef", new_nonce())
    return dataclasses.replace(hello, **changes)


def test_hello_round_trips_through_its_arguments() -> None:
    hello = _hello()
    assert Hello.from_args(hello.to_args()) == hello


@pytest.mark.parametrize(
    "args",
    [[b"1"], [b"x", b"n", b"a" * 40, b"h:1", b"r", b"0" * 32], [b"1", b"n", b"A" * 40, b"h:1", b"r", b"0" * 32],
     [b"1", b"n", b"a" * 40, b"h:1", b"r", b"0" * 31]],
)
def test_malformed_hellos_are_refused(args: list[bytes]) -> None:
    with pytest.raises(ValueError):
        Hello.from_args(args)


@pytest.mark.parametrize(
    ("theirs", "reason"),
    [
        ({"version": PROTOCOL_VERSION + 1}, "protocol version"),
        ({"cluster_name": "other"}, "cluster name"),
        ({"address": "127.0.0.99:7001"}, "not a member"),
        ({"address": "127.0.0.11:7001"}, "own"),
        ({"ring_hash": "ffffffffffffffff"}, "ring hash"),
    ],
)
def test_each_mismatch_is_refused_with_its_reason(theirs: dict[str, object], reason: str) -> None:
    mine = _hello()
    peer = _hello("127.0.0.12:7001", **theirs) if "address" not in theirs else _hello(**theirs)
    refused = refusal(mine, peer, MEMBERS)
    assert refused is not None and reason in refused
    assert refusal(mine, _hello("127.0.0.12:7001"), MEMBERS) is None


@given(st.text(min_size=1, max_size=30))
def test_proofs_bind_direction_nonces_and_secret(secret: str) -> None:
    dialer, listener = _hello(), _hello("127.0.0.12:7001", node_id="b" * 40)
    theirs = listener_proof(secret, dialer, listener)
    ours = dialer_proof(secret, dialer, listener)
    assert theirs != ours  # one direction's proof cannot be replayed as the other's
    assert proof_ok(theirs, listener_proof(secret, dialer, listener))
    assert not proof_ok(theirs, listener_proof(secret + "x", dialer, listener))
    assert not proof_ok(ours, dialer_proof(secret, dialer, dataclasses.replace(listener, nonce=new_nonce())))
    if len(secret) >= 8:  # a short secret may occur in hex by chance
        assert secret not in theirs + ours
    assert listener_proof(None, dialer, listener) == ""


def test_ring_hash_covers_members_partitions_and_replicas() -> None:
    members = [Member("127.0.0.11", 7001), Member("127.0.0.12", 7001), Member("127.0.0.13", 7001)]
    base = ring_hash(claim(members))
    assert ring_hash(claim(reversed(members))) == base
    assert ring_hash(claim(members, epoch=7)) == base  # the epoch travels beside the hash
    assert ring_hash(claim(members[:2])) != base
    assert ring_hash(claim(members, partition_count=32)) != base
    assert ring_hash(claim(members, replicas=2)) != base


def test_a_node_missing_from_its_seeds_is_refused_with_a_clear_message() -> None:
    seeds = "127.0.0.11:7001,127.0.0.12:7001"
    config = parse_config(["--host", "127.0.0.13", "--port", "7001", "--cluster-enabled", "yes",
                           "--cluster-seeds", seeds], environ={})
    with pytest.raises(MembershipError, match=r"127\.0\.0\.13:7001.*not in --cluster-seeds"):
        static_membership(config)
    announced = parse_config(["--host", "0.0.0.0", "--port", "7001", "--cluster-enabled", "yes",
                              "--cluster-announce-host", "127.0.0.12", "--cluster-seeds", seeds], environ={})
    membership = static_membership(announced)
    assert membership.myself == Member("127.0.0.12", 7001)
    assert membership.peers == (Member("127.0.0.11", 7001),)


def test_node_timeout_option_and_its_alias() -> None:
    assert parse_config([], environ={}).cluster_node_timeout_seconds == 2.0
    assert parse_config(["--cluster-node-timeout", "0.5"], environ={}).cluster_node_timeout_seconds == 0.5


@given(st.floats(0.1, 10), st.floats(0, 1000), st.floats(0, 20))
def test_a_peer_is_up_from_an_answer_until_the_timeout(timeout: float, heard_at: float, later: float) -> None:
    from trio_kv.cluster.health import PeerHealth

    health = PeerHealth(timeout)
    assert not health.is_up(heard_at) and health.down_at() is None  # never heard: down
    health.heard(heard_at)
    now = heard_at + later
    assert health.is_up(now) == (now - heard_at < timeout)
    assert health.down_at() == heard_at + timeout
