"""Splitting a typed command line into arguments: Redis's ``sdssplitargs``,
the one tokenizer of the line protocol and of RESP inline commands. No IO.

Rules this module keeps (Redis's, quirks included):

* Tokens are separated by whitespace. ``"..."`` decodes ``\\"``, ``\\\\``,
  ``\\n``, ``\\r``, ``\\t``, ``\\b``, ``\\a`` and ``\\xHH``, and any other escaped
  byte stands for itself (``\\q`` is ``q``, ``\\x4`` is ``x4``); ``'...'`` is
  literal except for ``\\'``. A quoted part may follow bare bytes
  (``ab"c d"`` is ``ab c d``) and ends the token, so it must be followed by
  whitespace or the end of the line; otherwise, or when a quote never
  closes, the quotes are unbalanced and the result is ``None``.
* Whitespace between tokens and after a closing quote is C's ``isspace``
  (space, ``\\t``, ``\\n``, ``\\v``, ``\\f``, ``\\r``) while a bare token ends
  only at space, ``\\t``, ``\\n``, ``\\r`` or a quote, so ``a\\vb`` is one token.
* The one parameter, ``nul_ends_line``, is the one place the two protocols
  differ. Redis reads an inline command as a C string, so for RESP inline a
  NUL ends the line (``nul_ends_line=True``); the line protocol keeps NUL as
  an ordinary byte (``False``). tests/property/test_split_args.py compares
  both against the two tokenizers this one replaced.
* A line with none of ``"``, ``'``, ``\\v``, ``\\f`` (nor NUL, when it ends the
  line) splits exactly as ``bytes.split()`` does (``is_plain``), which is the
  fast path: one C call.
"""

from __future__ import annotations

import re
from typing import Final

# C's isspace() in the "C" locale: skipped between tokens and accepted after
# a closing quote.
_BLANK_BYTES: Final = b" \t\n\r\x0b\x0c"
_QUOTE_BYTES: Final = b"\"'"
_BLANKS = re.compile(rb"[ \t\n\r\x0b\x0c]*")
# One token: bare bytes, then optionally one quoted part that ends the token.
# Possessive quantifiers keep a quoted part from "closing" on an escaped quote
# by backtracking (``'a\'`` is unterminated, as in Redis).
_TOKEN = re.compile(
    rb"""
    ([^ \t\n\r"']*+)
    (?:
        "([^"\\]*+(?:\\.[^"\\]*+)*+)"
      | '([^'\\]*+(?:\\'?+[^'\\]*+)*+)'
    )?
    """,
    re.VERBOSE | re.DOTALL,
)
_DOUBLE_QUOTED_ESCAPE = re.compile(rb"\\(?:x([0-9a-fA-F]{2})|(.))", re.DOTALL)
_NAMED_UNESCAPES: Final = {
    b"n": b"\n",
    b"r": b"\r",
    b"t": b"\t",
    b"b": b"\b",
    b"a": b"\a",
}


def is_plain(data: bytes, *, nul_ends_line: bool) -> bool:
    """Whether ``bytes.split()`` splits every line of ``data`` exactly as
    ``split_args`` would (no quotes, ``\\v``, ``\\f``, or NUL that matters)."""
    return not (
        b'"' in data
        or b"'" in data
        or b"\x0b" in data
        or b"\x0c" in data
        or (nul_ends_line and b"\x00" in data)
    )


def _unescape_match(match: re.Match[bytes]) -> bytes:
    hex_digits, escaped = match.groups()
    if hex_digits is not None:
        return bytes((int(hex_digits, 16),))
    return _NAMED_UNESCAPES.get(escaped, escaped)


def _unescape_double_quoted(body: bytes) -> bytes:
    if b"\\" not in body:
        return body
    return _DOUBLE_QUOTED_ESCAPE.sub(_unescape_match, body)


def _skip_blanks(line: bytes, pos: int) -> int:
    match = _BLANKS.match(line, pos)
    assert match is not None  # `*` matches the empty string
    return match.end()


def split_args(line: bytes, *, nul_ends_line: bool) -> list[bytes] | None:
    """The tokens of one command line (without its terminator), or None when
    its quotes are unbalanced. Rules are in the module docstring."""
    if nul_ends_line:
        nul = line.find(b"\x00")
        if nul >= 0:
            line = line[:nul]
    if is_plain(line, nul_ends_line=False):
        return line.split()
    tokens: list[bytes] = []
    end = len(line)
    pos = _skip_blanks(line, 0)
    while pos < end:
        match = _TOKEN.match(line, pos)
        assert match is not None  # every group is optional
        bare, double_quoted, single_quoted = match.groups()
        pos = match.end()
        if double_quoted is not None:
            token = bare + _unescape_double_quoted(double_quoted)
        elif single_quoted is not None:
            token = bare + single_quoted.replace(b"\\'", b"'")
        elif pos < end and line[pos] in _QUOTE_BYTES:
            return None  # the bare part stopped at a quote that never closes
        else:
            token = bare
        if pos < end and line[pos] not in _BLANK_BYTES:
            return None  # only reachable after a closing quote: `"a"b`
        tokens.append(token)
        pos = _skip_blanks(line, pos)
    return tokens
