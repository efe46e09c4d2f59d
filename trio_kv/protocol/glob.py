"""Glob patterns with Redis's stringmatchlen semantics (KEYS, SCAN MATCH, ...).

Syntax: ``*`` any run of bytes, ``?`` any one byte, ``[abc]`` / ``[^abc]`` /
``[a-z]`` a byte class, ``\\x`` the byte x literally. Redis's corner cases are
kept: a class with no closing ``]`` runs to the end of the pattern, a range may
be written backwards (``[z-a]``), ``\\`` inside a class escapes one byte and
that byte is compared case-sensitively even with ``nocase``, and a lone
trailing ``\\`` is a literal backslash.

Rules this module keeps:

1. Matching time is bounded by the algorithm, never by backtracking luck. Every
   token but ``*`` matches exactly one byte, so a pattern is a list of
   fixed-width segments separated by stars: the first is anchored at the
   start, the last at the end, and each middle one is taken at its leftmost
   occurrence (a later occurrence can never help the rest). That is at most
   O(len(pattern) * len(subject)), and one C-level ``find`` for a literal
   segment. Regular expressions are only used for single segments, which hold
   no quantifier, so they cannot blow up either.
2. Deliberate differences from Redis 7: bytes are unsigned in ranges (Redis
   compares signed chars on x86), ``*`` matches the empty subject (Redis's
   loop never runs for it; its KEYS/SCAN special-case ``*`` anyway), and there
   is no 1000-star nesting limit (it guards Redis's recursion; we do not
   recurse).
"""

from __future__ import annotations

import functools
import re

# Patterns up to this size are cached once compiled; longer ones are rare
# and would make the cache's memory unbounded.
_CACHE_MAX_PATTERN_BYTES = 4096
_CACHE_SIZE = 256

_STAR = ord("*")
_QUESTION = ord("?")
_OPEN = ord("[")
_CLOSE = ord("]")
_CARET = ord("^")
_DASH = ord("-")
_BACKSLASH = ord("\\")
_SPECIAL = b"*?[\\"
_ALL_BYTES = bytes(range(256))


def _lower(byte: int) -> int:
    """C tolower() in the C locale: ASCII letters only."""
    return byte + 32 if 0x41 <= byte <= 0x5A else byte


# For each byte, the bytes equal to it ignoring ASCII case.
_CASE_FOLDED = [bytes(c for c in range(256) if _lower(c) == _lower(b)) for b in range(256)]


def _literal_class(byte: int, nocase: bool) -> bytes:
    return _CASE_FOLDED[byte] if nocase else bytes((byte,))


class _Token:
    """One pattern position: the set of subject bytes it accepts."""

    __slots__ = ("accepted", "literal")

    def __init__(self, accepted: bytes, literal: int | None) -> None:
        # Sorted byte values this position accepts.
        self.accepted = accepted
        # The pattern byte when the token is a plain (maybe case-folded)
        # literal: lets all-literal segments use bytes.find.
        self.literal = literal


def _parse_class(pattern: bytes, i: int, nocase: bool) -> tuple[_Token, int]:
    """Parse the class whose '[' is at pattern[i - 1]; return the token and
    the index after it. Mirrors stringmatchlen's pointer moves exactly."""
    size = len(pattern)
    negate = i < size and pattern[i] == _CARET
    if negate:
        i += 1
    escaped: set[int] = set()
    members: set[int] = set()
    ranges: list[tuple[int, int]] = []
    while True:
        if i < size and pattern[i] == _BACKSLASH and size - i >= 2:
            i += 1
            escaped.add(pattern[i])
        elif i < size and pattern[i] == _CLOSE:
            break
        elif i >= size:
            # Unterminated: the class ends with the pattern.
            i -= 1
            break
        elif size - i >= 3 and pattern[i + 1] == _DASH:
            ranges.append((pattern[i], pattern[i + 2]))
            i += 2
        else:
            members.add(pattern[i])
        i += 1

    accepted = set(escaped)
    for start, end in ranges:
        if start > end:
            start, end = end, start
        if nocase:
            # Redis lowercases the bounds after ordering them, then compares
            # the lowercased subject byte.
            low, high = _lower(start), _lower(end)
            accepted.update(c for c in range(256) if low <= _lower(c) <= high)
        else:
            accepted.update(range(start, end + 1))
    for member in members:
        accepted.update(_literal_class(member, nocase))
    if negate:
        accepted = set(range(256)) - accepted
    accepted_bytes = bytes(sorted(accepted))
    return _Token(accepted_bytes, None), i + 1


def _tokenize(pattern: bytes, nocase: bool) -> list[_Token | None]:
    """Tokens in order, with None for each run of stars."""
    tokens: list[_Token | None] = []
    size = len(pattern)
    i = 0
    while i < size:
        byte = pattern[i]
        if byte == _STAR:
            if not tokens or tokens[-1] is not None:
                tokens.append(None)
            i += 1
        elif byte == _QUESTION:
            tokens.append(_Token(_ALL_BYTES, None))
            i += 1
        elif byte == _OPEN:
            token, i = _parse_class(pattern, i + 1, nocase)
            tokens.append(token)
        else:
            if byte == _BACKSLASH and i + 1 < size:
                i += 1
                byte = pattern[i]
            tokens.append(_Token(_literal_class(byte, nocase), byte))
            i += 1
    return tokens


