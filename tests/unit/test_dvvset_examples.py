"""dvvset.erl's own EUnit examples, translated: the Python DVVSet gives
Riak's answers (values are Versions whose payload names them)."""

from __future__ import annotations

import pytest

from trio_kv.cluster import dvvset
from trio_kv.cluster.dvvset import Clock, ClockFormatError, Entry, Version, join, less, new, sync, update


def v(name: str, timestamp: int = 0, actor: bytes = b"") -> Version:
    return Version(timestamp, actor, name.encode())


V1, V2, V3, V4, V5 = (v(f"v{i}") for i in range(1, 6))
A, B, C, D, X = b"a", b"b", b"c", b"d", b"x"


def clock(*entries: tuple[bytes, int, list[Version]], anonymous: tuple[Version, ...] = ()) -> Clock:
    return Clock(tuple(Entry(actor, counter, tuple(values)) for actor, counter, values in entries), anonymous)


def test_join() -> None:
    a = new(V1)
    a1 = update(a, A)
    b = new(V2, join(a1))
    b1 = update(b, B, a1)
    assert join(a) == ()
    assert join(a1) == ((A, 1),)
    assert join(b1) == ((A, 1), (B, 1))


def test_update() -> None:
    a0 = update(new(V1), A)
    a1 = update(new(V2, join(a0)), A, a0)
    a2 = update(new(V3, join(a1)), B, a1)
    a3 = update(new(V4, join(a0)), B, a1)
    a4 = update(new(V5, join(a0)), A, a1)
    assert a0 == clock((A, 1, [V1]))
    assert a1 == clock((A, 2, [V2]))
    assert a2 == clock((A, 2, []), (B, 1, [V3]))
    assert a3 == clock((A, 2, [V2]), (B, 1, [V4]))
    assert a4 == clock((A, 3, [V5, V2]))


def test_sync() -> None:
    x = clock((X, 1, []))
    a = update(new(V1), A)
    y = update(new(V2), B)
    a1 = update(new(V2, join(a)), A)
    a3 = update(new(V3, join(a1)), B)
    a4 = update(new(V3, join(a1)), C)
    w = clock((A, 1, []))
    z = clock((A, 2, [V2, V1]))
    assert sync([w, z]) == clock((A, 2, [V2]))
    assert sync([w, z]) == sync([z, w])
    assert sync([a, a1]) == sync([a1, a])
    assert sync([a4, a3]) == sync([a3, a4]) == clock((A, 2, []), (B, 1, [V3]), (C, 1, [V3]))
    assert sync([x, a]) == sync([a, x]) == clock((A, 1, [V1]), (X, 1, []))
    assert sync([a, y]) == sync([y, a]) == clock((A, 1, [V1]), (B, 1, [V2]))


def test_sync_then_update() -> None:
    a0 = update(new(V1), A)  # Mary writes v1 with no context
    vv1 = join(a0)  # Peter reads v1 with its context
    a1 = update(new(V2), A, a0)  # Mary writes v2 with no context
    a2 = update(new(V3, vv1), A, a1)  # Peter writes v3 with v1's context
    assert vv1 == ((A, 1),)
    assert a1 == clock((A, 2, [V2, V1]))
    # v3 supersedes v1 (Peter saw it), not v2 (concurrent).
    assert a2 == clock((A, 3, [V3, V2]))


def test_overwrite_is_update_with_the_full_context() -> None:
    local = clock((A, 2, [V2, V1]), (B, 4, [V3]), (D, 1, []))
    for actor in (A, B, C, b"e", b""):
        assert dvvset.overwrite(local, actor, V5) == update(new(V5, join(local)), actor, local)
    assert dvvset.overwrite(dvvset.EMPTY, A, V5) == update(new(V5), A)


def test_last_and_lww() -> None:
    x = clock((A, 4, [v("5", 5), v("2", 2)]), (B, 1, []), (C, 1, [v("3", 3)]))
    assert dvvset.last(x) == v("5", 5)
    assert dvvset.lww(x) == clock((A, 4, [v("5", 5)]), (B, 1, []), (C, 1, []))
    y = clock((A, 4, [v("5", 5), v("2", 2)]), (B, 1, []), (C, 1, [v("3", 3)]), anonymous=(v("0", 0), v("10", 10)))
    assert dvvset.last(y) == v("10", 10)
    assert dvvset.lww(y) == clock((A, 4, []), (B, 1, []), (C, 1, []), anonymous=(v("10", 10),))
    # The actor breaks a timestamp tie.
    tie = clock((A, 1, [v("from a", 7, A)]), (B, 1, [v("from b", 7, B)]))
    assert dvvset.last(tie).payload == b"from b"


def test_less() -> None:
    a = update(new(V1), A)
    b = update(new(V2, join(a)), A)
    b2 = update(new(V2, join(a)), B)
    b3 = update(new(V2, join(a)), b"z")
    c = update(new(V3, join(b)), C, a)
    d = update(new(V4, join(c)), D, b2)
    assert less(a, b) and less(a, c) and less(b, c) and less(b, d) and less(b2, d) and less(a, d)
    assert not less(b2, c) and not less(b, b2) and not less(b2, b) and not less(a, a) and not less(c, c)
    assert not less(d, b2) and not less(b3, d)


def test_size_ids_values() -> None:
    a = clock((A, 4, [V5, V1]), (B, 1, []), (C, 1, [V3]), anonymous=(V4,))
    assert dvvset.size(a) == 4
    assert dvvset.size(new(V1)) == 1
    assert dvvset.ids(a) == [A, B, C]
    assert sorted(dvvset.values(a)) == sorted([V1, V3, V4, V5])
    assert dvvset.dotted_values(a) == [(A, 4, V5), (A, 3, V1), (C, 1, V3)]


def test_packed_round_trip_and_size() -> None:
    node = bytes(range(20))
    written_once = update(new(Version(1 << 40, node, b"\x02")), node)
    packed = dvvset.encode(written_once)
    assert dvvset.decode(packed) == written_once
    assert len(packed) == 39


@pytest.mark.parametrize(
    "damaged",
    [b"", b"\x02", b"\x01\x01\x01a", b"\x01\x02\x01b\x01a\x00\x00", b"\x01\x01\x01a\x01\x00\x00\x00\x00",
     b"\x01\x01\x01a\x01\x00\x01\x02", b"\x01\x00\x00\x00\x00"],
)
def test_decode_refuses_malformed(damaged: bytes) -> None:
    with pytest.raises(ClockFormatError):
        dvvset.decode(damaged)


def test_context_round_trip_is_printable() -> None:
    vector = ((bytes(20), 3), (b"\xff" * 20, 1 << 40))
    context = dvvset.encode_context(vector)
    assert context.isascii() and context.replace(b"-", b"").replace(b"_", b"").isalnum()
    assert dvvset.decode_context(context) == vector
    for bad in (b"!!", context + b"A", b"", dvvset.encode_context(((b"b", 1), (b"a", 1)))):
        with pytest.raises(ClockFormatError):
            dvvset.decode_context(bad)
