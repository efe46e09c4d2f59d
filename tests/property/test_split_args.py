"""The one sdssplitargs tokenizer (``protocol.split_args``) against frozen
copies of the two tokenizers it replaced: the line protocol's
(``protocol.text.tokenize`` before issue 9) and RESP inline's
(``protocol.resp_inline.split_inline_args``). They differed in exactly one
rule, found by comparing them on every line of up to five bytes from the
alphabet below: the RESP inline splitter reads a C string, so a NUL ends the
line; the line protocol keeps NUL as an ordinary byte. Both call sites must
keep their old behaviour byte for byte, odd quoting included."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_kv.protocol.resp import RespParser, RespProtocolError
from trio_kv.protocol.split_args import is_plain, split_args
from trio_kv.protocol.text import TextProtocolError, tokenize

# --- frozen copy 1: protocol/text.py's tokenizer before issue 9 ----------------

_OLD_BLANK_BYTES = b" \t\n\r\x0b\x0c"
_OLD_QUOTE_BYTES = b"\"'"
_OLD_BLANKS = re.compile(rb"[ \t\n\r\x0b\x0c]*")
_OLD_TOKEN = re.compile(
    rb"""
    ([^ \t\n\r"']*+)
    (?:
        "([^"\\]*+(?:\\.[^"\\]*+)*+)"
      | '([^'\\]*+(?:\\'?+[^'\\]*+)*+)'
    )?
    """,
    re.VERBOSE | re.DOTALL,
)
_OLD_DOUBLE_QUOTED_ESCAPE = re.compile(rb"\\(?:x([0-9a-fA-F]{2})|(.))", re.DOTALL)
_OLD_NAMED = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"a": b"\a"}


def _old_unescape(match: re.Match[bytes]) -> bytes:
    hex_digits, escaped = match.groups()
    if hex_digits is not None:
        return bytes((int(hex_digits, 16),))
    return _OLD_NAMED.get(escaped, escaped)


def old_text_tokenize(line: bytes) -> list[bytes] | None:
    """None where the old code raised "unbalanced quotes"."""
    if not (b'"' in line or b"'" in line or b"\x0b" in line or b"\x0c" in line):
        return line.split()
    tokens: list[bytes] = []
    end = len(line)
    pos = _OLD_BLANKS.match(line, 0).end()  # type: ignore[union-attr]
    while pos < end:
        match = _OLD_TOKEN.match(line, pos)
        assert match is not None
        bare, double_quoted, single_quoted = match.groups()
        pos = match.end()
        if double_quoted is not None:
            body = double_quoted
            token = bare + (_OLD_DOUBLE_QUOTED_ESCAPE.sub(_old_unescape, body) if b"\\" in body else body)
        elif single_quoted is not None:
            token = bare + single_quoted.replace(b"\\'", b"'")
        elif pos < end and line[pos] in _OLD_QUOTE_BYTES:
            return None
        else:
            token = bare
        if pos < end and line[pos] not in _OLD_BLANK_BYTES:
            return None
        tokens.append(token)
        pos = _OLD_BLANKS.match(line, pos).end()  # type: ignore[union-attr]
    return tokens


# --- frozen copy 2: protocol/resp_inline.py before issue 9 ----------------------

_C_SPACES = frozenset(b" \t\n\v\f\r")
_UNQUOTED_ENDS = frozenset(b" \n\r\t")
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
_ESCAPES = {ord("n"): ord("\n"), ord("r"): ord("\r"), ord("t"): ord("\t"), ord("b"): ord("\b"), ord("a"): ord("\a")}
_DQUOTE, _SQUOTE, _BACKSLASH = ord('"'), ord("'"), ord("\\")


def old_split_inline_args(line: bytes) -> list[bytes] | None:  # noqa: C901 (a frozen copy)
    nul = line.find(b"\0")
    if nul >= 0:
        line = line[:nul]
    if not any(special in line for special in (b'"', b"'", b"\v", b"\f")):
        return line.split()
    size = len(line)
    args: list[bytes] = []
    i = 0
    while True:
        while i < size and line[i] in _C_SPACES:
            i += 1
        if i >= size:
            return args
        current = bytearray()
        in_double = in_single = False
        while True:
            c = line[i] if i < size else 0
            after = line[i + 1] if i + 1 < size else 0
            if in_double:
                if (c == _BACKSLASH and after == ord("x") and i + 3 < size
                        and line[i + 2] in _HEX_DIGITS and line[i + 3] in _HEX_DIGITS):
                    current.append(int(line[i + 2 : i + 4], 16))
                    i += 3
                elif c == _BACKSLASH and after:
                    i += 1
                    current.append(_ESCAPES.get(after, after))
                elif c == _DQUOTE:
                    if after and after not in _C_SPACES:
                        return None
                    break
                elif not c:
                    return None
                else:
                    current.append(c)
            elif in_single:
                if c == _BACKSLASH and after == _SQUOTE:
                    i += 1
                    current.append(_SQUOTE)
                elif c == _SQUOTE:
                    if after and after not in _C_SPACES:
                        return None
                    break
                elif not c:
                    return None
                else:
                    current.append(c)
            elif not c or c in _UNQUOTED_ENDS:
                break
            elif c == _DQUOTE:
                in_double = True
            elif c == _SQUOTE:
                in_single = True
            else:
                current.append(c)
            i += 1
        i += 1
        args.append(bytes(current))


# --- the comparisons -------------------------------------------------------------

# Every byte class the rules treat differently.
_ALPHABET = [b" ", b"\t", b"\n", b"\r", b"\x0b", b"\x0c", b'"', b"'", b"\\", b"x", b"4", b"F", b"g",
             b"n", b"\x00", b"\xff"]
_NOISE = st.lists(st.sampled_from([*_ALPHABET, b"\\x", b"\\x4", b'\\"', b"\\'"]), max_size=40).map(b"".join)


def _text_tokenize_or_none(line: bytes) -> list[bytes] | None:
    try:
        return tokenize(line)
    except TextProtocolError as error:
        assert (error.reason, error.close) == ("unbalanced quotes", True)
        return None


def _resp_inline_or_none(line: bytes) -> list[bytes] | None:
    """What the RESP parser makes of ``line`` sent as an inline command."""
    parser = RespParser(inline_allowed=True)
    parser.receive_data(line + b"\r\n")
    try:
        commands = parser.next_commands(10)
    except RespProtocolError as error:
        assert error.message == "Protocol error: unbalanced quotes in request"
        return None
    assert len(commands) <= 1
    return commands[0] if commands else []


def _check(line: bytes) -> None:
    text_expected = old_text_tokenize(line)
    inline_expected = old_split_inline_args(line)
    assert split_args(line, nul_ends_line=False) == text_expected
    assert split_args(line, nul_ends_line=True) == inline_expected
    assert _text_tokenize_or_none(line) == text_expected
    if b"\n" not in line and not line.endswith(b"\r") and not line.startswith(b"*"):
        # The parser ends the line at LF (and drops a CR before it); a
        # leading '*' starts a multibulk command instead.
        assert _resp_inline_or_none(line) == inline_expected
    if is_plain(line, nul_ends_line=False):
        assert text_expected == line.split()
    if is_plain(line, nul_ends_line=True):
        assert inline_expected == line.split()


def test_every_short_line_is_split_as_before() -> None:
    """Exhaustive over the alphabet up to four bytes (83,521 lines)."""
    for size in range(5):
        for parts in itertools.product(_ALPHABET, repeat=size):
            line = b"".join(parts)
            assert split_args(line, nul_ends_line=False) == old_text_tokenize(line), line
            assert split_args(line, nul_ends_line=True) == old_split_inline_args(line), line


@settings(max_examples=1500, deadline=None)
@given(line=_NOISE | st.binary(max_size=40))
def test_both_call_sites_split_as_before(line: bytes) -> None:
    _check(line)


@pytest.mark.parametrize(
    "line",
    [
        b'"a\x00b"', b"a\x00b c", b"\x00", b'"a"\x00', b"'\x00'", b'"\\x4\x00"',
        b"'a\\'", b'"a\\"', b'"a"b', b"a'b'", b"a'b'c", b'""', b"''", b'"\\xzz"', b'"\\x4"',
        b'"\\x41"', b'"\\q\\n\\r\\t\\b\\a\\\\"', b"'\\n'", b'"a"\x0bb', b"\x0ba\x0cb", b"a\x0bb",
        b'"' + b"\\" , b"'", b'"', b"  ", b"",
    ],
)
def test_odd_quoting_cases(line: bytes) -> None:
    _check(line)


def test_the_one_difference_is_nul() -> None:
    assert split_args(b"a\x00b c", nul_ends_line=False) == [b"a\x00b", b"c"]
    assert split_args(b"a\x00b c", nul_ends_line=True) == [b"a"]
    # An open quote that a NUL cuts short is unbalanced only for RESP inline.
    assert split_args(b'"a\x00"', nul_ends_line=False) == [b"a\x00"]
    assert split_args(b'"a\x00"', nul_ends_line=True) is None
