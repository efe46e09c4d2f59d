"""OBJECT IDLETIME under the default policy, and the lookups that must not
touch a key's access stamp (Redis' LOOKUP_NOTOUCH), as Redis' own
unit/introspection-2 checks them."""

from __future__ import annotations

from trio_kv.protocol.replies import Error

from .redis_session import call, make_session, run


def test_idletime_counts_under_noeviction_and_ttl_type_exists_do_not_touch() -> None:
    session, clock = make_session()
    run(session, "SET foo bar", "SET other 1 EX 100")
    clock.advance(3_000)
    run(session, "TTL foo", "PTTL foo", "TYPE foo", "EXISTS foo", "EXPIRETIME foo", "OBJECT ENCODING foo")
    assert call(session, "OBJECT IDLETIME foo") == 3
    call(session, "GET foo")
    assert call(session, "OBJECT IDLETIME foo") == 0
    assert call(session, "OBJECT IDLETIME other") == 3  # written, never read


def test_idletime_under_an_lfu_policy_is_redis_error() -> None:
    session, _ = make_session()
    run(session, "SET foo bar", "CONFIG SET maxmemory-policy allkeys-lfu")
    reply = call(session, "OBJECT IDLETIME foo")
    assert isinstance(reply, Error) and reply.message.startswith("ERR An LFU maxmemory policy is selected")
