"""Equivalence of two parsed answers, cheapest test first.

exact normal form -> exact rational -> numeric with relative tolerance (in
arbitrary precision, so ``1/2004!`` and ``1/2006!`` stay apart) -> symbolic
(random-point probing, then ``simplify``) -> structured families: sets and
lists, tuples and intervals, unions and inequalities, matrices, equations
(up to a constant factor), functions (variable renaming), percentages,
multiple-choice letters and text.

`compare_answers` is the worker-process entry point: it may be slow on
hostile input and must run inside `verifiers.pool.WorkerPool`.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

import sympy

from verifiers.math.normalize import DEGREE_MARK, compact, normalize_answer
from verifiers.math.numbers import Num, candidates, numbers_equal, parse_number_pair, rounding_only
from verifiers.math.parse import (
    Choice,
    Colon,
    Expr,
    Function,
    Matrix,
    Relation,
    Seq,
    Text,
    Union,
    Value,
    parse_answer,
)

EQUAL = "equal"
NOT_EQUAL = "not_equal"
UNPARSEABLE = "unparseable"

DEFAULT_TOLERANCE = 1e-6
_PRECISION = 60  # decimal digits for numeric checks
_PROBES = 5
_NAME = re.compile(r"^[A-Za-z](?:[A-Za-z']|_\{?\w+\}?)*$")


@dataclass(frozen=True, slots=True)
class Comparison:
    """Result of comparing an answer with a reference.

    outcome: ``equal``, ``not_equal`` or ``unparseable`` (the rules cannot
        decide; a judge may).
    hard_negative: both sides are numeric constants (or tuples of them) that
        differ beyond tolerance - no judge should overturn this.
    method: the family that decided.
    """

    outcome: str
    hard_negative: bool = False
    method: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


class _Undecided(Exception):
    """A comparison met something it cannot evaluate."""


# ---------------------------------------------------------------- numbers


def _as_sympy(value: Value) -> Any:
    if isinstance(value, Num):
        return sympy.Rational(value.value.numerator, value.value.denominator)
    if isinstance(value, Expr):
        return value.expr
    raise _Undecided


def _numeric(expr: Any) -> Any:
    value = sympy.N(expr, _PRECISION)
    if not value.is_number:
        raise _Undecided
    return value


def _close(x: Any, y: Any, tol: float) -> bool:
    if x == y:
        return True
    if x.has(sympy.zoo, sympy.nan) or y.has(sympy.zoo, sympy.nan):
        raise _Undecided
    if x.is_infinite or y.is_infinite:
        return bool(x == y)
    diff = abs(sympy.N(x - y, _PRECISION))
    scale = sympy.Max(abs(x), abs(y))
    if scale == 0:
        return bool(diff == 0)
    return bool(diff <= sympy.Float(tol, _PRECISION) * scale)


def _constant(value: Value) -> bool:
    if isinstance(value, Num):
        return True
    if isinstance(value, Expr):
        expr = value.expr
        return bool(getattr(expr, "is_number", False)) and not expr.free_symbols
    if isinstance(value, Seq):
        return bool(value.items) and all(_constant(item) for item in value.items)
    return isinstance(value, Colon)


def _exprs_equal(a: Any, b: Any, tol: float) -> bool:
    """Equality of two sympy expressions: numeric when constant, else probing."""
    if not isinstance(a, sympy.Expr) or not isinstance(b, sympy.Expr):
        if isinstance(a, sympy.Basic) and isinstance(b, sympy.Basic):
            return bool(a == b)
        raise _Undecided
    if a.has(sympy.zoo, sympy.nan) or b.has(sympy.zoo, sympy.nan):
        raise _Undecided  # "12:00" read as 12/0: nothing to compare
    if a == b:
        return True
    symbols = sorted(a.free_symbols | b.free_symbols, key=str)
    if not symbols:
        return _close(_numeric(a), _numeric(b), tol)
    if a.free_symbols != b.free_symbols:
        # Different variables can still cancel (x - x); let probing decide,
        # but an extra symbol on one side only almost always means unequal.
        pass
    rng = random.Random(20240601)
    valid = 0
    for _ in range(_PROBES * 3):
        point = {s: sympy.Rational(rng.randint(3, 97), rng.randint(11, 37)) for s in symbols}
        values = _values_at(a, b, point)
        if values is None:
            continue
        x, y = values
        if not _close(x, y, max(tol, 1e-12)):
            return False
        valid += 1
        if valid >= _PROBES:
            return _agree_off_the_positive_axis(a, b, symbols, rng, tol)
    simplified = sympy.simplify(a - b)
    if simplified == 0:
        return True
    if simplified.is_number:
        return False
    raise _Undecided


def _values_at(a: Any, b: Any, point: dict[Any, Any]) -> tuple[Any, Any] | None:
    """Both expressions evaluated at `point`; None where either is undefined."""
    try:
        x = sympy.N(a.subs(point), 30)
        y = sympy.N(b.subs(point), 30)
    except (ZeroDivisionError, ValueError, TypeError):
        return None
    if not (x.is_number and y.is_number):
        return None
    if x.has(sympy.zoo, sympy.nan, sympy.oo) or y.has(sympy.zoo, sympy.nan, sympy.oo):
        return None
    return x, y


def _agree_off_the_positive_axis(
    a: Any, b: Any, symbols: list[Any], rng: random.Random, tol: float
) -> bool:
    """Equal at positive points; check points with negative coordinates too,
    where both sides are real (so ``|x|`` and ``x`` differ, while ``\\ln x^2``
    and ``2\\ln x``, equal wherever both are real, still agree)."""
    for _ in range(_PROBES * 2):
        point = {
            s: sympy.Rational(rng.randint(3, 97), rng.randint(11, 37)) * rng.choice((-1, 1))
            for s in symbols
        }
        values = _values_at(a, b, point)
        if values is None or not (values[0].is_real and values[1].is_real):
            continue
        x, y = values
        if not _close(x, y, max(tol, 1e-12)):
            return False
    return True


# ---------------------------------------------------------------- structure


def _unwrap(value: Value) -> Value:
    while isinstance(value, Seq) and value.kind == "list" and len(value.items) == 1:
        value = value.items[0]
    return value


_NAMES_TUPLE = re.compile(r"^\(\s*[A-Za-z](?:_\{?\w+\}?)?(?:\s*,\s*[A-Za-z](?:_\{?\w+\}?)?)+\s*\)$")


_EQUATION_SIDE = re.compile(r"[+\-^]")


def _is_label(text: str) -> bool:
    """A name (``x``, ``a_1``) or a tuple of names (``(p, q)``)."""
    compacted = text.replace(" ", "")
    return bool(_NAME.match(compacted) or _NAMES_TUPLE.match(compacted))


def _relation_value(rel: Relation) -> Value | None:
    """The value a chain of equalities states: ``x = 5`` -> 5,
    ``(p, q) = (3, 2)`` -> (3, 2), ``z = 1 + 1 = 2`` -> 2, and
    ``|AB| = 1`` -> 1 (a constant after a labelled quantity)."""
    if not all(op == "=" for op in rel.ops):
        return None
    if _is_label(rel.texts[0]):
        return rel.parts[-1]
    if _constant(_unwrap(rel.parts[-1])) and (
        len(rel.parts) > 2 or not _EQUATION_SIDE.search(rel.texts[0].lstrip("+-"))
    ):
        # "|AB| = 1", "A:B = 7:32", "1 + 1 = 2 = z": a quantity and its value;
        # not "a + 3z = 0" (an equation) or "x^2 = 4".
        return rel.parts[-1]
    return None


def _assignments(value: Value) -> dict[str, Value] | None:
    """``p=5, q=2`` as {name: value}; None unless every item is ``name = value``."""
    if not isinstance(value, Seq) or value.kind != "list" or len(value.items) < 2:
        return None
    names: dict[str, Value] = {}
    for item in value.items:
        if not (
            isinstance(item, Relation)
            and item.ops == ("=",)
            and _NAME.match(item.texts[0].replace(" ", ""))
        ):
            return None
        names[item.texts[0].replace(" ", "")] = item.parts[1]
    return names if len(names) == len(value.items) else None


def _to_set(value: Value) -> Any:
    """A sympy set for intervals, unions and one-variable inequalities."""
    if isinstance(value, Union):
        return sympy.Union(*(_to_set(p) for p in value.parts))
    if isinstance(value, Seq) and value.kind == "bracket" and len(value.items) == 2:
        lo, hi = (_as_sympy(v) for v in value.items)
        return sympy.Interval(lo, hi, value.opening == "(", value.closing == ")")
    if (
        isinstance(value, Seq)
        and value.kind == "list"
        and value.items
        and all(isinstance(item, Relation) for item in value.items)
    ):
        return sympy.Union(*(_to_set(item) for item in value.items))  # "x<1 or x>2"
    if isinstance(value, Relation) and all(op in ("<", "<=", ">", ">=", "!=") for op in value.ops):
        exprs = [_as_sympy(p) for p in value.parts]
        applied = {e for e in exprs if isinstance(e, sympy.core.function.AppliedUndef)}
        if len(applied) == 1:
            # "0 < f(x) < 1": the quantity bounded is f(x), a single unknown
            (quantity,) = applied
            exprs = [e.xreplace({quantity: sympy.Dummy("t")}) for e in exprs]
        symbols = set().union(*(e.free_symbols for e in exprs))
        if len(symbols) != 1:
            raise _Undecided
        ops = {"<": sympy.Lt, "<=": sympy.Le, ">": sympy.Gt, ">=": sympy.Ge, "!=": sympy.Ne}
        result: Any = sympy.S.Reals
        for left, op, right in zip(exprs, value.ops, exprs[1:], strict=False):
            condition = ops[op](left, right)
            if condition is sympy.false or condition is sympy.true:
                raise _Undecided
            result = result.intersect(condition.as_set())
        return result
    if isinstance(value, Seq) and value.kind == "set":
        return sympy.FiniteSet(*(_as_sympy(v) for v in value.items))
    raise _Undecided


def _sets_equal(a: Any, b: Any) -> bool:
    if a == b:
        return True
    return bool(sympy.simplify(a.symmetric_difference(b)) == sympy.S.EmptySet)


def _match_unordered(a: tuple[Value, ...], r: tuple[Value, ...], tol: float) -> bool:
    # sets of solutions: a repeated item does not count twice
    a, r = tuple(dict.fromkeys(a)), tuple(dict.fromkeys(r))
    if len(a) != len(r):
        return False
    remaining = list(r)
    undecided = False
    for item in a:
        for index, candidate in enumerate(remaining):
            verdict = _equal(item, candidate, tol)
            if verdict is None:
                undecided = True
            elif verdict:
                del remaining[index]
                break
        else:
            if undecided:
                raise _Undecided
            return False
    return True


def _match_ordered(a: tuple[Value, ...], r: tuple[Value, ...], tol: float) -> bool:
    if len(a) != len(r):
        return False
    for x, y in zip(a, r, strict=True):
        verdict = _equal(x, y, tol)
        if verdict is None:
            raise _Undecided
        if not verdict:
            return False
    return True


def _relations_equal(a: Relation, r: Relation, tol: float) -> bool:
    a_eq = all(op == "=" for op in a.ops)
    r_eq = all(op == "=" for op in r.ops)
    if a_eq != r_eq:
        return False
    if a_eq:
        if (
            len(a.parts) > 2 or len(r.parts) > 2 or compact(a.texts[0]) == compact(r.texts[0])
        ) and _NAME.match(compact(r.texts[0])):
            if compact(a.texts[0]) != compact(r.texts[0]):
                return False
            verdict = _equal(a.parts[-1], r.parts[-1], tol)
            if verdict is None:
                raise _Undecided
            return verdict
        if len(a.parts) != 2 or len(r.parts) != 2:
            raise _Undecided
        da = _as_sympy(a.parts[0]) - _as_sympy(a.parts[1])
        dr = _as_sympy(r.parts[0]) - _as_sympy(r.parts[1])
        return _proportional(da, dr, positive=False)
    try:
        return _sets_equal(_to_set(a), _to_set(r))
    except _Undecided:
        pass
    if len(a.parts) != 2 or len(r.parts) != 2:
        raise _Undecided

    # Multi-variable inequality: compare "big - small" up to a positive factor.
    def oriented(rel: Relation) -> tuple[Any, bool]:
        left, right = _as_sympy(rel.parts[0]), _as_sympy(rel.parts[1])
        op = rel.ops[0]
        strict = op in ("<", ">")
        return (right - left if op in ("<", "<=") else left - right), strict

    (ea, sa), (er, sr) = oriented(a), oriented(r)
    return sa == sr and _proportional(ea, er, positive=True)


def _proportional(a: Any, b: Any, *, positive: bool) -> bool:
    """True when a = c * b for a constant c != 0 (c > 0 when `positive`)."""
    if b == 0:
        return bool(a == 0)
    ratio = sympy.simplify(a / b)
    if ratio.free_symbols:
        return False
    ratio = _numeric(ratio)
    if ratio == 0:
        return False
    return bool(ratio > 0) if positive else True


def _texts_equal(a: str, b: str) -> bool:
    def key(s: str) -> str:
        return re.sub(r"[^0-9a-z]+", "", s.lower())

    return key(a) == key(b) and key(a) != ""


def _equal(a: Value, r: Value, tol: float) -> bool | None:
    """Is answer `a` equivalent to reference `r`? None when undecidable."""
    try:
        return _equal_or_raise(_unwrap(a), _unwrap(r), tol)
    except _Undecided:
        return None
    except (TypeError, ValueError, AttributeError, NotImplementedError, ZeroDivisionError):
        return None


def _colons_equal(a: Colon, r: Colon) -> bool:
    if a.parts == r.parts and a.meridiem == r.meridiem:
        return True
    if a.clock and r.clock:

        def minutes(c: Colon) -> Any:
            hours = c.parts[0] % 12 if c.meridiem else c.parts[0]
            if c.meridiem == "p":
                hours += 12
            return hours * 60 + c.parts[1]

        if bool(a.meridiem) == bool(r.meridiem):
            return bool(minutes(a) == minutes(r) and a.parts[2:] == r.parts[2:])
        # one side without a.m./p.m.: "4:30" or "16:30" for "4:30 p.m."
        marked, bare = (a, r) if a.meridiem else (r, a)
        if bare.parts[1:] != marked.parts[1:]:
            return False
        return bare.parts[0] in (marked.parts[0], minutes(marked) // 60)
    if len(a.parts) == len(r.parts) == 2 and not (a.meridiem or r.meridiem):
        # ratios: 7:32 = 14:64
        return bool(a.parts[0] * r.parts[1] == a.parts[1] * r.parts[0])
    raise _Undecided


_BRACKETED_PAIR = re.compile(r"[(\[][^()\[\]]*,[^()\[\]]*[)\]]")
_LEADING_CHOICE = re.compile(r"^\(?([A-J])\)?(?:[.:)]|\s|$)")


def _equal_or_raise(a: Value, r: Value, tol: float) -> bool:
    if isinstance(a, Function) or isinstance(r, Function):
        return _functions_equal(a, r, tol)
    if isinstance(a, Relation) and not isinstance(r, Relation):
        value = _relation_value(a)
        if value is not None:
            return _equal_or_raise(_unwrap(value), r, tol)
        if isinstance(r, Union | Seq):
            return _sets_equal(_to_set(a), _to_set(r))
        if isinstance(r, Text):
            raise _Undecided
        return False
    if isinstance(r, Relation) and not isinstance(a, Relation):
        value = _relation_value(r)
        if value is not None:
            return _equal_or_raise(a, _unwrap(value), tol)
        if isinstance(a, Union | Seq):
            return _sets_equal(_to_set(a), _to_set(r))
        if isinstance(a, Text):
            raise _Undecided
        return False
    if isinstance(a, Relation) and isinstance(r, Relation):
        return _relations_equal(a, r, tol)
    if isinstance(a, Num) and isinstance(r, Num):
        if numbers_equal(a, r, tol):
            return True
        if rounding_only(a, r):
            raise _Undecided
        return False
    if isinstance(a, Num | Expr) and isinstance(r, Num | Expr):
        if isinstance(a, Num) and a.percent:
            return any(_exprs_equal(sympy.Rational(c), _as_sympy(r), tol) for c in candidates(a))
        if _exprs_equal(_as_sympy(a), _as_sympy(r), tol):
            return True
        if isinstance(a, Num) and a.decimals and _constant(r):
            # "1.41" for sqrt(2): right to the digits given - a judge decides
            # whether the question asked for a decimal.
            half_unit = sympy.Rational(1, 2 * 10**a.decimals)
            if abs(_numeric(_as_sympy(a) - _as_sympy(r))) <= half_unit:
                raise _Undecided
        return False
    if isinstance(a, Colon) and isinstance(r, Colon):
        return _colons_equal(a, r)
    if isinstance(r, Union) or isinstance(a, Union):
        if isinstance(a, Union) and isinstance(r, Union):
            return _match_unordered(a.parts, r.parts, tol)
        return _sets_equal(_to_set(a), _to_set(r))
    if isinstance(a, Seq) and isinstance(r, Seq):
        named_a, named_r = _assignments(a), _assignments(r)
        if named_a is not None and named_r is not None:
            if set(named_a) != set(named_r):
                return False
            return _match_ordered(tuple(named_a[k] for k in named_r), tuple(named_r.values()), tol)
        if named_a is not None and r.kind != "set":
            return _match_ordered(tuple(named_a.values()), r.items, tol)
        if named_r is not None and a.kind != "set":
            return _match_ordered(a.items, tuple(named_r.values()), tol)
        return _seqs_equal(a, r, tol)
    if isinstance(a, Matrix) and isinstance(r, Matrix):
        if len(a.rows) != len(r.rows):
            return False
        return all(_match_ordered(x, y, tol) for x, y in zip(a.rows, r.rows, strict=True))
    if isinstance(a, Matrix) and isinstance(r, Seq) and len(a.rows[0]) == 1:
        # a column vector written as a tuple
        return _match_ordered(tuple(row[0] for row in a.rows), r.items, tol)
    if isinstance(r, Matrix) and isinstance(a, Seq) and len(r.rows[0]) == 1:
        return _match_ordered(a.items, tuple(row[0] for row in r.rows), tol)
    if isinstance(a, Choice) and isinstance(r, Choice):
        return a.letter == r.letter
    if isinstance(a, Choice | Text) and isinstance(r, Choice | Text):
        left = a.letter if isinstance(a, Choice) else a.text
        right = r.letter if isinstance(r, Choice) else r.text
        if _texts_equal(left, right):
            return True
        if isinstance(a, Text) and isinstance(r, Text):
            raise _Undecided  # different wording: a judge may know better
        text = a.text if isinstance(a, Text) else right
        letter = r.letter if isinstance(r, Choice) else left
        match = _LEADING_CHOICE.match(text.strip())
        if match:
            return match.group(1) == letter  # "(B) 12" for "B"
        raise _Undecided
    if isinstance(a, Choice) or isinstance(r, Choice):
        choice, other = (a, r) if isinstance(a, Choice) else (r, a)
        assert isinstance(choice, Choice)
        letter = choice.letter
        if isinstance(other, Expr) and isinstance(other.expr, sympy.Symbol):
            name = other.expr.name
            if len(name) == 1 and name.upper() in "ABCDEFGHIJ":
                return name.upper() == letter  # "d" against "(E)"
        raise _Undecided  # a letter against a value: which option is which?
    if isinstance(a, Text) or isinstance(r, Text):
        textual, other = (a, r) if isinstance(a, Text) else (r, a)
        assert isinstance(textual, Text)
        if isinstance(other, Num) and _BRACKETED_PAIR.search(textual.text):
            return False  # an interval or a tuple is not a number
        raise _Undecided
    if isinstance(a, Colon) or isinstance(r, Colon):
        raise _Undecided
    return False


def _seqs_equal(a: Seq, r: Seq, tol: float) -> bool:
    if r.kind == "bracket":
        if a.kind == "bracket" and (a.opening, a.closing) != (r.opening, r.closing):
            return False
        if a.kind == "set":
            return False
        return _match_ordered(a.items, r.items, tol)
    if r.kind == "set":
        if a.kind == "bracket" and len(a.items) == 2 and a.opening != a.closing:
            return False
        return _match_unordered(a.items, r.items, tol)
    # the reference is a bare list of answers: order does not matter
    if a.kind == "bracket" and (a.opening, a.closing) != ("(", ")"):
        return False
    return _match_unordered(a.items, r.items, tol)


def _functions_equal(a: Value, r: Value, tol: float) -> bool:
    if isinstance(a, Function) and isinstance(r, Function):
        if len(a.variables) != len(r.variables):
            return False
        body = a.body
        if a.variables != r.variables and isinstance(body, Expr):
            mapping = {
                sympy.Symbol(x): sympy.Symbol(y)
                for x, y in zip(a.variables, r.variables, strict=True)
            }
            body = Expr(body.expr.xreplace(mapping))
        return _equal_or_raise(_unwrap(body), _unwrap(r.body), tol)
    if isinstance(a, Function):
        return _equal_or_raise(_unwrap(a.body), r, tol)
    assert isinstance(r, Function)
    return _equal_or_raise(a, _unwrap(r.body), tol)


# ---------------------------------------------------------------- entry point


def compare_answers(
    answer: str, reference: str, tolerance: float = DEFAULT_TOLERANCE
) -> Comparison:
    """Compare an extracted answer with a reference answer.

    Never raises on model text (unparseable input gives ``unparseable``).
    May run long on hostile input: call it through a `WorkerPool`.
    """
    try:
        return _compare(answer, reference, tolerance)
    except RecursionError:
        return Comparison(UNPARSEABLE, method="too_deep")


def _in_radians(text: str) -> str:
    """A degree answer rewritten in radians: ``45^\\circ`` -> ``(45)\\cdot\\frac{\\pi}{180}``."""
    return f"({normalize_answer(text)})\\cdot\\frac{{\\pi}}{{180}}"


def _compare(answer: str, reference: str, tolerance: float) -> Comparison:
    if compact(answer) == compact(reference) and compact(answer):
        return Comparison(EQUAL, method="exact")
    # degrees on one side, radians (pi) on the other: compare in radians
    a_deg, r_deg = DEGREE_MARK.search(answer), DEGREE_MARK.search(reference)
    if a_deg and not r_deg and "\\pi" in reference and "\\pi" not in answer:
        answer = _in_radians(answer)
    elif r_deg and not a_deg and "\\pi" in answer and "\\pi" not in reference:
        reference = _in_radians(reference)
    a_num, r_num = parse_number_pair(normalize_answer(answer), normalize_answer(reference))
    if a_num is not None and r_num is not None:
        if numbers_equal(a_num, r_num, tolerance):
            return Comparison(EQUAL, method="number")
        if rounding_only(a_num, r_num):
            return Comparison(UNPARSEABLE, method="rounded")
        return Comparison(NOT_EQUAL, hard_negative=True, method="number")
    a = parse_answer(answer)
    r = parse_answer(reference)
    if isinstance(r, Choice) and not isinstance(a, Choice):
        match = _LEADING_CHOICE.match(normalize_answer(answer))
        if match:  # "(B) 12" for "B"
            same = match.group(1) == r.letter
            return Comparison(EQUAL if same else NOT_EQUAL, method="choice")
    verdict = _equal(a, r, tolerance)
    if verdict is None:
        return Comparison(UNPARSEABLE, method=type(a).__name__.lower())
    if verdict:
        return Comparison(EQUAL, method=type(r).__name__.lower())
    hard = _constant(_unwrap(a)) and _constant(_unwrap(r))
    return Comparison(NOT_EQUAL, hard_negative=hard, method=type(r).__name__.lower())
