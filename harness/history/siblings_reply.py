"""The values in a TKV.SIBLINGS reply, whatever its exact nesting.

TKV.SIBLINGS (cluster mode) answers the key's sibling values together with
an opaque context. The workload's values have one recognisable shape,
``c<client>:<sequence>`` (``VALUE_PATTERN``), which no context encoding
(hex, base64) can produce since neither contains ``:``. So the values are
found by walking the reply and keeping the strings of that shape: the
checkers do not depend on the reply's layout, only on values staying whole.
An absent key (nil, or an empty array) has no values.
"""

from __future__ import annotations

import re

VALUE_PATTERN = re.compile(r"c\d+:\d+")


def sibling_values(reply: object) -> list[str]:
    found: list[str] = []
    stack = [reply]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.items())))
        elif isinstance(item, (bytes, str)):
            text = item.decode("utf-8", "replace") if isinstance(item, bytes) else item
            if VALUE_PATTERN.fullmatch(text):
                found.append(text)
    return found
