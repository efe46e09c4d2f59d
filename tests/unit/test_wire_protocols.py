"""The WireProtocol objects (commands.wire): each protocol's wording, the
main port's first-byte choice, and a protocol added by building one object,
with no other module changed; plus the rule that the store layer names no
protocol, and line-protocol replies crossing the cluster bus (RESP2) intact."""

from __future__ import annotations

import ast
import time
from pathlib import Path

import pytest

from trio_kv.commands import auth
from trio_kv.commands.session import Session
from trio_kv.commands.text import TEXT_COMMANDS
from trio_kv.commands.wire import LINE, RESP, RESP_AFTER_SNIFF, ParserLimits, sniff_main_port
from trio_kv.http.wire import HTTP
from trio_kv.config import Config
from trio_kv.protocol import text
from trio_kv.protocol.replies import Error
from trio_kv.protocol.resp import RespProtocolError
from trio_kv.protocol.resp_encoder import encode_reply
from trio_kv.protocol.resp_reply import ReplyParser
from trio_kv.server.http_metrics import WIRE_PROTOCOLS
from trio_kv.store.engine import Job, Store, run_batch
from trio_kv.store.local_control import LocalControl

from ..shout_protocol import SHOUT

STORE_PACKAGE = Path(__file__).resolve().parents[2] / "trio_kv" / "store"


def _limits() -> ParserLimits:
    return ParserLimits(
        max_line_bytes=1024, max_bulk_bytes=1024, max_query_buffer_bytes=1 << 20, auth_required=lambda: False
    )


def test_each_protocol_words_the_engine_errors_its_own_way() -> None:
    assert (LINE.noauth, RESP.noauth, HTTP.noauth) == (auth.TEXT_NOAUTH, auth.NOAUTH, auth.NOAUTH)
    assert LINE.internal_error == Error("internal error, see the server log")
    assert RESP.internal_error == HTTP.internal_error == Error("ERR internal error, see the server log")
    assert LINE.refused_write("disk full") == Error("writes refused: error writing the log (disk full)")
    assert RESP.refused_write("disk full") == Error("MISCONF Errors writing to the AOF file: disk full")
    assert HTTP.refused_write("disk full") == RESP.refused_write("disk full")
    # errorstats reads the code from this text: the line protocol's errors are all ERROR.
    assert LINE.error_text(Error("unknown command")) == "ERROR unknown command"
    assert RESP.error_text(Error("WRONGTYPE x")) == HTTP.error_text(Error("WRONGTYPE x")) == "WRONGTYPE x"


def test_each_protocol_has_its_rejections_label_and_table() -> None:
    assert LINE.max_clients_reply == b"ERROR max clients reached\n"
    assert RESP.max_clients_reply == b"-ERR max number of clients reached\r\n"
    assert HTTP.max_clients_reply.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert (LINE.denied_reply, RESP.denied_reply) == (auth.DENIED_TEXT, auth.DENIED_RESP)
    assert HTTP.denied_reply.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert b"connection: close\r\n" in HTTP.denied_reply
    assert [wire.label for wire in WIRE_PROTOCOLS] == ["text", "resp", "http"]
    assert LINE.table is TEXT_COMMANDS and RESP.table is HTTP.table
    assert (LINE.shows_resp_version, RESP.shows_resp_version) == (False, True)
    assert HTTP.framing is None  # h11 frames HTTP (server.http_connection)


def test_protocol_errors_reply_and_close_per_protocol() -> None:
    assert LINE.framing is not None and RESP.framing is not None
    closing = text.TextProtocolError("line too long", close=True)
    kept = text.TextProtocolError("unbalanced quotes", close=False)
    assert LINE.framing.protocol_error_reply(kept) == b"ERROR unbalanced quotes\n"
    assert (LINE.framing.protocol_error_closes(closing), LINE.framing.protocol_error_closes(kept)) == (True, False)
    broken = RespProtocolError("Protocol error: invalid bulk length")
    assert RESP.framing.protocol_error_reply(broken) == b"-ERR Protocol error: invalid bulk length\r\n"
    assert RESP.framing.protocol_error_closes(broken)


def test_the_main_port_sniff_chooses_once_from_the_first_byte() -> None:
    assert sniff_main_port(b"*1\r\n$4\r\nPING\r\n") is RESP_AFTER_SNIFF
    assert sniff_main_port(b"PING\n") is LINE
    assert sniff_main_port(b"") is LINE  # nothing came: the line protocol's words
    assert RESP_AFTER_SNIFF.label == "resp" and RESP_AFTER_SNIFF.noauth == RESP.noauth
    # RESP found by a '*' takes no inline command after it; the RESP port does.
    assert RESP.framing is not None and RESP_AFTER_SNIFF.framing is not None
    inline = b"*1\r\n$4\r\nPING\r\nPING\r\n"
    open_port = RESP.framing.new_parser(_limits())
    open_port.receive_data(inline)
    assert open_port.next_commands(10) == [[b"PING"], [b"PING"]]
    sniffed = RESP_AFTER_SNIFF.framing.new_parser(_limits())
    sniffed.receive_data(inline)
    assert sniffed.next_commands(10) == [[b"PING"]]
    with pytest.raises(RespProtocolError):
        sniffed.next_commands(10)


