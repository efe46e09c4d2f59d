"""RESP (Redis serialization protocol): the sans-IO command parser.

Like h11, this module does no IO: ``RespParser.receive_data`` takes bytes
(``b""`` is EOF) and ``next_command`` / ``next_commands`` hand back commands
(lists of ``bytes`` arguments). Replies are encoded by ``resp_encoder``;
inline commands are split by ``split_args`` (NUL ends the line).

The parser follows Redis 7's ``processMultibulkBuffer`` and
``processInlineBuffer`` (src/networking.c), including the error wording, and
keeps these rules:

1. Nothing is allocated from a declared length. ``*1000000`` or ``$536870911``
   costs nothing until the bytes arrive; argument lists grow by appending.
2. Linear time however the bytes are chunked. A command's state (arguments so
   far, the pending bulk length) survives between calls, and data that cannot
   complete the pending item (a bulk payload still short, a line with no line
   feed yet) is only queued, never re-scanned or copied again.
3. Every bound breach raises ``RespProtocolError`` carrying the reply to send;
   the parser is dead afterwards (the connection replies and closes).
4. While ``auth_required()`` (set by the connection) is true, a command
   may have at most 10 arguments, each at most 16384 bytes, and commands are
   parsed one at a time so that an AUTH is run before the next command is
   judged (Redis' limits for unauthenticated clients).
5. Stricter than Redis in one place: a bulk payload must be followed by CRLF,
   and a count line ends at its first CRLF (Redis skips two bytes unchecked).
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from .integers import parse_int64
from .split_args import split_args

# Redis's proto-max-bulk-len default.
MAX_BULK_BYTES = 512 * 1024 * 1024
# Redis's PROTO_INLINE_MAX_SIZE: the longest inline command, and the longest
# `*<n>` / `$<n>` count line, that may sit buffered without its line end.
MAX_INLINE_BYTES = 64 * 1024
# Redis's client-query-buffer-limit default. Counts unparsed bytes plus the
# bytes already consumed by the unfinished command.
MAX_QUERY_BUFFER_BYTES = 1024 * 1024 * 1024
# The largest `*<n>` accepted (Redis 7 allows up to INT_MAX).
MAX_MULTIBULK_ARGS = 1024 * 1024 * 1024

# Redis' limits while a client has not authenticated (processMultibulkBuffer).
UNAUTHENTICATED_MAX_ARGS = 10
UNAUTHENTICATED_MAX_BULK_BYTES = 16384

# Count strings up to this value are looked up instead of parsed (others go
# through integers.parse_int64, Redis's string2ll): the dict only holds
# canonical spellings, so a hit is also a strictness check.
_CACHED_DECIMALS_LIMIT = 1024
_DECIMALS = {str(n).encode(): n for n in range(_CACHED_DECIMALS_LIMIT)}

_STAR = ord("*")
# The fast path (``_parse_split``): headers it recognises without parsing.
_FAST_COUNTS = {b"*%d" % n: n for n in range(1, 65)}
_FAST_BULK_LENGTHS = {b"$%d" % n: n for n in range(0, 16 * 1024)}
# The fast path splits at most this many bytes of the buffer per call (a
# pipeline backlog of many MiB is taken a window at a time, and a big value
# is never split or copied whole): the window grows with the batch limit.
_FAST_PATH_MAX_BYTES = 256 * 1024
_FAST_PATH_BYTES_PER_COMMAND = 128
_FAST_PATH_MIN_BYTES = 4096
_DOLLAR = ord("$")
_CR = ord("\r")
_LF = ord("\n")


class ParseStatus(enum.Enum):
    """What ``next_command`` returns when it has no command to give."""

    NEED_DATA = "need data"
    CLOSED = "closed"


NEED_DATA = ParseStatus.NEED_DATA
CLOSED = ParseStatus.CLOSED


class RespProtocolError(Exception):
    """The client broke the protocol; send ``reply_bytes()`` and close."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def reply_bytes(self) -> bytes:
        # Redis writes the offending byte raw, hence latin-1; CR/LF would end
        # the error line early, so they become spaces (addReplyErrorFormat).
        text = self.message.replace("\r", " ").replace("\n", " ")
        return b"-ERR " + text.encode("latin-1", "replace") + b"\r\n"


