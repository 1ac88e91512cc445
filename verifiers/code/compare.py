"""Compare program output and return values with expected ones (outside the sandbox)."""

from __future__ import annotations

import math
import re
from typing import Any

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")
DEFAULT_TOLERANCE = 1e-6
_MAX_SET_MATCH = 2000


def _normalise(text: str) -> list[str]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.split()


def _floats_close(a: float, b: float, tol: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= tol * max(1.0, abs(b))


def tokens_equal(expected: str, got: str, tol: float, case_sensitive: bool = True) -> bool:
    """Two whitespace-free tokens match: exactly, or as decimals within `tol`.

    Integers must match exactly (as integers); tolerance applies only when a
    token has a fractional part or exponent.
    """
    if expected == got:
        return True
    if not case_sensitive and expected.lower() == got.lower():
        return True
    if not (_NUMBER.fullmatch(expected) and _NUMBER.fullmatch(got)):
        return False
    if _INTEGER.fullmatch(expected) and _INTEGER.fullmatch(got):
        return int(expected) == int(got)
    try:
        return _floats_close(float(expected), float(got), tol)
    except (OverflowError, ValueError):
        return False


def stdout_matches(
    expected: str, got: str, tol: float = DEFAULT_TOLERANCE, case_sensitive: bool = True
) -> bool:
    """Program output `got` matches `expected`, token by token, in order.

    Line endings and all whitespace runs are normalised (trailing spaces and
    blank lines never matter); numbers with a fractional part compare within
    a relative/absolute tolerance `tol`. Order always matters.
    """
    exp, out = _normalise(expected), _normalise(got)
    if len(exp) != len(out):
        return False
    return all(tokens_equal(e, o, tol, case_sensitive) for e, o in zip(exp, out, strict=True))


def _key(k: Any) -> Any:
    """Dict keys as JSON would write them, so ``{1: x}`` equals ``{"1": x}``."""
    if k is True:
        return "true"
    if k is False:
        return "false"
    if k is None:
        return "null"
    if isinstance(k, (int, float)):
        return repr(k) if isinstance(k, float) else str(k)
    return k


def values_equal(expected: Any, got: Any, tol: float = DEFAULT_TOLERANCE) -> bool:
    """Structural equality of plain data, as if both sides went through JSON.

    Lists and tuples are interchangeable; a set matches a list or set with
    the same elements in any order; ints and floats compare within `tol`
    (two ints exactly); bools only equal bools. Never calls user code: both
    sides must already be built-in types (see `guest.codec`).
    """
    if isinstance(expected, bool) or isinstance(got, bool) or expected is None or got is None:
        return type(expected) is type(got) and expected == got
    if isinstance(expected, (int, float)) and isinstance(got, (int, float)):
        if isinstance(expected, int) and isinstance(got, int):
            return expected == got
        return _floats_close(float(expected), float(got), tol)
    if isinstance(expected, str) or isinstance(got, str):
        return type(expected) is str and type(got) is str and expected == got
    if isinstance(expected, (set, frozenset)) or isinstance(got, (set, frozenset)):
        if not isinstance(expected, (set, frozenset, list, tuple)):
            return False
        if not isinstance(got, (set, frozenset, list, tuple)):
            return False
        return _unordered_equal(list(expected), list(got), tol)
    if isinstance(expected, (list, tuple)) and isinstance(got, (list, tuple)):
        return len(expected) == len(got) and all(
            values_equal(e, g, tol) for e, g in zip(expected, got, strict=True)
        )
    if isinstance(expected, dict) and isinstance(got, dict):
        exp = {_key(k): v for k, v in expected.items()}
        out = {_key(k): v for k, v in got.items()}
        if exp.keys() != out.keys():
            return False
        return all(values_equal(v, out[k], tol) for k, v in exp.items())
    if isinstance(expected, complex) or isinstance(got, complex):
        try:
            e, g = complex(expected), complex(got)
        except (TypeError, ValueError):
            return False
        return _floats_close(e.real, g.real, tol) and _floats_close(e.imag, g.imag, tol)
    if isinstance(expected, bytes) and isinstance(got, bytes):
        return expected == got
    return False


def _unordered_equal(expected: list[Any], got: list[Any], tol: float) -> bool:
    if len(expected) != len(got):
        return False
    if len(expected) > _MAX_SET_MATCH:
        try:
            return sorted(map(repr, expected)) == sorted(map(repr, got))
        except RecursionError:
            return False
    remaining = list(got)
    for e in expected:
        for j, g in enumerate(remaining):
            if values_equal(e, g, tol):
                del remaining[j]
                break
        else:
            return False
    return True
