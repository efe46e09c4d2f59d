"""Actor ids from (node id, incarnation) (cluster/actor.py), with
hypothesis: always 20 bytes, incarnation 0 is the node id itself, one
node's incarnations never repeat, two nodes' ids keep their node ids'
first 16 bytes (so they collide only if those do)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_kv.cluster.actor import INCARNATIONS, actor_id

node_ids = st.binary(min_size=20, max_size=20).map(bytes.hex)
incarnations = st.integers(min_value=0, max_value=INCARNATIONS - 1)


@given(node_ids, incarnations)
def test_twenty_bytes_that_start_with_the_node_id(node_id: str, incarnation: int) -> None:
    actor = actor_id(node_id, incarnation)
    assert len(actor) == 20
    assert actor[:16] == bytes.fromhex(node_id)[:16]
    assert actor_id(node_id, 0) == bytes.fromhex(node_id)


@given(node_ids, incarnations, incarnations)
def test_one_node_never_repeats_an_actor(node_id: str, first: int, second: int) -> None:
    assert (actor_id(node_id, first) == actor_id(node_id, second)) == (first == second)


@given(node_ids, node_ids, incarnations, incarnations)
def test_nodes_that_differ_in_their_first_16_bytes_never_share_an_actor(
    one: str, other: str, first: int, second: int
) -> None:
    if one[:32] != other[:32]:
        assert actor_id(one, first) != actor_id(other, second)


def test_the_tail_wraps_around_without_changing_the_prefix() -> None:
    node_id = "00" * 16 + "ffffffff"
    assert actor_id(node_id, 1) == bytes(16) + bytes(4)
    assert actor_id(node_id, 2) == bytes(16) + b"\x00\x00\x00\x01"


@pytest.mark.parametrize("node_id, incarnation", [("ab" * 19, 0), ("ab" * 21, 0), ("ab" * 20, -1), ("ab" * 20, INCARNATIONS)])
def test_anything_else_is_refused(node_id: str, incarnation: int) -> None:
    with pytest.raises(ValueError):
        actor_id(node_id, incarnation)
