"""One object per wire protocol: everything that differs between the line
protocol, RESP and HTTP, in one place (HTTP's object is ``trio_kv.http.wire``,
above this layer, since its answers are built by its routes).

A ``WireProtocol`` says how its connections are framed (``Framing``: the
parser factory, the reply encoder, what a protocol error answers and whether
it closes), which command table they run, how the engine words the errors it
makes itself (NOAUTH, a write refused by a log error, a handler's crash),
how errorstats reads an error's code, what a client turned away at accept
hears (over ``--max-clients``, protected mode), and the label the metrics
count its connections under. Each session holds its connection's protocol
(``Session.wire``); the engine and the server ask it and know no wording of
their own.

Rules this module keeps:

1. A protocol's wording lives in its object, nowhere else: the store layer
   and the connection code name no protocol. (The constants the objects
   use, such as ``commands.auth.NOAUTH``, stay with the rules they belong
   to.)
2. Adding a protocol (memcached, a cluster bus) means one new object here
   (or next to its commands, as ``http.wire``) and one listener entry
   (``server.lifecycle``);
   a request/reply protocol with a ``Framing`` is served by the generic
   ``server.connection.Connection`` with no other change.
   ``tests/unit/test_wire_protocols.py`` builds a throwaway protocol to show it.
3. The main port's first-byte choice between the line protocol and RESP is
   the one special case: ``sniff_main_port`` (RESP found that way takes no
   inline commands, ``RESP_AFTER_SNIFF``).
4. Pure: no IO, no trio; objects are immutable and shared by every
   connection of their protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, replace
from typing import Protocol

from ..protocol import resp, resp_encoder, text
from ..protocol.replies import Error
from .auth import DENIED_RESP, DENIED_TEXT, NOAUTH, TEXT_NOAUTH
from .redis import REDIS_COMMANDS
from .table import CommandTable
from .text import TEXT_COMMANDS

INTERNAL_ERROR = "internal error, see the server log"


class RequestParser(Protocol):
    """What a connection needs of a sans-IO request parser
    (``protocol.resp.RespParser``, ``protocol.text.TextParser``)."""

    @property
    def buffered_bytes(self) -> int: ...

    def receive_data(self, data: bytes) -> None: ...

    def next_commands(self, limit: int) -> list[list[bytes]]: ...


@dataclass(frozen=True, slots=True)
class ParserLimits:
    """The limits a new connection's parser is built with (read from the
    live configuration when the connection starts)."""

    max_line_bytes: int
    max_bulk_bytes: int
    max_query_buffer_bytes: int
    # Session.auth_required: RESP's tighter limits before AUTH.
    auth_required: Callable[[], bool]


Pieces = Generator[bytes | bytearray | memoryview, None, bytearray]


@dataclass(frozen=True, slots=True, eq=False)
class Framing:
    """How a request/reply protocol turns bytes into requests and replies
    into bytes (``server.connection`` drives it)."""

    new_parser: Callable[[ParserLimits], RequestParser]
    # What the parser raises when the client broke the protocol.
    protocol_error: type[Exception]
    # The reply to such an error, and whether the connection closes after it.
    protocol_error_reply: Callable[[Exception], bytes]
    protocol_error_closes: Callable[[Exception], bool]
    # encode_reply_into(out, reply, resp_version): appends the reply's bytes.
    encode_reply_into: Callable[[bytearray, object, int], None]
    # Cheap test: does this reply go through encode_reply_pieces (big ones)?
    is_streamed: Callable[[object], bool]
    # encode_reply_pieces(out, reply, resp_version, piece_bytes): see
    # protocol.resp_encoder.encode_reply_pieces.
    encode_reply_pieces: Callable[[bytearray, object, int, int], Pieces]


@dataclass(frozen=True, slots=True, eq=False)
class WireProtocol:
    """One wire protocol: its framing, table, error wording, rejections and label.

    To add a protocol, build one of these (its ``Framing`` from its own
    parser and encoder in ``protocol/``, its table in ``commands/``) and add
    a listener entry for it in ``server.lifecycle``: nothing else changes.
    """

    # The metrics label of its connections (trio_kv_connected_clients{protocol=...}).
    label: str
    # None: the connection does its own framing (HTTP: h11, server.http_connection).
    framing: Framing | None
    # The commands its connections run (the connection hands it to the engine with each job).
    table: CommandTable
    # The engine's own errors, in this protocol's words: a command before
    # AUTH while a password is set; a handler that raised (a bug, logged).
    noauth: Error
    internal_error: Error
    # refused_write(reason): a write while the append-only log cannot be written.
    refused_write: Callable[[str], Error]
    # error_text(error): the text errorstats reads the error's code from
    # (``ERR``, ``WRONGTYPE``; the line protocol's are all ``ERROR``).
    error_text: Callable[[Error], str]
    # Sent before closing a client over --max-clients / turned away by protected mode.
    max_clients_reply: bytes
    denied_reply: bytes
    # CLIENT LIST resp=: the session's RESP version, or 0 for a protocol without one.
    shows_resp_version: bool
    # A reply of this protocol's commands on its way over the cluster bus
    # (the answer to a TKV.FORWARD, which crosses as RESP2) and back at the
    # node that forwarded it: a reply RESP cannot carry goes as one it can.
    # The identity for RESP and HTTP, whose replies are RESP's.
    reply_to_bus: Callable[[object], object] = lambda reply: reply
    reply_from_bus: Callable[[object], object] = lambda answer: answer


def _resp_parser(inline_allowed: bool) -> Callable[[ParserLimits], RequestParser]:
    def new_parser(limits: ParserLimits) -> RequestParser:
        return resp.RespParser(
            inline_allowed=inline_allowed,
            max_bulk_bytes=limits.max_bulk_bytes,
            max_query_buffer_bytes=limits.max_query_buffer_bytes,
            auth_required=limits.auth_required,
        )

    return new_parser


def _resp_error_reply(error: Exception) -> bytes:
    assert isinstance(error, resp.RespProtocolError)
    return error.reply_bytes()


def resp_refused_write(reason: str) -> Error:
    return Error(f"MISCONF Errors writing to the AOF file: {reason}")


def resp_error_text(error: Error) -> str:
    return error.message


RESP_FRAMING = Framing(
    new_parser=_resp_parser(inline_allowed=True),
    protocol_error=resp.RespProtocolError,
    protocol_error_reply=_resp_error_reply,
    protocol_error_closes=lambda error: True,
    encode_reply_into=resp_encoder.encode_reply_into,
    is_streamed=resp_encoder.is_streamed,
    encode_reply_pieces=resp_encoder.encode_reply_pieces,
)

# Redis' protocol (--redis-port, --tls-port): RESP2/RESP3 by HELLO, inline commands too.
RESP = WireProtocol(
    label="resp",
    framing=RESP_FRAMING,
    table=REDIS_COMMANDS,
    noauth=NOAUTH,
    internal_error=Error("ERR " + INTERNAL_ERROR),
    refused_write=resp_refused_write,
    error_text=resp_error_text,
    max_clients_reply=b"-ERR max number of clients reached\r\n",
    denied_reply=DENIED_RESP,
    shows_resp_version=True,
)

# RESP chosen by a first ``*`` on the main port: a later command that does
# not start with ``*`` is an error, not an inline command.
RESP_AFTER_SNIFF = replace(RESP, framing=replace(RESP_FRAMING, new_parser=_resp_parser(inline_allowed=False)))


def _text_parser(limits: ParserLimits) -> RequestParser:
    return text.TextParser(max_line_bytes=limits.max_line_bytes)


def _text_error_reply(error: Exception) -> bytes:
    assert isinstance(error, text.TextProtocolError)
    return text.encode_error(error.reason)


def _text_error_closes(error: Exception) -> bool:
    assert isinstance(error, text.TextProtocolError)
    return error.close


def _text_encode_into(out: bytearray, reply: object, resp_version: int) -> None:
    out += text.encode_text_reply(reply)


def _text_encode_pieces(out: bytearray, reply: object, resp_version: int, piece_bytes: int) -> Pieces:
    return text.encode_text_reply_pieces(out, reply, piece_bytes)


def _text_refused_write(reason: str) -> Error:
    return Error(f"writes refused: error writing the log ({reason})")


def _text_error_text(error: Error) -> str:
    return "ERROR " + error.message


TEXT_FRAMING = Framing(
    new_parser=_text_parser,
    protocol_error=text.TextProtocolError,
    protocol_error_reply=_text_error_reply,
    protocol_error_closes=_text_error_closes,
    encode_reply_into=_text_encode_into,
    is_streamed=text.is_streamed,
    encode_reply_pieces=_text_encode_pieces,
)

def _text_reply_to_bus(reply: object) -> object:
    # VALUE and TTL lines: [label, value]. The keyed commands, the only ones
    # forwarded (SET, GET, DEL, TTL), answer no array of their own.
    return [reply.label, reply.value] if type(reply) is text.Labelled else reply


def _text_reply_from_bus(answer: object) -> object:
    if type(answer) is list and len(answer) == 2 and type(answer[0]) is bytes:
        return text.Labelled(answer[0], answer[1])
    return answer


# The line protocol (the main port, when the first byte is not ``*``).
LINE = WireProtocol(
    label="text",
    framing=TEXT_FRAMING,
    table=TEXT_COMMANDS,
    noauth=TEXT_NOAUTH,
    internal_error=Error(INTERNAL_ERROR),
    refused_write=_text_refused_write,
    error_text=_text_error_text,
    max_clients_reply=text.encode_text_reply(Error("max clients reached")),
    denied_reply=DENIED_TEXT,
    shows_resp_version=False,
    reply_to_bus=_text_reply_to_bus,
    reply_from_bus=_text_reply_from_bus,
)


def sniff_main_port(first: bytes) -> WireProtocol:
    """The main port speaks both the line protocol and RESP: a client's
    first byte chooses, once (``*``: RESP, anything else: the line protocol)."""
    return RESP_AFTER_SNIFF if first[:1] == b"*" else LINE
