"""Glob matching: Redis's stringmatchlen semantics, checked by table and
against a line-by-line port of Redis's recursive matcher; pathological
patterns finish because the algorithm is bounded (no timing assertions)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_kv.protocol.glob import GlobPattern, compile_glob, glob_match, literal_prefix


def redis_stringmatchlen(pattern: bytes, subject: bytes, nocase: bool) -> bool:
    """A direct port of Redis 7's recursive stringmatchlen_impl (util.c),
    with unsigned bytes and without the skip/nesting shortcuts, which do not
    change results for the small inputs used here. Exponential: tests only."""
    plen, slen = len(pattern), len(subject)

    def lower(byte: int) -> int:
        return byte + 32 if 0x41 <= byte <= 0x5A else byte

    def impl(p: int, s: int) -> bool:
        while p < plen and s < slen:
            c = pattern[p]
            if c == ord("*"):
                while p + 1 < plen and pattern[p + 1] == ord("*"):
                    p += 1
                if p + 1 == plen:
                    return True
                return any(impl(p + 1, start) for start in range(s, slen))
            if c == ord("?"):
                s += 1
            elif c == ord("["):
                p += 1
                negate = p < plen and pattern[p] == ord("^")
                if negate:
                    p += 1
                match = False
                while True:
                    if p < plen and pattern[p] == ord("\\") and plen - p >= 2:
                        p += 1
                        match = match or pattern[p] == subject[s]
                    elif p < plen and pattern[p] == ord("]"):
                        break
                    elif p >= plen:
                        p -= 1
                        break
                    elif plen - p >= 3 and pattern[p + 1] == ord("-"):
                        start, end, probe = pattern[p], pattern[p + 2], subject[s]
                        if start > end:
                            start, end = end, start
                        if nocase:
                            start, end, probe = lower(start), lower(end), lower(probe)
                        p += 2
                        match = match or start <= probe <= end
                    elif nocase:
                        match = match or lower(pattern[p]) == lower(subject[s])
                    else:
                        match = match or pattern[p] == subject[s]
                    p += 1
                if negate:
                    match = not match
                if not match:
                    return False
                s += 1
            else:
                if c == ord("\\") and plen - p >= 2:
                    p += 1
                    c = pattern[p]
                if (lower(c) != lower(subject[s])) if nocase else (c != subject[s]):
                    return False
                s += 1
            p += 1
            if s == slen:
                while p < plen and pattern[p] == ord("*"):
                    p += 1
                break
        return p == plen and s == slen

    return impl(0, 0)


GLOB_CASES = [
    # From the KEYS documentation.
    (b"h?llo", b"hello", True),
    (b"h?llo", b"hllo", False),
    (b"h*llo", b"hllo", True),
    (b"h*llo", b"heeeello", True),
    (b"h[ae]llo", b"hello", True),
    (b"h[ae]llo", b"hillo", False),
    (b"h[^e]llo", b"hallo", True),
    (b"h[^e]llo", b"hello", False),
    (b"h[a-b]llo", b"hbllo", True),
    (b"h[a-b]llo", b"hcllo", False),
    # Anchoring and stars.
    (b"", b"", True),
    (b"", b"a", False),
    (b"abc", b"abc", True),
    (b"abc", b"abcd", False),
    (b"*", b"anything", True),
    (b"a*", b"a", True),
    (b"a**", b"a", True),
    (b"*a", b"ba", True),
    (b"*a", b"ab", False),
    (b"a*b*c", b"a--b--c", True),
    (b"a*b*c", b"a--c--b", False),
    (b"*ab*ab*", b"abab", True),
    (b"*ab*ab*", b"aba", False),
    (b"*?", b"", False),
    (b"?*?", b"ab", True),
    (b"user:*:name", b"user:42:name", True),
    (b"user:*:name", b"user:42:age", False),
    # Escapes.
    (b"\\*", b"*", True),
    (b"\\*", b"a", False),
    (b"a\\?c", b"a?c", True),
    (b"a\\?c", b"abc", False),
    (b"\\", b"\\", True),
    (b"a\\", b"a\\", True),
    # Classes, including Redis's corner cases.
    (b"[abc]", b"b", True),
    (b"[abc]", b"d", False),
    (b"[z-a]", b"m", True),
    (b"[a-]", b"a", True),
    (b"[a-]", b"]", True),
    (b"[]", b"a", False),
    (b"[^]", b"a", True),
    (b"[\\]]", b"]", True),
    (b"[\\-]", b"-", True),
    (b"[ab", b"a", True),
    (b"hell[a-o", b"hello", True),
    (b"[", b"[", False),
    (b"[^", b"x", True),
    (b"[*]", b"*", True),
    (b"[?]", b"a", False),
    (b"x[\x80-\xff]", b"x\xc3", True),
    (b"x[\x80-\xff]", b"x\x7f", False),
    (b"\x00*\x00", b"\x00abc\x00", True),
]


@pytest.mark.parametrize(("pattern", "subject", "expected"), GLOB_CASES)
def test_glob_cases(pattern: bytes, subject: bytes, expected: bool) -> None:
    assert glob_match(pattern, subject) is expected
    assert GlobPattern(pattern).matches(subject) is expected


NOCASE_CASES = [
    (b"HELLO", b"hello", True),
    (b"h*O", b"HellO", True),
    (b"[A-Z]", b"q", True),
    (b"[a-z]", b"Q", True),
    (b"[ABC]", b"b", True),
    # An escaped class member is compared exactly, as in Redis.
    (b"[\\A]", b"a", False),
    (b"[\\A]", b"A", True),
    # Redis orders range bounds before lowercasing them: 'Z'..'a' becomes
    # 'z'..'a', which holds nothing.
    (b"[Z-a]", b"z", False),
    (b"[Z-a]", b"_", False),
    (b"\\A", b"a", True),
]


@pytest.mark.parametrize(("pattern", "subject", "expected"), NOCASE_CASES)
def test_glob_nocase(pattern: bytes, subject: bytes, expected: bool) -> None:
    assert glob_match(pattern, subject, nocase=True) is expected


def test_case_matters_by_default() -> None:
    assert not glob_match(b"HELLO", b"hello")
    assert glob_match(b"[Z-a]", b"_")


def test_star_matches_the_empty_subject() -> None:
    # Deliberate difference: Redis 7's loop never runs on an empty subject,
    # so stringmatchlen("*", "") is 0 (KEYS and SCAN special-case "*").
    assert not redis_stringmatchlen(b"*", b"", False)
    assert glob_match(b"*", b"")
    assert glob_match(b"***", b"")
    assert not glob_match(b"*a", b"")


pattern_bytes = st.lists(
    st.sampled_from([b"a", b"b", b"A", b"*", b"?", b"[", b"]", b"^", b"-", b"\\", b"z", b"_"]), max_size=10
).map(b"".join)
subject_bytes = st.lists(st.sampled_from([b"a", b"b", b"A", b"B", b"-", b"]", b"z", b"\\", b"_"]), max_size=8).map(
    b"".join
)


@settings(max_examples=200, deadline=None)
@given(pattern=pattern_bytes, subject=subject_bytes, nocase=st.booleans())
def test_agrees_with_redis_matcher(pattern: bytes, subject: bytes, nocase: bool) -> None:
    expected = redis_stringmatchlen(pattern, subject, nocase)
    if subject == b"" and pattern and pattern.strip(b"*") == b"":
        expected = True  # see test_star_matches_the_empty_subject
    assert glob_match(pattern, subject, nocase=nocase) is expected


# Pathological inputs: exponential for a naive backtracker, bounded here by
# O(len(pattern) * len(subject)) and mostly C-level searching.
PATHOLOGICAL_CASES = [
    (b"a*" * 5000 + b"b", b"a" * 20000, False),
    (b"*a" * 5000, b"a" * 20000, True),
    (b"*?" * 20000, b"a" * 20000, True),
    (b"*?" * 20000, b"a" * 19999, False),
    (b"*[ab]" * 5000 + b"c", b"ab" * 10000, False),
    (b"*a?" * 3000 + b"*b", b"ax" * 10000, False),
    (b"*" * 50000 + b"x", b"y" * 50000 + b"x", True),
]


@pytest.mark.parametrize(("pattern", "subject", "expected"), PATHOLOGICAL_CASES)
def test_pathological_patterns_complete(pattern: bytes, subject: bytes, expected: bool) -> None:
    assert glob_match(pattern, subject) is expected


def test_compiled_patterns_are_cached_when_small() -> None:
    assert compile_glob(b"user:*") is compile_glob(b"user:*")
    assert compile_glob(b"user:*", nocase=True) is not compile_glob(b"user:*")
    big = b"a" * 5000 + b"*"
    assert compile_glob(big) is not compile_glob(big)


@pytest.mark.parametrize(
    ("pattern", "prefix"),
    [(b"user:*", b"user:"), (b"abc", b"abc"), (b"*abc", b""), (b"ab?c", b"ab"), (b"a[bc]", b"a"), (b"a\\*", b"a")],
)
def test_literal_prefix(pattern: bytes, prefix: bytes) -> None:
    assert literal_prefix(pattern) == prefix


@settings(max_examples=100, deadline=None)
@given(pattern=pattern_bytes, subject=subject_bytes)
def test_matching_subjects_start_with_the_literal_prefix(pattern: bytes, subject: bytes) -> None:
    if glob_match(pattern, subject):
        assert subject.startswith(literal_prefix(pattern))
