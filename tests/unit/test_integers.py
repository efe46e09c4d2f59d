"""The one decimal-integer parser (``protocol.integers``) against frozen
copies of the four it replaced: RESP's multibulk/bulk length parser and the
commands' ``parse_int64`` (both Redis's ``string2ll``), the line protocol's
expiry amount and the HTTP API's positive whole numbers (ttl, limit). Edge
cases: signs, leading zeros, the 2**63 boundaries, spaces, empty."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_kv.commands import arguments
from trio_kv.protocol.integers import INT64_MAX, INT64_MIN, parse_int64, parse_integer

# --- frozen copies of the old parsers --------------------------------------------


def old_resp_parse_decimal(raw: bytes) -> int | None:
    digits = raw[1:] if raw[:1] == b"-" else raw
    if not digits.isdigit() or len(raw) >= 21:
        return None
    if digits[0] == 0x30 and len(raw) != 1:
        return None
    value = int(raw)
    if value < -(2**63) or value > 2**63 - 1:
        return None
    return value


_OLD_INTEGER = re.compile(rb"0|-?[1-9][0-9]*")


def old_commands_parse_int64(token: bytes) -> int | None:
    if len(token) > 20 or _OLD_INTEGER.fullmatch(token) is None:
        return None
    value = int(token)
    return value if -(2**63) <= value <= 2**63 - 1 else None


def old_text_parse_positive_int(token: bytes) -> int | None:
    if not token.isdigit() or len(token) > 19:
        return None
    value = int(token)
    return value if value > 0 else None


_OLD_HTTP_POSITIVE_INTEGER = re.compile(rb"[1-9][0-9]{0,18}")


def old_http_positive_integer(token: bytes) -> int | None:
    return int(token) if _OLD_HTTP_POSITIVE_INTEGER.fullmatch(token) is not None else None


# The rules each old call site spelled out, now as parameters of one parser.
def text_expiry_amount(token: bytes) -> int | None:
    return parse_integer(token, minus=False, leading_zeros=True, max_bytes=19, minimum=1, maximum=None)


def http_positive(token: bytes) -> int | None:
    return parse_integer(token, minus=False, max_bytes=19, minimum=1, maximum=None)


PAIRS = [
    (parse_int64, old_resp_parse_decimal),
    (parse_int64, old_commands_parse_int64),
    (arguments.parse_int64, old_commands_parse_int64),
    (text_expiry_amount, old_text_parse_positive_int),
    (http_positive, old_http_positive_integer),
]
IDS = ["resp", "commands", "arguments-reexport", "text-expiry", "http"]

EDGE_CASES = [
    b"", b"-", b"+", b"+1", b"-1", b"0", b"-0", b"+0", b"00", b"01", b"-01", b"007",
    b" 1", b"1 ", b"1\n", b"\t1", b"1_000", b"1.0", b"1e3", b"0x10", b"\xd9\xa1",  # Arabic-Indic 1
    str(2**63 - 1).encode(), str(2**63).encode(), str(-(2**63)).encode(), str(-(2**63) - 1).encode(),
    str(2**64).encode(), b"9" * 19, b"9" * 20, b"1" + b"0" * 19, b"0" * 19 + b"1", b"0" * 18 + b"1",
    b"0" * 20, b"-" + b"0" * 19 + b"1", b"--1", b"1-", b"\x00", b"1\x00",
]


@pytest.mark.parametrize(("new", "old"), PAIRS, ids=IDS)
@pytest.mark.parametrize("token", EDGE_CASES)
def test_edge_cases_as_before(new, old, token: bytes) -> None:  # type: ignore[no-untyped-def]
    assert new(token) == old(token)


@pytest.mark.parametrize(("new", "old"), PAIRS, ids=IDS)
def test_every_short_token_as_before(new, old) -> None:  # type: ignore[no-untyped-def]
    alphabet = [b"0", b"1", b"9", b"-", b"+", b" ", b"x"]
    for size in range(6):
        for parts in itertools.product(alphabet, repeat=size):
            token = b"".join(parts)
            assert new(token) == old(token), token


@settings(max_examples=500, deadline=None)
@given(
    token=st.integers(min_value=-(2**65), max_value=2**65).map(lambda n: str(n).encode())
    | st.builds(lambda zeros, n: b"0" * zeros + str(n).encode(), st.integers(0, 3), st.integers(0, 2**64))
    | st.binary(max_size=22)
)
def test_random_tokens_as_before(token: bytes) -> None:
    for new, old in PAIRS:
        assert new(token) == old(token)


def test_string2ll_boundaries() -> None:
    assert parse_int64(b"9223372036854775807") == INT64_MAX == 2**63 - 1
    assert parse_int64(b"-9223372036854775808") == INT64_MIN == -(2**63)
    assert parse_int64(b"9223372036854775808") is None
    assert parse_int64(b"-9223372036854775809") is None
    assert parse_int64(b"+5") is None
    assert parse_int64(b"05") is None
    assert parse_int64(b" 5") is None
    assert parse_int64(b"") is None
