"""The slot function equals Redis Cluster's, with redis-py's
``redis.crc.key_slot`` as the oracle (hash tags included)."""

from __future__ import annotations

import binascii

from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot as redis_key_slot

from trio_kv.cluster.slots import SLOT_COUNT, crc16, hash_tag, key_slot

# Keys rich in braces, so the hash-tag edge cases come up often.
_braced = st.lists(st.sampled_from([b"{", b"}", b"a", b"b", b"", b"\x00", b"\xff"]), max_size=8).map(b"".join)


@given(st.one_of(st.binary(max_size=64), _braced))
def test_slot_equals_redis_py(key: bytes) -> None:
    assert key_slot(key) == redis_key_slot(key)
    assert 0 <= key_slot(key) < SLOT_COUNT


def test_known_slots_and_tags() -> None:
    # Values from the Redis cluster specification and redis-server's CLUSTER KEYSLOT.
    assert key_slot(b"foo") == 12182
    assert key_slot(b"123456789") == 12739
    assert key_slot(b"{user1000}.following") == key_slot(b"{user1000}.followers") == key_slot(b"user1000")
    assert hash_tag(b"foo{}{bar}") == b"foo{}{bar}"
    assert hash_tag(b"foo{{bar}}zap") == b"{bar"
    assert hash_tag(b"foo{bar}{zap}") == b"bar"


@given(st.binary(max_size=64))
def test_crc16_reference_equals_the_c_one(data: bytes) -> None:
    assert crc16(data) == binascii.crc_hqx(data, 0)
    assert key_slot(data) == crc16(hash_tag(data)) % SLOT_COUNT