class _Segment:
    """A run of tokens between stars, matched as one fixed-width unit."""

    __slots__ = ("width", "literal", "regex")

    def __init__(self, tokens: list[_Token], nocase: bool, regexes: dict[bytes, re.Pattern[bytes]]) -> None:
        self.width = len(tokens)
        # Set when every token is a literal: the bytes to find (lowercased
        # when nocase; then they are searched in the lowercased subject).
        self.literal: bytes | None = None
        # Set when some token is a class; None also for an all-'?' segment,
        # which accepts any `width` bytes.
        self.regex: re.Pattern[bytes] | None = None
        literals = [token.literal for token in tokens]
        if all(literal is not None for literal in literals):
            raw = bytes(literals)  # type: ignore[arg-type]
            self.literal = raw.lower() if nocase else raw
        elif any(len(token.accepted) != 256 for token in tokens):
            source = b"(?s)" + b"".join(_regex_for(token) for token in tokens)
            regex = regexes.get(source)
            if regex is None:
                regex = regexes[source] = re.compile(source)
            self.regex = regex

    def match_at(self, subject: bytes, folded: bytes, start: int) -> bool:
        """Whether the segment matches subject[start : start + width]."""
        if self.literal is not None:
            return folded.startswith(self.literal, start)
        if self.regex is not None:
            return self.regex.match(subject, start) is not None
        return True

    def find(self, subject: bytes, folded: bytes, start: int, stop: int) -> int:
        """The leftmost match start within subject[start:stop], or -1."""
        if self.literal is not None:
            return folded.find(self.literal, start, stop)
        if self.regex is not None:
            found = self.regex.search(subject, start, stop)
            return -1 if found is None else found.start()
        return start if start + self.width <= stop else -1


def _regex_for(token: _Token) -> bytes:
    accepted = token.accepted
    if len(accepted) == 256:
        return b"."
    if len(accepted) == 1:
        return re.escape(accepted)
    if not accepted:
        # An empty class accepts nothing.
        return b"(?!)"
    return b"[" + b"".join(re.escape(bytes((byte,))) for byte in accepted) + b"]"


class GlobPattern:
    """A compiled glob pattern; ``matches`` is cheap to call many times."""

    __slots__ = ("_nocase", "_has_star", "_head", "_middle", "_tail", "_min_width")

    def __init__(self, pattern: bytes, *, nocase: bool = False) -> None:
        self._nocase = nocase
        regexes: dict[bytes, re.Pattern[bytes]] = {}
        runs: list[list[_Token]] = [[]]
        for token in _tokenize(pattern, nocase):
            if token is None:
                runs.append([])
            else:
                runs[-1].append(token)
        segments = [_Segment(run, nocase, regexes) for run in runs]
        # Without a star the single segment must cover the whole subject.
        self._has_star = len(segments) > 1
        self._head = segments[0]
        self._tail = segments[-1]
        self._middle = segments[1:-1]
        self._min_width = sum(segment.width for segment in segments)

    def matches(self, subject: bytes) -> bool:
        size = len(subject)
        if size < self._min_width:
            return False
        folded = subject.lower() if self._nocase else subject
        head = self._head
        if not self._has_star:
            return size == head.width and head.match_at(subject, folded, 0)
        if not head.match_at(subject, folded, 0):
            return False
        tail = self._tail
        tail_start = size - tail.width
        if not tail.match_at(subject, folded, tail_start):
            return False
        position = head.width
        for segment in self._middle:
            found = segment.find(subject, folded, position, tail_start)
            if found < 0:
                return False
            position = found + segment.width
        return True


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _compile_cached(pattern: bytes, nocase: bool) -> GlobPattern:
    return GlobPattern(pattern, nocase=nocase)


def compile_glob(pattern: bytes, *, nocase: bool = False) -> GlobPattern:
    """A compiled pattern, cached when small."""
    if len(pattern) <= _CACHE_MAX_PATTERN_BYTES:
        return _compile_cached(pattern, nocase)
    return GlobPattern(pattern, nocase=nocase)


def glob_match(pattern: bytes, subject: bytes, *, nocase: bool = False) -> bool:
    """Whether ``subject`` matches ``pattern`` (Redis's stringmatchlen)."""
    return compile_glob(pattern, nocase=nocase).matches(subject)


def literal_prefix(pattern: bytes) -> bytes:
    """The bytes before the first special character: every subject matching
    ``pattern`` case-sensitively starts with them."""
    end = len(pattern)
    for special in _SPECIAL:
        found = pattern.find(bytes((special,)))
        if 0 <= found < end:
            end = found
    return pattern[:end]
