"""The RESP reply parser (protocol.resp_reply): what the encoder writes, it
reads back, byte by byte or whole, RESP2 and RESP3 (read back and encoded
again, a RESP3 reply is the same bytes: what forwarding for a RESP3 client
relies on); bad bytes and bounds are errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_kv.protocol.replies import Bool, Double, Error, Map, NullArray, Set, SimpleString, Verbatim
from trio_kv.protocol.resp_encoder import encode_reply
from trio_kv.protocol.resp_pack import pack_command, pack_commands
from trio_kv.protocol.resp_reply import NEED_DATA, ReplyParser, ReplyProtocolError
from trio_kv.server.cluster.replicator import repl_put, repl_put_many

_text = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=20)
_replies = st.recursive(
    st.one_of(
        st.binary(max_size=40), st.integers(-(2**63), 2**63 - 1), st.none(),
        _text.map(SimpleString), _text.map(lambda text: Error("ERR " + text)),
    ),
    lambda children: st.lists(children, max_size=5),
    max_leaves=20,
)


_resp3_replies = st.recursive(
    st.one_of(
        st.binary(max_size=40), st.integers(-(2**63), 2**63 - 1), st.none(), st.just(NullArray()),
        _text.map(SimpleString), _text.map(lambda text: Error("ERR " + text)),
        st.floats(allow_nan=True).map(Double), st.booleans().map(Bool),
        st.binary(max_size=20).map(lambda data: Verbatim("txt", data)),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=5).map(Set),
        st.lists(st.tuples(children, children), max_size=3).map(Map),
    ),
    max_leaves=20,
)


def _read_all(data: bytes, step: int) -> list[object]:
    parser = ReplyParser()
    got = []
    for start in range(0, len(data), step):
        parser.receive_data(data[start : start + step])
        while (reply := parser.next_reply()) is not NEED_DATA:
            got.append(reply)
    assert parser.buffered_bytes == 0
    return got


@given(st.lists(_resp3_replies, min_size=1, max_size=5), st.integers(1, 7))
def test_a_resp3_reply_read_back_encodes_to_the_same_bytes(replies: list[object], step: int) -> None:
    data = b"".join(encode_reply(reply, 3) for reply in replies)
    got = _read_all(data, step)
    assert len(got) == len(replies)
    assert b"".join(encode_reply(reply, 3) for reply in got) == data


def test_resp3_types_decode_to_reply_values() -> None:
    data = b"%1\r\n$1\r\nf\r\n,1.5\r\n~1\r\n#t\r\n_\r\n=7\r\ntxt:abc\r\n!5\r\nERR x\r\n,inf\r\n"
    assert _read_all(data, 3) == [
        Map([(b"f", Double(1.5))]), Set([Bool(True)]), None, Verbatim("txt", b"abc"), Error("ERR x"),
        Double(float("inf")),
    ]


@given(st.lists(_replies, min_size=1, max_size=5), st.integers(1, 7))
def test_reads_back_what_the_encoder_wrote_in_any_chunking(replies: list[object], step: int) -> None:
    data = b"".join(encode_reply(reply, 2) for reply in replies)
    assert _read_all(data, step) == replies


def test_null_array_and_request_encoding() -> None:
    parser = ReplyParser()
    parser.receive_data(b"*-1\r\n" + pack_command([b"TKV.PING", b""]))
    assert parser.next_reply() == NullArray()
    assert parser.next_reply() == [b"TKV.PING", b""]
    assert parser.next_reply() is NEED_DATA


@given(st.lists(st.lists(st.binary(max_size=1100), min_size=1, max_size=4), max_size=5))
def test_a_batch_of_requests_is_each_request_encoded_back_to_back(requests: list[list[bytes]]) -> None:
    # Lengths past the cached bulk headers (1024) too.
    data = pack_commands(requests)
    assert data == b"".join(pack_command(args) for args in requests)
    assert _read_all(data, 1 + len(data) // 3) == requests


def test_small_integers_past_the_buffer_compaction_read_back() -> None:
    # The one-digit integer fast path (TKV.REPL.PUT's acks) across the
    # point where consumed bytes are dropped from the buffer.
    data = b"".join(b":%d\r\n" % (i % 10) for i in range(40_000)) + b":12\r\n:-1\r\n:1"
    parser = ReplyParser()
    parser.receive_data(data)
    got = []
    while (reply := parser.next_reply()) is not NEED_DATA:
        got.append(reply)
    assert got == [i % 10 for i in range(40_000)] + [12, -1]
    parser.receive_data(b"\r\n")
    assert parser.next_reply() == 1 and parser.buffered_bytes == 0


@pytest.mark.parametrize(
    "data",
    [b"?x\r\n", b":12a\r\n", b"$3\r\nabcd\r\n", b"$99\r\n", b"*2000000000\r\n", b">1\r\n", b"|1\r\n",
     b"(123\r\n", b"#x\r\n", b",abc\r\n", b"=2\r\nab\r\n", b"_x\r\n", b"%60\r\n"],
)
def test_bad_bytes_and_bounds_are_protocol_errors(data: bytes) -> None:
    parser = ReplyParser(max_bulk_bytes=10, max_array_items=100)
    parser.receive_data(data)
    with pytest.raises(ReplyProtocolError):
        parser.next_reply()


def test_eof_inside_a_reply_is_an_error_and_a_clean_eof_is_not() -> None:
    parser = ReplyParser()
    parser.receive_data(b"+OK\r\n$5\r\nab")
    assert parser.next_reply() == SimpleString("OK")
    assert parser.next_reply() is NEED_DATA
    parser.receive_data(b"")
    with pytest.raises(ReplyProtocolError):
        parser.next_reply()
    clean = ReplyParser()
    clean.receive_data(b"")
    assert clean.next_reply() is NEED_DATA


def test_a_large_reply_in_pieces_is_read_once_and_its_bytes_dropped() -> None:
    # Rule 3: the items read so far are kept, so consumed bytes leave the
    # buffer before the reply is complete (a reparse from its start could not).
    item = b"$100\r\n" + b"v" * 100 + b"\r\n"
    data = b"*3000\r\n" + b"*2\r\n:1\r\n%0\r\n" + item * 2999
    parser = ReplyParser()
    body, last = data[:-1], data[-1:]
    for start in range(0, len(body), 4096):
        parser.receive_data(body[start : start + 4096])
        assert parser.next_reply() is NEED_DATA
        assert parser.buffered_bytes < 64 * 1024 + 4096
    parser.receive_data(last)
    assert parser.next_reply() == [[1, Map([])]] + [b"v" * 100] * 2999
    assert parser.buffered_bytes == 0 and parser.next_reply() is NEED_DATA


def test_eof_inside_an_open_aggregate_is_an_error() -> None:
    parser = ReplyParser()
    parser.receive_data(b"*2\r\n:1\r\n")
    assert parser.next_reply() is NEED_DATA
    parser.receive_data(b"")
    with pytest.raises(ReplyProtocolError):
        parser.next_reply()


def test_nesting_past_the_bound_is_an_error() -> None:
    parser = ReplyParser()
    parser.receive_data(b"*1\r\n" * 40 + b":1\r\n")
    with pytest.raises(ReplyProtocolError):
        parser.next_reply()
    ok = ReplyParser()
    ok.receive_data(b"*1\r\n" * 32 + b":1\r\n")
    reply = ok.next_reply()
    for _ in range(32):
        assert isinstance(reply, list)
        (reply,) = reply
    assert reply == 1


_args = st.one_of(
    st.binary(max_size=1100), st.text(max_size=20), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False), st.binary(max_size=20).map(memoryview),
)


@given(st.lists(st.lists(_args, min_size=1, max_size=4), min_size=1, max_size=4))
def test_the_packer_writes_what_hiredis_pack_command_writes(commands: list[list[object]]) -> None:
    # The client packed with hiredis' C pack_command before; same bytes.
    hiredis = pytest.importorskip("hiredis")
    assert pack_commands(commands) == b"".join(hiredis.pack_command(tuple(args)) for args in commands)


def test_the_packer_refuses_what_is_not_an_argument() -> None:
    for bad in ([], [b"GET", True], [b"GET", None], [b"GET", [b"x"]]):
        with pytest.raises((TypeError, ValueError)):
            pack_command(bad)  # type: ignore[arg-type]


@given(st.lists(st.tuples(st.binary(max_size=40), st.binary(max_size=40)), min_size=1, max_size=70))
def test_the_replicators_own_repl_put_is_the_packers_bytes(pairs: list[tuple[bytes, bytes]]) -> None:
    # The hottest bus request keeps a hand-made encoder (measured about 2x
    # faster than pack_command for one pair: one % format); its bytes must
    # stay the one packer's.
    key, clock = pairs[0]
    assert repl_put(key, clock) == pack_command([b"TKV.REPL.PUT", key, clock])
    assert repl_put_many(pairs) == pack_command([b"TKV.REPL.PUT", *(part for pair in pairs for part in pair)])
