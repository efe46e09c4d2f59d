"""Splitting a RESP inline command line (``PING``, ``SET k "a b"`` typed by
hand) into arguments exactly as Redis' ``sdssplitargs`` does, quirks
included (see ``split_inline_args``). No IO."""

from __future__ import annotations

# C isspace(): skipped between arguments and allowed after a closing quote.
_C_SPACES = frozenset(b" \t\n\v\f\r")
# Only these end an unquoted argument (so "a\vb" is one argument).
_UNQUOTED_ENDS = frozenset(b" \n\r\t")
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
_ESCAPES = {ord("n"): ord("\n"), ord("r"): ord("\r"), ord("t"): ord("\t"),
            ord("b"): ord("\b"), ord("a"): ord("\a")}
_DQUOTE = ord('"')
_SQUOTE = ord("'")
_BACKSLASH = ord("\\")


def split_inline_args(line: bytes) -> list[bytes] | None:
    """Split an inline command line like Redis's sdssplitargs; None when the
    quotes are unbalanced (or a closing quote is not followed by a space)."""
    # sdssplitargs reads a C string: a NUL ends the line.
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
            # 0 stands for C's terminating NUL past the end.
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
        # Step over the closing quote or the separator.
        i += 1
        args.append(bytes(current))
