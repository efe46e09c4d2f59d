"""The client's pure parts (trio_kv/client/wire): packing, hiredis' reader
with pushes set aside, the typed reader the CLI uses, and redis-cli's two
formats, on tables of bytes (no sockets)."""

from __future__ import annotations

import pytest

from trio_kv.client.wire.cli_format import format_raw, format_tty, quoted
from trio_kv.client.wire.errors import ProtocolError, ReplyError
from trio_kv.client.wire.packing import handshake_commands, pack_command, pack_commands
from trio_kv.client.wire.replies import NEED_DATA, ReplyReader
from trio_kv.client.wire.typed import Aggregate, BigNumber, Bool, Double, ErrorReply, Status, TypedReplyReader, Verbatim

EVERY_TYPE = (
    b"+OK\r\n-ERR bad\r\n:-12\r\n$3\r\na\0b\r\n$-1\r\n*-1\r\n_\r\n,1.5e3\r\n#t\r\n(123456789012345678901\r\n"
    b"=15\r\ntxt:hello world\r\n%1\r\n+k\r\n*2\r\n:1\r\n~1\r\n$1\r\nx\r\n>2\r\n$4\r\npush\r\n:7\r\n*0\r\n"
)


def test_packing() -> None:
    assert pack_command(["SET", b"k\r\n", 1, 2.5]) == b"*4\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$1\r\n1\r\n$3\r\n2.5\r\n"
    assert pack_commands([("PING",), ("GET", "k")]) == b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
    with pytest.raises(ValueError):
        pack_command([])


def test_handshake() -> None:
    assert handshake_commands(protocol=2, username=None, password=None) == []
    assert handshake_commands(protocol=2, username=None, password="p") == [("AUTH", "p")]
    assert handshake_commands(protocol=2, username="u", password="p", client_name="n") == [
        ("AUTH", "u", "p"), ("CLIENT", "SETNAME", "n")
    ]
    assert handshake_commands(protocol=3, username=None, password="p") == [("HELLO", 3, "AUTH", "default", "p")]
    with pytest.raises(ValueError):
        handshake_commands(protocol=4, username=None, password=None)


def _all(reader: ReplyReader | TypedReplyReader, data: bytes, *, step: int) -> list[object]:
    replies = []
    for start in range(0, len(data), step):
        reader.feed(data[start : start + step])
        while (reply := reader.next_reply()) is not NEED_DATA:
            replies.append(reply)
    return replies


@pytest.mark.parametrize("step", [1, 2, 7, 1000])
def test_hiredis_reader_sets_pushes_aside(step: int) -> None:
    reader = ReplyReader()
    replies = _all(reader, EVERY_TYPE, step=step)
    assert isinstance(replies[1], ReplyError) and replies[1].message == "ERR bad" and replies[1].code == "ERR"
    replies[1] = "error"
    assert replies == [
        b"OK", "error", -12, b"a\0b", None, None, None, 1500.0, True, b"123456789012345678901", b"hello world",
        {b"k": [1, [b"x"]]}, [],
    ]
    assert reader.take_pushes() == [[b"push", 7]] and reader.take_pushes() == []


def test_hiredis_reader_bounds_kept_pushes() -> None:
    reader = ReplyReader(max_pushes=2)
    _all(reader, b">1\r\n:1\r\n>1\r\n:2\r\n>1\r\n:3\r\n+OK\r\n", step=100)
    assert reader.take_pushes() == [[2], [3]] and reader.dropped_pushes == 1


@pytest.mark.parametrize("step", [1, 3, 1000])
def test_typed_reader_keeps_types(step: int) -> None:
    assert _all(TypedReplyReader(), EVERY_TYPE, step=step) == [
        Status(b"OK"), ErrorReply(b"ERR bad"), -12, b"a\0b", None, None, None, Double(b"1.5e3"), Bool(True),
        BigNumber(b"123456789012345678901"), Verbatim(b"txt", b"hello world"),
        Aggregate("map", [Status(b"k"), Aggregate("array", [1, Aggregate("set", [b"x"])])]),
        Aggregate("push", [b"push", 7]), Aggregate("array", []),
    ]


@pytest.mark.parametrize("bad", [b"?x\r\n", b"$5\r\nab\r\n\r\nxx", b":x\r\n", b"#x\r\n", b"=3\r\nabc\r\n"])
def test_typed_reader_refuses_bad_bytes(bad: bytes) -> None:
    reader = TypedReplyReader()
    reader.feed(bad)
    with pytest.raises(ProtocolError):
        reader.next_reply()


def test_quoting_is_sdscatrepr() -> None:
    assert quoted(b'a"b\\c\n\r\t\a\b\x00\x7f\xff ~') == b'"a\\"b\\\\c\\n\\r\\t\\a\\b\\x00\\x7f\\xff ~"'


def test_terminal_and_raw_formats() -> None:
    nested = Aggregate("array", [1, Aggregate("array", [b"a", None]), Status(b"st"), ErrorReply(b"ERR x")])
    assert format_tty(nested) == (
        b'1) (integer) 1\n2) 1) "a"\n   2) (nil)\n3) st\n4) (error) ERR x\n'
    )
    assert format_raw(nested) == b"1\na\n\nst\nERR x\n\n"
    ten = Aggregate("array", list(range(10)))
    assert format_tty(ten).splitlines()[0] == b" 1) (integer) 0" and format_tty(ten).splitlines()[-1] == b"10) (integer) 9"
    mapping = Aggregate("map", [b"k", Aggregate("array", [b"x", b"y"]), b"n", Double(b"inf")])
    assert format_tty(mapping) == b'1# "k" => \n   1) "x"\n   2) "y"\n2# "n" => (double) inf\n'
    assert format_raw(mapping) == b"k x\ny\nn inf\n"
    assert format_tty(Aggregate("set", [b"m"])) == b'1~ "m"\n'
    assert [format_tty(Aggregate(kind, [])) for kind in ("array", "map", "set", "push")] == [
        b"(empty array)\n", b"(empty hash)\n", b"(empty set)\n", b"(empty push)\n"
    ]
    assert format_tty(Bool(False)) == b"(false)\n" and format_raw(Bool(True)) == b"(true)\n"
    assert format_tty(Verbatim(b"txt", b"a\nb")) == b"a\nb\n" and format_tty(None) == b"(nil)\n"
    assert format_raw(None) == b"\n"