class RespParser:
    """Turns a client's bytes into commands; see the module docstring."""

    def __init__(
        self,
        *,
        inline_allowed: bool,
        max_bulk_bytes: int = MAX_BULK_BYTES,
        max_inline_bytes: int = MAX_INLINE_BYTES,
        max_query_buffer_bytes: int = MAX_QUERY_BUFFER_BYTES,
        auth_required: Callable[[], bool] | None = None,
    ) -> None:
        # Whether the client must still authenticate (Session.auth_required):
        # rule 4's limits apply while it says so.
        self._auth_required = auth_required
        self._unauthenticated = False
        # False when the first byte already chose RESP (a shared port): any
        # non-'*' command start is then an error instead of an inline command.
        self._inline_allowed = inline_allowed
        self._max_bulk_bytes = max_bulk_bytes
        self._max_inline_bytes = max_inline_bytes
        self._max_query_buffer_bytes = max_query_buffer_bytes
        # Immutable so that argument slices are bytes with one copy.
        self._buf = b""
        # First unparsed byte of _buf.
        self._pos = 0
        # Data received but not yet joined onto _buf: queued while it cannot
        # complete the pending item, so a big payload is joined only once.
        # One ``bytes`` (the usual case: one receive, kept without a copy) or
        # one ``bytearray`` that later receives are appended to, so a payload
        # arriving a byte per packet costs about a byte per byte, not a
        # ``bytes`` object (~50 bytes) per packet.
        self._queued: bytes | bytearray = b""
        # Arguments of the command being read; None between commands.
        self._args: list[bytes] | None = None
        # Bulk strings still to read into _args.
        self._args_left = 0
        # Declared length of the bulk being read; -1 while its header pends.
        self._bulk_len = -1
        # Bytes consumed by the unfinished command (query buffer accounting).
        self._partial_bytes = 0
        # Wake-up condition set when parsing stopped for lack of data: joining
        # the queued chunks is worth it once the unparsed byte count reaches
        # _wake_bytes, or once a chunk holds _wake_on (the pending line's end).
        self._wake_bytes = 1
        self._wake_on: bytes | None = None
        # True when the queued chunks may let parsing progress.
        self._ready = True
        self._eof = False
        # The error that killed the parser, re-raised on every later call.
        self._error: RespProtocolError | None = None

    @property
    def buffered_bytes(self) -> int:
        """Request bytes this parser holds: unparsed bytes plus the bytes of
        the unfinished command already parsed (what the query-buffer limit
        counts, and about what they cost in memory)."""
        return len(self._buf) - self._pos + len(self._queued) + self._partial_bytes

    @property
    def eof_received(self) -> bool:
        """True once ``receive_data(b"")`` was called."""
        return self._eof

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the client; ``b""`` means the client closed."""
        if self._error is not None:
            raise self._error
        if not data:
            self._eof = True
            return
        if self._eof:
            raise RuntimeError("receive_data after EOF")
        if not self._ready:
            self._ready = self._wakes_up(data)
        queued = self._queued
        if not queued:
            self._queued = data if type(data) is bytes else bytes(data)
        elif type(queued) is bytes:
            grown = bytearray(queued)
            grown += data
            self._queued = grown
        else:
            queued += data

    def next_command(self) -> list[bytes] | ParseStatus:
        """The next complete command, NEED_DATA, or CLOSED after EOF (a
        partial command at EOF is dropped, as Redis does)."""
        commands = self.next_commands(1)
        if commands:
            return commands[0]
        return CLOSED if self._eof else NEED_DATA

    def next_commands(self, limit: int) -> list[list[bytes]]:
        """Up to ``limit`` complete commands; ``[]`` means NEED_DATA, or
        CLOSED when ``eof_received``.

        If the input breaks the protocol after some commands, those commands
        are returned and the error is raised by the next call, so that the
        earlier commands are still answered before the error reply.
        """
        if self._error is not None:
            raise self._error
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self._unauthenticated = self._auth_required is not None and self._auth_required()
        if self._unauthenticated:
            limit = 1
        commands: list[list[bytes]] = []
        if self._pos >= len(self._buf) and self._queued and self._ready:
            # Nothing left unparsed in _buf (the usual case: the last read
            # was whole commands): take the new data at once. The loop below
            # would do the same after one pass over the empty buffer, which
            # cost a third of a one-command call.
            self._join_chunks()
        try:
            while True:
                if self._args is None and not self._unauthenticated:
                    self._parse_split(commands, limit)
                if not self._parse_buffer(commands, limit):
                    break
                if not (self._queued and self._ready):
                    self._ready = False
                    self._check_query_buffer()
                    break
                self._join_chunks()
        except RespProtocolError as exc:
            self._error = exc
            if not commands:
                raise
        return commands

    # -- internals ---------------------------------------------------------

    def _unparsed_bytes(self) -> int:
        return len(self._buf) - self._pos + len(self._queued)

    def _wakes_up(self, data: bytes) -> bool:
        """Whether ``data`` (about to be queued) may let parsing progress."""
        unparsed = self._unparsed_bytes() + len(data)
        if unparsed >= self._wake_bytes:
            return True
        if unparsed + self._partial_bytes > self._max_query_buffer_bytes:
            return True
        wake_on = self._wake_on
        if wake_on is None:
            return False
        if wake_on in data:
            return True
        # A CRLF split across two receives.
        if len(wake_on) != 2 or data[0] != _LF:
            return False
        if self._queued:
            return self._queued[-1] == _CR
        return self._pos < len(self._buf) and self._buf[-1] == _CR

    def _join_chunks(self) -> None:
        queued = self._queued
        if self._pos < len(self._buf):
            self._buf = b"".join((memoryview(self._buf)[self._pos :], queued))
        else:
            self._buf = queued if type(queued) is bytes else bytes(queued)
        self._pos = 0
        self._queued = b""

    def _check_query_buffer(self) -> None:
        if self._unparsed_bytes() + self._partial_bytes > self._max_query_buffer_bytes:
            raise RespProtocolError("Protocol error: query buffer limit exceeded")

    def _parse_split(self, commands: list[list[bytes]], limit: int) -> None:
        """Fast path for the common case: whole multibulk commands with small
        arguments at the start of the buffer. One C-level ``split`` at CRLF
        and slices with a step replace a find per line.

        It only takes a command whose every header is canonical (in the
        tables above) and whose every payload has exactly its declared length,
        so it accepts exactly what ``_parse_buffer`` would, with the same
        result: a payload containing CRLF splits into a shorter piece, fails
        the length check and leaves that command to ``_parse_buffer``. It
        stops at the first command it does not take; ``_parse_buffer``
        continues from there (and reports any error)."""
        buf = self._buf
        pos = self._pos
        if pos >= len(buf) or buf[pos] != _STAR:
            return
        window = min(
            _FAST_PATH_MAX_BYTES,
            max(_FAST_PATH_MIN_BYTES, (limit - len(commands)) * _FAST_PATH_BYTES_PER_COMMAND),
        )
        whole = pos == 0 and len(buf) <= window
        # A window may cut the buffer anywhere: the piece after its last CRLF
        # is never taken, so a cut item is left to the next call.
        lines = (buf if whole else buf[pos : pos + window]).split(b"\r\n")
        # The last piece is not followed by CRLF: never part of a command.
        complete = len(lines) - 1
        counts = _FAST_COUNTS
        bulk_lengths = _FAST_BULK_LENGTHS.get
        append = commands.append
        index = 0
        taken = len(commands)
        while taken < limit and index < complete:
            n = counts.get(lines[index])
            if n is None:
                break
            stop = index + 1 + 2 * n
            if stop > complete:
                break
            if n == 2:  # GET key, DEL key, INCR key...: unrolled
                _, h1, a1, h2, a2 = lines[index:stop]
                if bulk_lengths(h1) != len(a1) or bulk_lengths(h2) != len(a2):
                    break
                append([a1, a2])
            elif n == 3:  # SET key value...: unrolled
                _, h1, a1, h2, a2, h3, a3 = lines[index:stop]
                if bulk_lengths(h1) != len(a1) or bulk_lengths(h2) != len(a2) or bulk_lengths(h3) != len(a3):
                    break
                append([a1, a2, a3])
            else:
                args = lines[index + 2 : stop : 2]
                if list(map(bulk_lengths, lines[index + 1 : stop : 2])) != list(map(len, args)):
                    break
                append(args)
            taken += 1
            index = stop
        if index:
            if index == complete and not lines[-1] and pos + window >= len(buf):
                pos = len(buf)  # the usual case: every byte was whole commands
            else:
                pos += sum(map(len, lines[:index])) + 2 * index
            if pos >= len(buf):
                self._buf = b""
                pos = 0
            self._pos = pos

    def _parse_buffer(self, commands: list[list[bytes]], limit: int) -> bool:
        """Parse _buf into ``commands`` until ``limit`` commands are there
        (returns False) or _buf holds no complete item (returns True, with
        the wake-up condition set)."""
        buf = self._buf
        pos = self._pos
        end = len(buf)
        find = buf.find
        decimals = _DECIMALS
        max_bulk = self._max_bulk_bytes
        max_inline = self._max_inline_bytes
        args = self._args
        args_left = self._args_left
        bulk_len = self._bulk_len
        partial = self._partial_bytes
        # Where this call started consuming the unfinished command.
        segment_start = pos
        count = len(commands)
        wake_on: bytes | None = None
        while True:
            if args is None:
                if count >= limit:
                    needs_data = False
                    break
                if pos >= end:
                    wake_bytes = 1
                    needs_data = True
                    break
                first = buf[pos]
                if first != _STAR:
                    new_pos = self._parse_line(buf, pos, commands)
                    if new_pos < 0:
                        wake_bytes, wake_on = self._wake_bytes, self._wake_on
                        needs_data = True
                        break
                    pos = new_pos
                    count = len(commands)
                    continue
                newline = find(b"\r\n", pos)
                if newline < 0:
                    if end - pos > max_inline:
                        raise RespProtocolError("Protocol error: too big mbulk count string")
                    wake_bytes, wake_on = max_inline + 1, b"\r\n"
                    needs_data = True
                    break
                raw = buf[pos + 1 : newline]
                n = decimals.get(raw)
                if n is None:
                    n = parse_int64(raw)
                    if n is None or n > MAX_MULTIBULK_ARGS:
                        raise RespProtocolError("Protocol error: invalid multibulk length")
                if n > UNAUTHENTICATED_MAX_ARGS and self._unauthenticated:
                    raise RespProtocolError("Protocol error: unauthenticated multibulk length")
                segment_start = pos
                partial = 0
                pos = newline + 2
                if n <= 0:
                    continue
                args = []
                args_left = n
            if bulk_len < 0:
                if pos >= end:
                    wake_bytes = 1
                    needs_data = True
                    break
                if buf[pos] != _DOLLAR:
                    raise RespProtocolError(f"Protocol error: expected '$', got '{chr(buf[pos])}'")
                newline = find(b"\r\n", pos)
                if newline < 0:
                    if end - pos > max_inline:
                        raise RespProtocolError("Protocol error: too big bulk count string")
                    wake_bytes, wake_on = max_inline + 1, b"\r\n"
                    needs_data = True
                    break
                raw = buf[pos + 1 : newline]
                n = decimals.get(raw)
                if n is None:
                    n = parse_int64(raw)
                    if n is None or n < 0:
                        raise RespProtocolError("Protocol error: invalid bulk length")
                if n > max_bulk:
                    raise RespProtocolError("Protocol error: invalid bulk length")
                if n > UNAUTHENTICATED_MAX_BULK_BYTES and self._unauthenticated:
                    raise RespProtocolError("Protocol error: unauthenticated bulk length")
                bulk_len = n
                pos = newline + 2
            stop = pos + bulk_len
            if stop + 2 > end:
                wake_bytes = bulk_len + 2
                needs_data = True
                break
            if buf[stop] != _CR or buf[stop + 1] != _LF:
                raise RespProtocolError("Protocol error: expected CRLF after bulk payload")
            args.append(buf[pos:stop])
            pos = stop + 2
            bulk_len = -1
            args_left -= 1
            if not args_left:
                commands.append(args)
                count += 1
                args = None

        if args is not None:
            partial += pos - segment_start
        else:
            partial = 0
        if pos >= end:
            # Drop the consumed buffer now rather than at the next receive.
            self._buf = b""
            pos = 0
        self._pos = pos
        self._args = args
        self._args_left = args_left
        self._bulk_len = bulk_len
        self._partial_bytes = partial
        if needs_data:
            self._wake_bytes = wake_bytes
            self._wake_on = wake_on
        return needs_data

    def _parse_line(self, buf: bytes, pos: int, commands: list[list[bytes]]) -> int:
        """Parse an inline command or a blank line at ``pos``; return the
        position after it, or -1 (wake-up condition set) if incomplete."""
        if not self._inline_allowed:
            first = buf[pos]
            if first == _LF:
                return pos + 1
            if first == _CR:
                if pos + 1 >= len(buf):
                    self._wake_bytes, self._wake_on = 2, None
                    return -1
                if buf[pos + 1] == _LF:
                    return pos + 2
            raise RespProtocolError(f"Protocol error: expected '*', got '{chr(first)}'")
        newline = buf.find(b"\n", pos)
        if newline < 0:
            if len(buf) - pos > self._max_inline_bytes:
                raise RespProtocolError("Protocol error: too big inline request")
            self._wake_bytes, self._wake_on = self._max_inline_bytes + 1, b"\n"
            return -1
        line_end = newline - 1 if newline > pos and buf[newline - 1] == _CR else newline
        args = split_args(buf[pos:line_end], nul_ends_line=True)
        if args is None:
            raise RespProtocolError("Protocol error: unbalanced quotes in request")
        if args:
            commands.append(args)
        return newline + 1
