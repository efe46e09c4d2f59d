"""The line ("text") protocol: a sans-IO request parser and the reply encoders.

No IO happens here (the model is h11): the connection feeds received bytes to
``TextParser.receive_data`` and takes complete commands out of
``next_command``/``next_commands``; the encoders are pure functions.

Rules this module keeps:

* Framing. A request is one line ending in ``\\n`` or ``\\r\\n``; the
  terminator is not part of the line. Lines that hold only whitespace are
  skipped. At EOF a non-empty unterminated last line is still a command, so
  ``printf 'PING' | nc host port`` works.
* Tokens follow Redis's ``sdssplitargs`` (``protocol.split_args`` has the
  rules), with one deliberate difference: NUL is an ordinary byte here (C
  stops at it, and so does RESP inline).
* Bounded memory. An unterminated line is an error as soon as it is provably
  longer than ``max_line_bytes``; the parser then stops buffering. Memory is
  therefore at most ``max_line_bytes`` plus what the caller hands over with
  ``receive_data`` (``buffered_bytes``; the connection bounds it with the
  query-buffer limit), and the commands parsed at once are those of one
  window of at most 256 KiB (or twice ``max_line_bytes``), however big the
  backlog.
* Errors are ``TextProtocolError``s carrying the reply reason and whether the
  connection must close. Every error this parser raises today closes: after
  it the parser is dead, every later ``next_command``/``next_commands`` call
  raises the same error again and ``receive_data`` discards its input.
* Handlers return reply values ("reply values" below: ``SimpleString``,
  ``Labelled``, ``Listing``, ``Fields``, ``Table``, ``Error``, ``NO_REPLY``),
  never bytes; ``encode_text_reply`` here is the one place they become
  bytes.
* Replies never break the framing: values and keys go through
  ``escape_value`` and error reasons through ``encode_error``, so each reply
  line is exactly one ``\\n``-terminated line.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Generator
from dataclasses import dataclass
from typing import Final, Literal

from .replies import OK, Error, NoReply, SimpleString
from .split_args import is_plain, split_args

MAX_LINE_BYTES: Final = 64 * 1024
# Bytes of complete lines parsed into commands at once (TextParser._refill).
_REFILL_BYTES: Final = 256 * 1024

REASON_LINE_TOO_LONG: Final = "line too long"
REASON_UNBALANCED_QUOTES: Final = "unbalanced quotes"

_CR: Final = 0x0D


class ParseStatus(enum.Enum):
    """What ``next_command`` returns when it has no command to give."""

    NEED_DATA = "NEED_DATA"
    CLOSED = "CLOSED"


NEED_DATA: Final = ParseStatus.NEED_DATA
CLOSED: Final = ParseStatus.CLOSED


class TextProtocolError(Exception):
    """A request the line protocol cannot accept.

    ``reason`` is the text after ``ERROR `` in the reply; ``close`` says the
    framing is broken, so the connection must be closed after replying.
    """

    def __init__(self, reason: str, *, close: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.close = close


# --- tokenizer ---------------------------------------------------------------


def tokenize(line: bytes) -> list[bytes]:
    """Split one request line (without its terminator) into tokens:
    ``split_args`` with NUL an ordinary byte. Raises ``TextProtocolError``
    ("unbalanced quotes", close=True)."""
    tokens = split_args(line, nul_ends_line=False)
    if tokens is None:
        raise TextProtocolError(REASON_UNBALANCED_QUOTES, close=True)
    return tokens


# --- parser ------------------------------------------------------------------


class TextParser:
    """Turns received bytes into commands (lists of byte tokens).

    ``receive_data(b"")`` means EOF. ``next_command`` returns one command,
    ``NEED_DATA`` or ``CLOSED`` (EOF seen and every command taken).
    ``next_commands(limit)`` returns up to ``limit`` commands, ``[]`` when
    there is none (then ``closed`` tells EOF from "need data"). The command
    name is returned as sent; the command layer lower-cases it.

    Errors keep request order: if a line is bad, the commands on the lines
    before it are returned first and the error is raised by the next call
    that finds no command left, so the connection answers them before the
    ``ERROR`` reply. After an error that closes (all of them today) every
    call raises that error again.
    """

    def __init__(self, *, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        if max_line_bytes < 1:
            raise ValueError(f"max_line_bytes must be >= 1, got {max_line_bytes}")
        self._max_line_bytes = max_line_bytes
        # The most bytes one refill parses (see _refill); always more than a
        # line may hold, so a window without a line end means "too long".
        self._refill_bytes = max(_REFILL_BYTES, 2 * max_line_bytes + 2)
        # Received bytes; everything before _start is parsed already.
        self._buffer = bytearray()
        self._start = 0
        # buffer[_start:_scan_from] holds no newline, so a long line that
        # arrives in small pieces is scanned once, not once per piece.
        self._scan_from = 0
        # Commands parsed from the buffer, handed out from _ready_pos on. The
        # whole buffer is parsed in one go: splitting many lines at once is
        # what makes pipelines cheap.
        self._ready: list[list[bytes]] = []
        self._ready_pos = 0
        self._eof = False
        # Raised once _ready is drained; sticky because it closes.
        self._error: TextProtocolError | None = None

    @property
    def buffered_bytes(self) -> int:
        """Received bytes not yet parsed into commands (the query buffer)."""
        return len(self._buffer) - self._start

    @property
    def closed(self) -> bool:
        """True once EOF was received and every command has been taken."""
        return (
            self._eof
            and self._error is None
            and self._ready_pos == len(self._ready)
            and self._start == len(self._buffer)
        )

    def receive_data(self, data: bytes) -> None:
        """Append received bytes; ``b""`` means the peer closed (EOF)."""
        if self._error is not None:
            # Dead: the connection is closing; keep memory bounded.
            return
        if not data:
            self._eof = True
            return
        if self._eof:
            raise RuntimeError("receive_data() after EOF")
        if self._start:
            # Only a partial line is left before _start moves again, so this
            # moves at most one line's bytes.
            del self._buffer[: self._start]
            self._scan_from -= self._start
            self._start = 0
        self._buffer += data

    def next_command(self) -> list[bytes] | Literal[ParseStatus.NEED_DATA, ParseStatus.CLOSED]:
        """The next command, or ``NEED_DATA``/``CLOSED``; may raise
        ``TextProtocolError``."""
        if self._ready_pos == len(self._ready):
            self._refill()
        if self._ready_pos < len(self._ready):
            command = self._ready[self._ready_pos]
            self._ready_pos += 1
            return command
        if self._error is not None:
            raise self._error
        return CLOSED if self._eof else NEED_DATA

    def next_commands(self, limit: int) -> list[list[bytes]]:
        """Up to ``limit`` complete commands, ``[]`` if none is complete.

        Commands before a bad line are returned first; the error is raised by
        the next call (see the class docstring).
        """
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        if self._ready_pos == len(self._ready):
            self._refill()
        ready, pos = self._ready, self._ready_pos
        if pos == len(ready):
            if self._error is not None:
                raise self._error
            return []
        if pos == 0 and len(ready) <= limit:
            self._ready = []
            return ready
        batch = ready[pos : pos + limit]
        self._ready_pos = pos + len(batch)
        return batch

    def _refill(self) -> None:
        """Parse the complete lines in the next window of the buffer into
        _ready. The window (``_refill_bytes``, more than a longest line)
        bounds the commands parsed at once: a client's backlog of many MiB,
        buffered while its replies waited, is not turned into command lists
        all at once."""
        self._ready = []
        self._ready_pos = 0
        if self._error is not None:
            return
        buffer = self._buffer
        end = min(len(buffer), self._start + self._refill_bytes)
        last_newline = buffer.rfind(b"\n", self._scan_from, end)
        if last_newline >= 0:
            chunk = bytes(buffer[self._start : last_newline])
            self._start = self._scan_from = last_newline + 1
            self._ready = self._parse_lines(chunk)
            if end < len(buffer) and self._error is None:
                return  # more lines past the window: the next call takes them
        else:
            self._scan_from = end
        tail_bytes = len(buffer) - self._start
        if self._error is None and tail_bytes:
            if self._too_long(tail_bytes, buffer[-1]):
                self._error = TextProtocolError(REASON_LINE_TOO_LONG, close=True)
            elif self._eof:
                self._append_line(self._ready, bytes(buffer[self._start :]))
                self._start = self._scan_from = len(buffer)
        if self._error is not None:
            self._buffer = bytearray()
            self._start = self._scan_from = 0

    def _too_long(self, line_bytes: int, last_byte: int) -> bool:
        # A trailing CR may be the first half of a CRLF terminator.
        limit = self._max_line_bytes
        return line_bytes > limit and not (line_bytes == limit + 1 and last_byte == _CR)

    def _parse_lines(self, chunk: bytes) -> list[list[bytes]]:
        """Commands from newline-separated lines; stops at the first bad one."""
        lines = chunk.split(b"\n")
        limit = self._max_line_bytes
        fits = len(chunk) <= limit or max(map(len, lines)) <= limit
        if fits and is_plain(chunk, nul_ends_line=False):
            # The fast path, one C call per line: bytes.split() also drops the
            # CR of a CRLF and skips blank lines (they split to []).
            return [tokens for tokens in map(bytes.split, lines) if tokens]
        commands: list[list[bytes]] = []
        for request_line in lines:
            if not self._append_line(commands, request_line):
                break
        return commands

    def _append_line(self, commands: list[list[bytes]], request_line: bytes) -> bool:
        """Tokenize one line into commands; False (and _error set) if bad."""
        if request_line.endswith(b"\r"):
            request_line = request_line[:-1]
        if len(request_line) > self._max_line_bytes:
            self._error = TextProtocolError(REASON_LINE_TOO_LONG, close=True)
            return False
        try:
            tokens = tokenize(request_line)
        except TextProtocolError as error:
            self._error = error
            return False
        if tokens:
            commands.append(tokens)
        return True


# --- the display rule and lines ---------------------------------------------

# A value is sent raw unless a byte could break the line (control bytes and
# DEL) or it could be mistaken for a quoted value (a leading ``"``), or it is
# empty (``VALUE `` with nothing after it reads like a bug).
# (bytes.translate deleting them and comparing lengths scans 5x faster than a
# regex search on long values.)
_NEEDS_QUOTING: Final = bytes((*range(0x20), 0x7F))
_ESCAPED_IN_QUOTES = re.compile(rb'[\x00-\x1f"\\\x7f]')
_ESCAPES: Final = {
    bytes((byte,)): b"\\x%02x" % byte for byte in (*range(0x20), 0x7F)
} | {
    b"\\": b"\\\\",
    b'"': b'\\"',
    b"\n": b"\\n",
    b"\r": b"\\r",
    b"\t": b"\\t",
}


def _escape_match(match: re.Match[bytes]) -> bytes:
    return _ESCAPES[match.group()]


def escape_value(value: bytes) -> bytes:
    """How a value or key appears in a reply (the display rule).

    The value is sent raw unless it is empty, starts with ``"``, or contains a
    control byte (< 0x20, so CR, LF and TAB among them) or 0x7f. Then it is
    wrapped in ``"`` with ``\\\\``, ``\\"``, ``\\n``, ``\\r``, ``\\t`` escaped and
    every other byte < 0x20 or == 0x7f written as ``\\xHH``. Spaces, single
    quotes and bytes >= 0x80 (UTF-8) stay raw, so ``SET k "hello world"``
    reads back as ``VALUE hello world``.

    So a reply line never breaks, and a client reads a value back with
    ``decode_display``: the rest of a ``VALUE <display>`` line is the value
    itself unless it starts with ``"``, in which case ``tokenize`` decodes it.
    """
    if value and value[0] != 0x22 and len(value.translate(None, _NEEDS_QUOTING)) == len(value):
        return value
    return b'"' + _ESCAPED_IN_QUOTES.sub(_escape_match, value) + b'"'


def decode_display(display: bytes) -> bytes:
    """The inverse of ``escape_value``: ``decode_display(escape_value(v)) == v``."""
    if display.startswith(b'"'):
        tokens = tokenize(display)
        if len(tokens) != 1:
            raise ValueError(f"not one quoted value: {display!r}")
        return tokens[0]
    return display


def value_line(prefix: bytes, value: bytes) -> bytes:
    """``prefix``, a space, the escaped value and ``\\n``:
    ``value_line(b"VALUE", b"bar") == b"VALUE bar\\n"``."""
    return prefix + b" " + escape_value(value) + b"\n"


def line(text: bytes) -> bytes:
    """``text`` as one reply line; ValueError if it holds CR or LF."""
    if b"\n" in text or b"\r" in text:
        raise ValueError(f"a reply line cannot contain CR or LF: {text!r}")
    return text + b"\n"


def encode_error(reason: str) -> bytes:
    """``ERROR <reason>\\n``, with CR and LF in ``reason`` made spaces."""
    one_line = reason.replace("\r", " ").replace("\n", " ")
    return b"ERROR " + one_line.encode("utf-8", "backslashreplace") + b"\n"


# --- reply values ---------------------------------------------------------------
# What the line protocol's handlers return (commands/text.py); the encoders
# below are the only place they become bytes. ``Error`` (an ``ERROR
# <reason>`` line) and ``NO_REPLY`` (nothing) come from ``replies``; a
# ``SimpleString`` is one word on its own line (``OK``, ``NOT_FOUND``).

NOT_FOUND: Final = SimpleString("NOT_FOUND")
_OK_LINE: Final = b"OK\n"
# The words handlers answer with, encoded once.
_WORD_LINES: Final = {word: word.encode() + b"\n" for word in ("OK", "NOT_FOUND", "PONG")}


@dataclass(frozen=True, slots=True)
class Labelled:
    """One line: a label, a space, and a value: ``VALUE <display>`` (bytes go
    through ``escape_value``) or ``TTL 1500`` (an int, in decimal)."""

    label: bytes
    value: bytes | int


@dataclass(frozen=True, slots=True)
class Listing:
    """``<label> <n>``, then the n items one per line, each through
    ``escape_value``, in the order given (``KEYS``: ``display_order``)."""

    label: bytes
    items: list[bytes]


@dataclass(frozen=True, slots=True)
class Fields:
    """One line of ``name:value`` pairs, after ``word`` and a space when
    there is a word: ``gets:1 sets:2`` (STATS), ``get count:3 p50_us:40``
    (a LATENCY row)."""

    pairs: tuple[tuple[str, int], ...]
    word: bytes | None = None


@dataclass(frozen=True, slots=True)
class Table:
    """Lines of ``Fields``, then a line ``END`` (LATENCY)."""

    rows: tuple[Fields, ...]


def display_order(items: list[bytes]) -> list[bytes]:
    """``items`` sorted as their displays (``escape_value``) sort: the order
    of a ``Listing`` of keys."""
    return sorted(items, key=escape_value)


# --- encoders ----------------------------------------------------------------


def _encode_simple_string(reply: SimpleString) -> bytes:
    encoded = _WORD_LINES.get(reply.text)
    return line(reply.text.encode("utf-8")) if encoded is None else encoded


def _encode_labelled(reply: Labelled) -> bytes:
    value = reply.value
    if isinstance(value, int):
        return reply.label + b" %d\n" % value
    return value_line(reply.label, value)


def _encode_fields(reply: Fields) -> bytes:
    pairs = b" ".join(b"%s:%d" % (name.encode("ascii"), value) for name, value in reply.pairs)
    return (pairs if reply.word is None else reply.word + b" " + pairs) + b"\n"


def _encode_table(reply: Table) -> bytes:
    return b"".join(map(_encode_fields, reply.rows)) + b"END\n"


def _encode_listing(reply: Listing) -> bytes:
    return b"".join(_listing_pieces(bytearray(), reply, 1 << 62))


def _listing_pieces(out: bytearray, reply: Listing, piece_bytes: int) -> Generator[bytearray, None, None]:
    """``out`` then the listing's lines, yielded as buffers of at least
    ``piece_bytes`` (the last one possibly shorter)."""
    out += reply.label + b" %d\n" % len(reply.items)
    for item in reply.items:
        out += escape_value(item)
        out += b"\n"
        if len(out) >= piece_bytes:
            yield out
            out = bytearray()
    yield out


def encode_text_reply(reply: object) -> bytes:
    """A text handler's reply value (see "reply values" above) as bytes."""
    # Most frequent first: SET's OK, GET's VALUE.
    if reply is OK:
        return _OK_LINE
    reply_type = type(reply)
    if reply_type is Labelled:
        return _encode_labelled(reply)  # type: ignore[arg-type]
    if reply_type is SimpleString:
        return _encode_simple_string(reply)  # type: ignore[arg-type]
    if reply_type is Error:
        return encode_error(reply.message)  # type: ignore[attr-defined]
    if reply_type is NoReply:
        return b""
    if reply_type is Listing:
        return _encode_listing(reply)  # type: ignore[arg-type]
    if reply_type is Fields:
        return _encode_fields(reply)  # type: ignore[arg-type]
    if reply_type is Table:
        return _encode_table(reply)  # type: ignore[arg-type]
    raise TypeError(f"not a line-protocol reply value: {reply_type.__name__}")


