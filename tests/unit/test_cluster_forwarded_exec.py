"""TKV.FORWARD.EXEC's request (cluster.forwarded_exec): encode then decode
gives the transaction back; malformed requests are ValueError. And the bus
job's RESP3 marks (server.cluster.forwarding): exactly the chosen replies
are encoded as RESP3."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_kv.cluster.forwarded_exec import FORWARD_EXEC, ForwardedExec, decode
from trio_kv.server.cluster.forwarding import _encoded_as_resp3, parse_forward_label

_arg = st.binary(max_size=12)


@given(
    st.sampled_from([b"resp", b"resp:3"]), st.sampled_from([b"QUORUM", b"ONE,ALL"]),
    st.lists(st.tuples(_arg, st.none() | _arg), max_size=4).map(tuple),
    st.lists(st.lists(_arg, min_size=1, max_size=4).map(tuple), max_size=5).map(tuple),
)
def test_a_forwarded_transaction_decodes_to_itself(wire, level, watched, commands) -> None:
    forwarded = ForwardedExec(wire, level, watched, commands)
    encoded = forwarded.encode()
    assert encoded[0] == FORWARD_EXEC
    assert decode(encoded) == forwarded


@pytest.mark.parametrize("args", [
    [FORWARD_EXEC, b"resp", b"QUORUM"],
    [FORWARD_EXEC, b"resp", b"QUORUM", b"x"],
    [FORWARD_EXEC, b"resp", b"QUORUM", b"1", b"key"],
    [FORWARD_EXEC, b"resp", b"QUORUM", b"1", b"key", b"zclock"],
    [FORWARD_EXEC, b"resp", b"QUORUM", b"0", b"3", b"set", b"k"],
    [FORWARD_EXEC, b"resp", b"QUORUM", b"0", b"0"],
    [FORWARD_EXEC, b"resp", b"QUORUM", b"-1"],
])
def test_malformed_forwarded_transactions_are_value_errors(args: list[bytes]) -> None:
    with pytest.raises(ValueError):
        decode(args)


def test_forward_labels() -> None:
    assert parse_forward_label(b"resp") == ("resp", 2)
    assert parse_forward_label(b"resp:3") == ("resp", 3)
    with pytest.raises(ValueError):
        parse_forward_label(b"resp:4")


@given(st.sets(st.integers(0, 20)), st.sampled_from([2, 3]))
def test_resp3_marks_pick_exactly_the_chosen_replies(chosen: set[int], bus_protocol: int) -> None:
    changes = dict(_encoded_as_resp3(sorted(chosen), bus_protocol))
    protocol = bus_protocol
    for index in range(22):
        protocol = changes.get(index, protocol)
        assert protocol == (3 if index in chosen else bus_protocol)
