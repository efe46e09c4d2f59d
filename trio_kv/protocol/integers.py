"""The one parser of decimal integers sent as arguments or lengths. No IO.

Rules this module keeps:

* An integer is ASCII digits, optionally after one ``-`` (when ``minus``):
  no ``+``, no spaces, no ``_``, no other Unicode digits, nothing empty.
* Unless ``leading_zeros``, the first digit is not ``0`` except in ``0``
  itself (so ``-0`` and ``01`` are refused).
* The token is at most ``max_bytes`` long (sign included), and the value
  lies in ``[minimum, maximum]`` (``maximum=None``: no upper bound).
* The defaults are Redis's ``string2ll`` (util.c): optional ``-``, no
  leading zeros, at most 20 bytes, a signed 64-bit value. ``parse_int64``
  is that rule; RESP lengths and every Redis command argument use it.
  The line protocol's expiry and the HTTP API's ttl and limit are the same
  function with other parameters, written at their call sites.

Failure is ``None``: each caller words its own error.
"""

from __future__ import annotations

from typing import Final

INT64_MAX: Final = 2**63 - 1
INT64_MIN: Final = -(2**63)
_ZERO: Final = 0x30


def parse_integer(
    token: bytes,
    *,
    minus: bool = True,
    leading_zeros: bool = False,
    max_bytes: int = 20,
    minimum: int = INT64_MIN,
    maximum: int | None = INT64_MAX,
) -> int | None:
    """The integer ``token`` spells under the module's rules, or None."""
    # The fast path: plain digits (bytes.isdigit() is ASCII only).
    if token.isdigit():
        if len(token) > max_bytes or (token[0] == _ZERO and len(token) != 1 and not leading_zeros):
            return None
    elif minus and token[:1] == b"-" and token[1:].isdigit():
        if len(token) > max_bytes or (token[1] == _ZERO and not leading_zeros):
            return None
    else:
        return None
    value = int(token)
    if value < minimum or (maximum is not None and value > maximum):
        return None
    return value


# Redis's string2ll: the defaults above.
parse_int64: Final = parse_integer
