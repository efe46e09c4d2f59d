"""A throwaway wire protocol for tests: the line protocol's parser and
commands with words of its own. Built from ``commands.wire``'s parts alone,
it shows that adding a protocol needs one object and one listener entry."""

from __future__ import annotations

from trio_kv.commands.text import TEXT_COMMANDS
from trio_kv.commands.wire import TEXT_FRAMING, Framing, WireProtocol
from trio_kv.protocol.replies import Error


def _shout_encode(out: bytearray, reply: object, resp_version: int) -> None:
    if isinstance(reply, Error):
        out += b"OOPS " + reply.message.encode() + b"!\n"
    else:
        TEXT_FRAMING.encode_reply_into(out, reply, resp_version)


SHOUT = WireProtocol(
    label="shout",
    framing=Framing(
        new_parser=TEXT_FRAMING.new_parser,
        protocol_error=TEXT_FRAMING.protocol_error,
        protocol_error_reply=lambda error: b"OOPS bad request!\n",
        protocol_error_closes=lambda error: True,
        encode_reply_into=_shout_encode,
        is_streamed=TEXT_FRAMING.is_streamed,
        encode_reply_pieces=TEXT_FRAMING.encode_reply_pieces,
    ),
    table=TEXT_COMMANDS,
    noauth=Error("LOGIN FIRST"),
    internal_error=Error("BROKEN"),
    refused_write=lambda reason: Error(f"READ ONLY NOW ({reason})"),
    error_text=lambda error: "OOPS " + error.message,
    max_clients_reply=b"OOPS full!\n",
    denied_reply=b"OOPS go away!\n",
    shows_resp_version=False,
)