# A text reply this long or longer is sent as the object itself, after the
# replies before it, instead of being copied into the output buffer.
LARGE_REPLY_BYTES: Final = 64 * 1024


def is_streamed(reply: object) -> bool:
    """Whether ``reply`` goes through ``encode_text_reply_pieces`` (cheap):
    a ``Listing``, or a ``Labelled`` value of ``LARGE_REPLY_BYTES`` or more."""
    reply_type = type(reply)
    if reply_type is Listing:
        return True
    if reply_type is not Labelled:
        return False
    value = reply.value  # type: ignore[attr-defined]
    return type(value) is not int and len(value) >= LARGE_REPLY_BYTES


def encode_text_reply_pieces(
    out: bytearray, reply: object, piece_bytes: int
) -> Generator[bytes | bytearray, None, bytearray]:
    """``encode_text_reply(reply)`` after what ``out`` holds, as pieces to
    send in order (a yielded piece is never touched again): a big
    ``Labelled`` value as one piece of its own, with no copy into ``out``;
    a ``Listing`` encoded into buffers that are yielded as they reach
    ``piece_bytes``, so a long KEYS reply is encoded a piece at a time.
    Returns the buffer for the next replies."""
    if isinstance(reply, Listing):
        pieces = _listing_pieces(out, reply, piece_bytes)
        last = bytearray()
        for piece in pieces:
            if last:
                yield last
            last = piece
        return last
    encoded = encode_text_reply(reply)
    if not is_streamed(reply):
        out += encoded
        return out
    if out:
        yield out
    yield encoded
    return bytearray()