class _RefusingLog:
    """An append-only log that refuses every write (disk full)."""

    def refusal(self) -> str:
        return "disk full"


def _run(store: Store, session: Session, *lines: bytes) -> list[bytes]:
    """Parse, execute and encode ``lines`` as the session's protocol does."""
    framing = session.wire.framing
    assert framing is not None
    parser = framing.new_parser(_limits())
    parser.receive_data(b"".join(line + b"\n" for line in lines))
    job = Job(session, session.wire.table, parser.next_commands(100), time.perf_counter())
    run_batch(store, [job])
    encoded = []
    for reply in job.replies:
        out = bytearray()
        framing.encode_reply_into(out, reply, session.protocol)
        encoded.append(bytes(out))
    return encoded


def test_a_new_protocol_is_one_object_and_the_engine_speaks_it() -> None:
    store = Store(Config())
    session = Session(1, store, LocalControl(store), wire=SHOUT)
    assert _run(store, session, b"SET k v", b"GET k", b"NOPE") == [b"OK\n", b"VALUE v\n", b"OOPS unknown command!\n"]
    # errorstats counts the error under the code the protocol's text starts with.
    assert store.stats.error_counts() == {"OOPS": 1}

    store.requirepass = b"secret"
    stranger = Session(2, store, LocalControl(store), wire=SHOUT)
    assert _run(store, stranger, b"GET k") == [b"OOPS LOGIN FIRST!\n"]

    store.requirepass = None
    store.persistence = _RefusingLog()
    assert _run(store, session, b"SET k w", b"GET k") == [b"OOPS READ ONLY NOW (disk full)!\n", b"VALUE v\n"]
    assert store.stats.error_counts() == {"OOPS": 3}


def _protocol_names(root: Path) -> set[tuple[str, int, str]]:
    """Every attribute read named ``resp`` / ``resp_only``, every import of
    a protocol's wording constant and every string constant (docstrings
    aside) holding a piece of a removed reply, in the source under ``root``."""
    wording = ("MISCONF Errors", "writes refused: error", "NOAUTH", "internal error, see", "ERROR ")
    found = set()
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if id(node) in docstrings:
                continue
            if isinstance(node, ast.Attribute) and node.attr in ("resp", "resp_only"):
                found.add((path.name, node.lineno, f".{node.attr}"))
            elif isinstance(node, ast.alias) and node.name in ("NOAUTH", "TEXT_NOAUTH", "DENIED_RESP", "DENIED_TEXT"):
                found.add((path.name, node.lineno, f"import {node.name}"))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.update((path.name, node.lineno, word) for word in wording if word in node.value)
    return found


def test_the_store_layer_names_no_protocol() -> None:
    assert _protocol_names(STORE_PACKAGE) == set()


def test_no_code_or_test_uses_the_old_protocol_booleans() -> None:
    # A leftover ``session.resp = False`` would set an attribute nothing reads.
    repository = STORE_PACKAGE.parents[1]
    found = {
        (path, line, name)
        for root in (repository / "trio_kv", repository / "tests")
        for path, line, name in _protocol_names(root)
        if name in (".resp", ".resp_only")
    }
    assert found == set()


def test_the_store_check_sees_what_it_forbids(tmp_path: Path) -> None:
    # The same check on a file written the old way finds each kind of offence.
    (tmp_path / "old.py").write_text(
        "from ..commands.auth import NOAUTH\n"
        "def f(session):\n"
        '    """Docstrings may say NOAUTH and MISCONF Errors."""\n'
        "    return 'ok' if session.resp else Error(f'MISCONF Errors writing: {session}')\n"
    )
    assert _protocol_names(tmp_path) == {
        ("old.py", 1, "import NOAUTH"), ("old.py", 4, ".resp"), ("old.py", 4, "MISCONF Errors"),
    }


@pytest.mark.parametrize("reply", [
    text.Labelled(b"VALUE", b"hello world"), text.Labelled(b"VALUE", b""), text.Labelled(b"TTL", 1500),
    text.Labelled(b"TTL", -1), text.NOT_FOUND, Error("wrong number of arguments for 'get'"),
])
def test_a_line_protocol_reply_crosses_the_cluster_bus_and_comes_back_the_same(reply: object) -> None:
    parser = ReplyParser()  # the forwarding node's end of the bus link (RESP2)
    parser.receive_data(encode_reply(LINE.reply_to_bus(reply), 2))
    assert LINE.reply_from_bus(parser.next_reply()) == reply
    assert text.encode_text_reply(LINE.reply_from_bus(LINE.reply_to_bus(reply))) == text.encode_text_reply(reply)


def test_resp_and_http_replies_cross_the_bus_unchanged() -> None:
    reply = [b"a", 1, None]
    assert all(wire.reply_to_bus(reply) is reply and wire.reply_from_bus(reply) is reply for wire in (RESP, HTTP))
