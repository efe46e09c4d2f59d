"""Properties of the DUMP payload codec (trio_kv.protocol.rdb_payload).

* Every valid object round-trips: ``decode(encode(obj)) == obj``.
* The packed encodings Redis writes (listpack, ziplist, intset, built by
  tests/rdb_builders.py, which redis-server 7.0 RESTOREs) decode to the
  same elements as the plain one.
* A payload with any byte changed, or cut anywhere, is refused with
  ``BadChecksum`` or ``BadData`` and nothing else; arbitrary bytes under a
  valid footer raise only ``BadData`` (or decode).
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.rdb_builders import intset, listpack, payload, rdb_length, rdb_string, ziplist
from trio_kv.protocol.rdb_payload import (
    BadData,
    HashObject,
    ListObject,
    PayloadError,
    SetObject,
    SortedSetObject,
    StringObject,
    decode_payload,
    encode_payload,
)

# Integers in every width Redis' encodings distinguish, as their text.
integer_text = st.one_of(
    st.integers(-200, 200), st.integers(-(2**31), 2**31), st.integers(-(2**63), 2**63 - 1)
).map(lambda n: str(n).encode())
element = st.one_of(st.binary(max_size=80), integer_text, st.binary(min_size=60, max_size=20000))
small_element = st.one_of(st.binary(max_size=20), integer_text)
scores = st.floats(allow_nan=False)

strings = element.map(StringObject)
lists = st.lists(element, min_size=1, max_size=20).map(lambda items: ListObject(tuple(items)))
sets = st.lists(small_element, min_size=1, max_size=30, unique=True).map(lambda members: SetObject(tuple(members)))
hashes = st.lists(st.tuples(small_element, element), min_size=1, max_size=20, unique_by=lambda pair: pair[0]).map(
    lambda pairs: HashObject(tuple(pairs))
)
sorted_sets = st.lists(st.tuples(small_element, scores), min_size=1, max_size=20, unique_by=lambda pair: pair[0]).map(
    lambda entries: SortedSetObject(tuple(entries))
)
objects = st.one_of(strings, lists, sets, hashes, sorted_sets)


@settings(max_examples=300, deadline=None)
@given(objects)
def test_every_object_round_trips(obj: object) -> None:
    assert decode_payload(encode_payload(obj)) == obj  # type: ignore[arg-type]


def _score_text(score: float) -> bytes:
    if math.isinf(score):
        return b"inf" if score > 0 else b"-inf"
    return repr(score).encode()


@settings(max_examples=200, deadline=None)
@given(st.lists(small_element, min_size=1, max_size=40))
def test_packed_lists_decode_as_the_plain_one(items: list[bytes]) -> None:
    expected = ListObject(tuple(items))
    assert decode_payload(payload(10, rdb_string(ziplist(items)))) == expected
    assert decode_payload(payload(18, rdb_length(1) + rdb_length(2) + rdb_string(listpack(items)))) == expected
    half = len(items) // 2 or 1
    nodes = [items[:half], items[half:]] if items[half:] else [items]
    quicklist = rdb_length(len(nodes)) + b"".join(rdb_string(ziplist(node)) for node in nodes)
    assert decode_payload(payload(14, quicklist)) == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(small_element, element), min_size=1, max_size=20, unique_by=lambda pair: pair[0]))
def test_packed_hashes_decode_as_the_plain_one(pairs: list[tuple[bytes, bytes]]) -> None:
    flat = [part for pair in pairs for part in pair]
    expected = HashObject(tuple(pairs))
    assert decode_payload(payload(16, rdb_string(listpack(flat)))) == expected
    assert decode_payload(payload(13, rdb_string(ziplist(flat)))) == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(small_element, scores), min_size=1, max_size=20, unique_by=lambda pair: pair[0]))
def test_packed_sorted_sets_decode_as_the_plain_one(entries: list[tuple[bytes, float]]) -> None:
    flat = [part for member, score in entries for part in (member, _score_text(score))]
    expected = SortedSetObject(tuple(entries))
    assert decode_payload(payload(17, rdb_string(listpack(flat)))) == expected
    assert decode_payload(payload(12, rdb_string(ziplist(flat)))) == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=40, unique=True))
def test_intsets_decode_in_ascending_order(values: list[int]) -> None:
    expected = SetObject(tuple(str(value).encode() for value in sorted(values)))
    assert decode_payload(payload(11, rdb_string(intset(values)))) == expected


@settings(max_examples=300, deadline=None)
@given(objects, st.data())
def test_a_damaged_payload_is_refused(obj: object, data: st.DataObject) -> None:
    good = encode_payload(obj)  # type: ignore[arg-type]
    position = data.draw(st.integers(0, len(good) - 1))
    flip = data.draw(st.integers(1, 255))
    damaged = good[:position] + bytes([good[position] ^ flip]) + good[position + 1 :]
    cut = good[: data.draw(st.integers(0, len(good) - 1))]
    for bad in (damaged, cut):
        try:
            decode_payload(bad)
        except PayloadError:
            continue
        raise AssertionError(f"accepted {bad!r}")


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 20), st.binary(max_size=200))
def test_arbitrary_bodies_decode_or_are_bad_data(kind: int, body: bytes) -> None:
    try:
        decode_payload(payload(kind, body))
    except BadData:
        pass
