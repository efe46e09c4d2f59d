"""How stored bytes become JSON and back, for the HTTP API (pure, no IO).

The mapping between protocols:

* ``PUT /key/{k}`` stores the *compact JSON text* of the body: the body as
  sent, minus whitespace outside strings. Nothing else is rewritten, so
  numbers keep their digits (``1.10`` stays ``1.10``, a 400-digit integer
  stays exact) and strings keep their escapes. A GET over the text protocol
  or RESP reads exactly that text: ``{"a":[1,2]}``, ``"hi"`` (with quotes),
  ``42``.
* ``GET /key/{k}`` returns a stored value that is valid JSON as that JSON
  (a value SET as ``42`` over RESP reads as the number 42 over HTTP, ``true``
  as true, ``"hi"`` with its quotes as the string hi); any other value is
  returned as a JSON string of its bytes decoded as UTF-8, an invalid
  sequence becoming U+FFFD (so ``hello`` reads as ``"hello"``).
* Keys are bytes everywhere. HTTP takes them from the percent-decoded path
  segment (``/key/a%2Fb`` is the key ``a/b``, ``/key/%FF`` the one byte
  0xFF) and shows them in JSON as UTF-8 text, U+FFFD for invalid sequences.

"Valid JSON" is RFC 8259's: UTF-8 text without a byte order mark; the
``NaN`` and ``Infinity`` Python would accept are refused. Nesting deeper
than Python's recursion limit (about 1000) is refused too.
"""

from __future__ import annotations

import json
import re

# A string literal (kept as is) or a run of JSON whitespace (dropped). Valid
# JSON has no raw control characters inside strings, so this is exact once
# the text has been validated.
_STRING_OR_SPACE = re.compile(rb'("[^"\\]*(?:\\.[^"\\]*)*")|[ \t\n\r]+')
_SPACE = re.compile(rb"[ \t\n\r]")


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _skip_number(text: str) -> None:
    # Validation only: no float or int is built (no 4300-digit int limit).
    return None


# One decoder for every call: json.loads with options builds a new one each time.
_VALIDATOR = json.JSONDecoder(parse_constant=_refuse_constant, parse_int=_skip_number, parse_float=_skip_number)


def is_json(data: bytes) -> bool:
    """Whether ``data`` is one valid JSON text (RFC 8259)."""
    try:
        # decode() rejects a byte order mark too: U+FEFF is not JSON whitespace.
        _VALIDATOR.decode(data.decode("utf-8"))
    except (ValueError, RecursionError):
        # UnicodeDecodeError and JSONDecodeError are ValueErrors.
        return False
    return True


def compact_json(data: bytes) -> bytes | None:
    """The compact JSON text of ``data``, or None if it is not valid JSON."""
    if not is_json(data):
        return None
    if _SPACE.search(data) is None:
        return data
    return _STRING_OR_SPACE.sub(rb"\1", data)


def value_json(stored: bytes) -> bytes:
    """The JSON text a stored value is returned as (see the module doc)."""
    compact = compact_json(stored)
    if compact is not None:
        return compact
    return json_text(stored.decode("utf-8", "replace"))


def key_text(key: bytes) -> str:
    return key.decode("utf-8", "replace")


# One encoder for every call: json.dumps with options builds a new one each time.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def json_text(value: object) -> bytes:
    """Compact UTF-8 JSON, as Express' ``res.json`` writes it."""
    return _ENCODER.encode(value).encode()
