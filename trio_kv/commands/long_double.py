"""x87 80-bit long double arithmetic for INCRBYFLOAT, exactly as Redis on
x86-64 computes it: values are parsed like glibc's ``strtold`` (decimal,
hexadecimal, ``inf``; no NaN, no spaces), rounded to a 64-bit significand,
and printed as ``%.17Lf`` with trailing zeros removed, so ``1e20`` +
``10.6`` is ``100000000000000000008``. Exact rational arithmetic
(``Fraction``) stands in for the FPU. No IO.
"""

from __future__ import annotations

import re
from fractions import Fraction

# x87 80-bit long double, as glibc's strtold and printf see it on x86-64.
LONG_DOUBLE_SIGNIFICAND_BITS = 64
# The smallest subnormal is 2**-16445; values reach 2**16384 (infinity).
_LD_QUANTUM_MIN_EXP = -16445
_LD_OVERFLOW = Fraction(2**16384)
# Redis' MAX_LONG_DOUBLE_CHARS: longer strings are not floats.
MAX_FLOAT_BYTES = 5 * 1024 - 1
_DECIMAL = re.compile(rb"([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?")
_HEXADECIMAL = re.compile(rb"([+-]?)0[xX]([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?(?:[pP]([+-]?[0-9]+))?")
_INFINITY = re.compile(rb"[+-]?(?:inf|infinity)", re.IGNORECASE)
# Beyond these powers the value certainly overflows or rounds to zero, so
# huge exponents in the input never become huge Python integers.
_DECIMAL_EXP_LIMITS = (-4960, 4940)
_BINARY_EXP_LIMITS = (-16460, 16390)


# Python refuses int <-> str conversions beyond 4300 digits (a DoS guard);
# long doubles need up to 4933, so long numbers go through in pieces.
_DIGITS_PER_PIECE = 4000


def _digits_to_int(digits: bytes, base: int) -> int:
    if len(digits) <= _DIGITS_PER_PIECE:
        return int(digits, base)
    head, tail = digits[:-_DIGITS_PER_PIECE], digits[-_DIGITS_PER_PIECE:]
    return _digits_to_int(head, base) * base**_DIGITS_PER_PIECE + int(tail, base)


def _int_to_digits(value: int) -> bytes:
    """Decimal digits of ``value`` >= 0."""
    if value < 10**_DIGITS_PER_PIECE:
        return b"%d" % value
    head, tail = divmod(value, 10**_DIGITS_PER_PIECE)
    return _int_to_digits(head) + b"%0*d" % (_DIGITS_PER_PIECE, tail)


def round_long_double(value: Fraction) -> Fraction | None:
    """``value`` rounded to the nearest long double (ties to even), or None if
    that is infinite."""
    if value == 0:
        return value
    magnitude = abs(value)
    numerator, denominator = magnitude.numerator, magnitude.denominator
    exponent = numerator.bit_length() - denominator.bit_length()
    if (numerator << max(0, -exponent)) < (denominator << max(0, exponent)):
        exponent -= 1  # now 2**exponent <= magnitude < 2**(exponent + 1)
    quantum = max(exponent - (LONG_DOUBLE_SIGNIFICAND_BITS - 1), _LD_QUANTUM_MIN_EXP)
    if quantum < 0:
        numerator <<= -quantum
    else:
        denominator <<= quantum
    units, remainder = divmod(numerator, denominator)
    if 2 * remainder > denominator or (2 * remainder == denominator and units & 1):
        units += 1
    rounded = Fraction(units) * Fraction(2) ** quantum
    if rounded >= _LD_OVERFLOW:
        return None
    return rounded if value > 0 else -rounded


def parse_long_double(token: bytes) -> Fraction | float | None:
    """Redis' string2ld: the long double ``token`` denotes (an infinite float
    for ``inf``), or None if it is not a valid float, including values that
    overflow or underflow to zero."""
    if not token or len(token) > MAX_FLOAT_BYTES:
        return None
    if _INFINITY.fullmatch(token):
        return float("-inf") if token.startswith(b"-") else float("inf")
    match = _DECIMAL.fullmatch(token)
    if match is not None:
        base, digit_bits, exp_limits = 10, 1, _DECIMAL_EXP_LIMITS
    else:
        match = _HEXADECIMAL.fullmatch(token)
        if match is None:
            return None
        base, digit_bits, exp_limits = 2, 4, _BINARY_EXP_LIMITS
    sign, whole, fraction, exponent_text = match.groups()
    fraction = fraction or b""
    digits = (whole + fraction).lstrip(b"0")
    if not whole and not fraction:
        return None
    if not digits:
        return Fraction(0)
    exponent = int(exponent_text or b"0") - len(fraction) * digit_bits
    # Position of the leading digit, in the exponent's base (10, or 2 for hex).
    top = exponent + (len(digits) if base == 10 else len(digits) * 4)
    if top > exp_limits[1] or top < exp_limits[0]:
        return None
    mantissa = _digits_to_int(digits, 16 if base == 2 else 10)
    value = Fraction(mantissa) * Fraction(base) ** exponent
    rounded = round_long_double(value)
    if rounded is None or rounded == 0:
        return None
    return -rounded if sign == b"-" else rounded


def format_long_double(value: Fraction) -> bytes:
    """printf("%.17Lf") of an exact long double, trailing zeros removed."""
    scaled = value * 10**17
    units = round(scaled)  # Fraction rounds ties to even, as glibc does
    negative = units < 0 or (units == 0 and value < 0)
    whole, fraction = divmod(abs(units), 10**17)
    text = _int_to_digits(whole) + b".%017d" % fraction
    text = text.rstrip(b"0").rstrip(b".")
    if negative and text != b"0":
        text = b"-" + text
    return text
