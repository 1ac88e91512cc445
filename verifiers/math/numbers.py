"""Exact numbers without sympy: plain, thousands-separated, decimal, fraction,
mixed number, percentage and scientific notation.

Bounded (inputs over a few hundred characters and exponents over 400 are
refused), so it is safe to run on the request path, outside worker processes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True, slots=True)
class Num:
    """An exact rational number. `percent` when written with ``%``;
    `decimals` = digits after the point as written (None if not a decimal)."""

    value: Fraction
    percent: bool = False
    decimals: int | None = None


# Thousands separators only in well-formed groups: "0,111" and "1234,567" are
# not thousands-separated (see `decimal_comma`).
_INT = r"(?:[1-9]\d{0,2}(?:,\d{3})+|\d+)"
_PLAIN_NUMBER = re.compile(rf"^(-|\+)?(?:({_INT})(?:\.(\d*))?|\.(\d+))$")
_SPACED_THOUSANDS = re.compile(r"^(-)?\d{1,3}(?: \d{3})+(?:\.\d+)?$")
_SCI = re.compile(r"^(.+?)(?:\\times|\\cdot|\*|x)\s*10\s*\^\s*\{?\s*([+-]?\d+)\s*\}?$")
_E_NOTATION = re.compile(r"^([+-]?\d+(?:\.\d+)?)[eE]([+-]?\d+)$")
_FRAC = re.compile(r"^(-)?\\frac\{\s*(-?[\d.]+)\s*\}\{\s*(-?[\d.]+)\s*\}$")
_SLASH = re.compile(r"^(-)?\(?\s*(-?[\d.]+)\s*\)?\s*/\s*\(?\s*(-?[\d.]+)\s*\)?$")
_MIXED = re.compile(r"^(-)?(\d+)\s*\\frac\{(\d+)\}\{(\d+)\}$")
_MAX_DIGITS = 400
_MAX_EXPONENT = 400


def _fraction_of(token: str) -> tuple[Fraction, int | None] | None:
    match = _PLAIN_NUMBER.match(token)
    if not match or len(token) > _MAX_DIGITS:
        return None
    sign, integer, frac_digits, only_frac = match.groups()
    if only_frac is not None:
        integer, frac_digits = "0", only_frac
    integer = (integer or "0").replace(",", "")
    text = integer + ("." + frac_digits if frac_digits else "")
    value = Fraction(text)
    if sign == "-":
        value = -value
    decimals = len(frac_digits) if frac_digits else None
    return value, decimals


def parse_number(s: str) -> Num | None:
    """Exact value of a plain number, fraction, mixed number, percentage or
    scientific notation; None for anything else. Never calls sympy."""
    text = s.strip()
    percent = False
    if text.endswith("%"):
        percent = True
        text = text[:-1].strip()
    if not text or len(text) > _MAX_DIGITS:
        return None
    if _SPACED_THOUSANDS.match(text):
        text = text.replace(" ", "")
    text = text.replace("{,}", ",")
    if re.search(r",\s", text):
        return None  # "32, 349" is a list, not a number
    text = text.replace(" ", "")
    plain = _fraction_of(text)
    if plain is not None:
        return Num(plain[0], percent, plain[1])
    if match := (_FRAC.match(text) or _SLASH.match(text)):  # \frac{a}{b} or a/b
        sign, num, den = match.groups()
        a, b = _fraction_of(num), _fraction_of(den)
        if a and b and b[0] != 0:
            value = a[0] / b[0]
            return Num(-value if sign else value, percent)
        return None
    if match := _MIXED.match(text):
        sign, whole, num, den = match.groups()
        if int(den) == 0:
            return None
        value = int(whole) + Fraction(int(num), int(den))
        return Num(-value if sign else value, percent)
    if match := (_E_NOTATION.match(text) or _SCI.match(text)):
        mantissa, exponent = match.groups()
        base = _fraction_of(mantissa.strip())
        power = int(exponent)
        if base is None or abs(power) > _MAX_EXPONENT:
            return None
        return Num(base[0] * Fraction(10) ** power, percent)
    return None


_DECIMAL_COMMA = re.compile(r"^(-)?(\d+),(\d+)$")


def decimal_comma(s: str) -> Num | None:
    """``1,22`` / ``0,111`` / ``1000,99`` read with a decimal comma; None when
    the comma may be a thousands separator or the text is something else."""
    match = _DECIMAL_COMMA.match(s.strip().replace("{,}", ","))
    if not match or len(s) > _MAX_DIGITS:
        return None
    sign, integer, fraction = match.groups()
    if len(fraction) == 3 and integer[0] != "0":
        return None  # "1,234": thousands
    value = Fraction(f"{integer}.{fraction}")
    return Num(-value if sign else value, decimals=len(fraction))


def parse_number_pair(answer: str, reference: str) -> tuple[Num | None, Num | None]:
    """Both sides as numbers; a decimal comma is accepted on one side when
    the other side is a decimal with a point (``2,74`` vs ``2.74``)."""
    a, r = parse_number(answer), parse_number(reference)
    if a is None and r is not None and r.decimals is not None:
        a = decimal_comma(answer)
    elif r is None and a is not None and a.decimals is not None:
        r = decimal_comma(reference)
    return a, r


def candidates(value: Num) -> list[Fraction]:
    """The values a number may mean: ``28%`` is 28 or 0.28."""
    return [value.value, value.value / 100] if value.percent else [value.value]


def rounded_match(answer: Num, reference: Fraction) -> bool:
    """A decimal answer that equals the exact reference rounded to the
    answer's own number of decimals, given at least 3 significant digits."""
    if answer.decimals is None or answer.decimals < 2:
        return False
    digits = str(abs(answer.value.numerator * 10**answer.decimals // answer.value.denominator))
    if len(digits.lstrip("0")) < 3:
        return False
    half_unit = Fraction(1, 2 * 10**answer.decimals)
    return abs(answer.value - reference) <= half_unit


def rounding_only(a: Num, r: Num) -> bool:
    """A short decimal that matches the other side only after rounding
    (``0.33`` for ``1/3``): too few digits to call it equal, not clearly wrong."""
    for x, y in ((a, r), (r, a)):
        if x.decimals and x.decimals >= 1 and y.decimals is None and not y.percent:
            half_unit = Fraction(1, 2 * 10**x.decimals)
            if abs(x.value - y.value) <= half_unit:
                return True
    return False


def numbers_equal(a: Num, r: Num, tol: float) -> bool:
    """Exact, then relative tolerance, then rounding-aware equality."""
    for x in candidates(a):
        for y in candidates(r):
            if x == y:
                return True
            scale = max(abs(x), abs(y))
            if scale and abs(x - y) <= Fraction(tol) * scale:
                return True
    if r.decimals is None and not r.percent and rounded_match(a, r.value):
        return True
    return bool(a.decimals is None and not a.percent and rounded_match(r, a.value))
