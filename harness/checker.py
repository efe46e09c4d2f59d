"""Counting assertions for the harness: each call is one check; the first
failed check ends its category with a message that says what was expected."""

from __future__ import annotations


class CheckFailed(Exception):
    pass


class Checker:
    def __init__(self) -> None:
        self.count = 0
        # Measured numbers a category reports on its PASS line.
        self.notes: list[str] = []

    def equal(self, what: str, actual: object, expected: object) -> None:
        self.count += 1
        if actual != expected:
            raise CheckFailed(f"{what}: expected {expected!r}, got {_short(actual)}")

    def equal_lines(self, what: str, actual: list[str], expected: list[str]) -> None:
        """Like ``equal`` for long replies: the message names the first difference."""
        self.count += 1
        if actual == expected:
            return
        for index, (got, wanted) in enumerate(zip(actual, expected)):
            if got != wanted:
                raise CheckFailed(f"{what}: line {index}: expected {wanted!r}, got {_short(got)}")
        raise CheckFailed(f"{what}: expected {len(expected)} lines, got {len(actual)}")

    def true(self, what: str, condition: bool, detail: object = "") -> None:
        self.count += 1
        if not condition:
            raise CheckFailed(f"{what}" + (f" ({_short(detail)})" if detail != "" else ""))


def _short(value: object, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"
