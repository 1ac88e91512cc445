"""Turn a normalised answer string into a structured value.

The structure is found by a small bracket-aware scanner (sets, tuples,
intervals, unions, matrices, relations, lists); only the leaves are handed to
sympy (LaTeX via ``latex2sympy2_extended``, plain text via sympy's own parser
with a fixed transformation set and no builtins). Plain numbers never touch
sympy. Parsing can be slow or explode on hostile input: callers run it inside
`verifiers.pool.WorkerPool`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import sympy

from verifiers.math.normalize import normalize_answer
from verifiers.math.numbers import Num, parse_number

# ---------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class Expr:
    expr: Any  # sympy.Basic


@dataclass(frozen=True, slots=True)
class Seq:
    """A bracketed or comma-separated collection.

    kind: ``set`` (``\\{..\\}``), ``list`` (bare commas), or ``bracket`` with
    `opening`/`closing` in ``([`` / ``)]`` (tuples, points and intervals).
    """

    kind: str
    items: tuple[Value, ...]
    opening: str = ""
    closing: str = ""


@dataclass(frozen=True, slots=True)
class Union:
    parts: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class Relation:
    """A chain like ``a = b`` or ``1 < x \\le 3``: parts and the ops between."""

    parts: tuple[Value, ...]
    ops: tuple[str, ...]
    texts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Function:
    """``f(x) = body``: a definition whose variable may be renamed."""

    variables: tuple[str, ...]
    body: Value


@dataclass(frozen=True, slots=True)
class Matrix:
    rows: tuple[tuple[Value, ...], ...]


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class Choice:
    letter: str


Value = Num | Expr | Seq | Union | Relation | Function | Matrix | Text | Choice

# ---------------------------------------------------------------- scanning

_OPENERS = "([{"
_CLOSERS = ")]}"
_REL_TOKENS = ("\\le", "\\ge", "\\ne", "\\approx", "=", "<", ">")
_REL_CANON = {
    "\\le": "<=",
    "\\ge": ">=",
    "\\ne": "!=",
    "\\approx": "=",
    "=": "=",
    "<": "<",
    ">": ">",
}
_LIST_WORDS = re.compile(r"\s+(?:and|or)\s+|,\s*(?:and|or)\s+")


def _depth_scan(s: str) -> list[int]:
    """Bracket depth before each character; ``\\{``/``\\}`` count as brackets."""
    depths = [0] * (len(s) + 1)
    depth = 0
    i = 0
    while i < len(s):
        depths[i] = depth
        ch = s[i]
        if ch == "\\" and i + 1 < len(s) and s[i + 1] in "{}":
            depths[i + 1] = depth
            depth += 1 if s[i + 1] == "{" else -1
            i += 2
            continue
        if ch in _OPENERS:
            depth += 1
        elif ch in _CLOSERS:
            depth -= 1
        i += 1
    depths[len(s)] = depth
    return depths


def split_top(s: str, separators: tuple[str, ...]) -> list[str]:
    """Split on separators that stand outside every bracket."""
    depths = _depth_scan(s)
    parts: list[str] = []
    start = 0
    i = 0
    while i < len(s):
        if depths[i] == 0:
            for sep in separators:
                if s.startswith(sep, i):
                    if sep[0] == "\\" and s[i + len(sep) : i + len(sep) + 1].isalpha():
                        continue  # "\le" must not match "\left"
                    parts.append(s[start:i])
                    i += len(sep)
                    start = i
                    break
            else:
                i += 1
            continue
        i += 1
    parts.append(s[start:])
    return parts


def _split_relations(s: str) -> tuple[list[str], list[str]]:
    depths = _depth_scan(s)
    parts: list[str] = []
    ops: list[str] = []
    start = 0
    i = 0
    while i < len(s):
        if depths[i] == 0:
            for token in _REL_TOKENS:
                if s.startswith(token, i):
                    end = i + len(token)
                    if token[0] == "\\" and s[end : end + 1].isalpha():
                        continue
                    if token in "<>" and s[end : end + 1] == "=":
                        token, end = token + "=", end + 1
                    parts.append(s[start:i])
                    ops.append(_REL_CANON.get(token, token))
                    i = end
                    start = i
                    break
            else:
                i += 1
            continue
        i += 1
    parts.append(s[start:])
    return parts, ops


def _outer_pair(s: str) -> tuple[str, str, str] | None:
    """(opening, inner, closing) when one bracket pair wraps all of `s`."""
    if s.startswith("\\{") and s.endswith("\\}"):
        opening, closing, inner = "\\{", "\\}", s[2:-2]
    elif s[:1] in "([" and s[-1:] in ")]":
        opening, closing, inner = s[0], s[-1], s[1:-1]
    elif s.startswith("{") and s.endswith("}"):
        opening, closing, inner = "{", "}", s[1:-1]
    else:
        return None
    depths = _depth_scan(inner)
    if min(depths) < 0:
        return None  # e.g. "(1,2) \cup (3,4)": the first ")" closes early
    return opening, inner, closing


# ---------------------------------------------------------------- sympy leaves

_PLAIN_ALLOWED = re.compile(r"^[A-Za-z0-9_+\-*/^().,! ]+$")
_PLAIN_NAMES = frozenset(
    [
        "sqrt",
        "exp",
        "log",
        "ln",
        "sin",
        "cos",
        "tan",
        "cot",
        "sec",
        "csc",
        "asin",
        "acos",
        "atan",
        "sinh",
        "cosh",
        "tanh",
        "pi",
        "e",
        "i",
        "oo",
        "abs",
        "factorial",
        "binomial",
        "floor",
        "ceiling",
    ]
)
_PLAIN_WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


def _plain_sympy(s: str) -> Any | None:
    """sympy's parser on plain text, only for a vetted alphabet and names."""
    from sympy.parsing.sympy_parser import (
        convert_xor,
        implicit_multiplication_application,
        parse_expr,
        standard_transformations,
    )

    if not _PLAIN_ALLOWED.match(s) or "__" in s:
        return None
    for word in _PLAIN_WORD.findall(s):
        if len(word) > 1 and word not in _PLAIN_NAMES:
            return None
    transformations = (
        *standard_transformations,
        implicit_multiplication_application,
        convert_xor,
    )
    return parse_expr(s, global_dict=_plain_namespace(), transformations=transformations)


@lru_cache(maxsize=1)
def _plain_namespace() -> dict[str, Any]:
    """The names sympy's parser may resolve: sympy's public API, no builtins."""
    namespace: dict[str, Any] = {
        name: getattr(sympy, name) for name in dir(sympy) if not name.startswith("_")
    }
    namespace.update({"__builtins__": {}, "ln": sympy.log, "e": sympy.E, "i": sympy.I})
    return namespace


def _latex_sympy(s: str) -> Any:
    from latex2sympy2_extended import latex2sympy
    from latex2sympy2_extended.latex2sympy2 import ConversionConfig

    return latex2sympy(
        s,
        conversion_config=ConversionConfig(
            interpret_as_mixed_fractions=True,
            interpret_simple_eq_as_assignment=False,
            interpret_contains_as_eq=False,
            lowercase_symbols=False,
        ),
    )


_PLAIN_HINTS = ("**", "sqrt(", "pi", "log(", "exp(", "sin(", "cos(", "tan(")


def parse_leaf(s: str) -> Any | None:
    """A sympy expression for one scalar answer, or None if it does not parse."""
    text = s.strip()
    if not text:
        return None
    try:
        if "\\" not in text and any(h in text for h in _PLAIN_HINTS):
            plain = _plain_sympy(text)
            if plain is not None:
                return plain
        result = _latex_sympy(text)
    except (RecursionError, MemoryError):
        raise
    except Exception:
        return None
    if isinstance(result, list | tuple):
        return None
    return result


# ---------------------------------------------------------------- structure

_CHOICE = re.compile(r"^\(?([A-Ea-e])\)?$")
_FUNCTION_HEAD = re.compile(r"^\s*([a-zA-Z])\s*\(\s*([a-zA-Z](?:\s*,\s*[a-zA-Z])*)\s*\)\s*$")
_MATRIX = re.compile(r"\\begin\{([pbvBV]?matrix|array)\}(?:\{[^}]*\})?(.*?)\\end\{\1\}", re.S)
_IN_PREFIX = re.compile(r"^[a-zA-Z]\s*\\in\s*")
_WORDS = re.compile(r"^[A-Za-z][A-Za-z '\-]*$")
_WITH_UNIT = re.compile(r"^(-?[\d.,]+(?:/\d+)?)\s*((?:[A-Za-z]{2,}\.?\s*)+)(?:\^\{?\d\}?)?$")
_CONSTANT_WORDS = frozenset({"pi", "inf", "infinity", "oo"})


@lru_cache(maxsize=4096)
def parse_answer(answer: str) -> Value:
    """Structured value of an answer (normalised first). Never returns None:
    what does not parse becomes `Text`."""
    return _parse(normalize_answer(answer), depth=0)


def _parse(s: str, depth: int) -> Value:
    s = s.strip()
    if depth > 12 or not s:
        return Text(s)
    if (number := parse_number(s)) is not None:
        return number
    if match := _CHOICE.match(s):
        return Choice(match.group(1).upper())
    if match := _MATRIX.fullmatch(s):
        body = match.group(2)
        rows = [r for r in re.split(r"\\\\", body) if r.strip()]
        return Matrix(tuple(tuple(_parse(c, depth + 1) for c in r.split("&")) for r in rows))
    s = _IN_PREFIX.sub("", s)

    unions = split_top(s, ("\\cup",))
    if len(unions) > 1:
        return Union(tuple(_parse(p, depth + 1) for p in unions))

    items = [p for p in split_top(s, (",", ";")) if p.strip()]
    if len(items) == 1 and _LIST_WORDS.search(s):
        items = [p for p in _LIST_WORDS.split(s) if p.strip()]
    if len(items) > 1:
        return Seq("list", tuple(_parse(p, depth + 1) for p in items))

    parts, ops = _split_relations(s)
    if ops and all(p.strip() for p in parts):
        if len(ops) == 1 and ops[0] == "=" and (head := _FUNCTION_HEAD.match(parts[0])):
            variables = tuple(v.strip() for v in head.group(2).split(","))
            return Function(variables, _parse(parts[1], depth + 1))
        return Relation(
            tuple(_parse(p, depth + 1) for p in parts), tuple(ops), tuple(p.strip() for p in parts)
        )

    pair = _outer_pair(s)
    if pair is not None:
        opening, inner, closing = pair
        inner_items = [p for p in split_top(inner, (",", ";")) if p.strip()]
        if opening == "\\{":
            return Seq("set", tuple(_parse(p, depth + 1) for p in inner_items))
        if opening == "{" or len(inner_items) == 1:
            return _parse(inner, depth + 1)
        return Seq("bracket", tuple(_parse(p, depth + 1) for p in inner_items), opening, closing)

    if (unit := _WITH_UNIT.match(s)) and not set(unit.group(2).lower().split()) & _PLAIN_NAMES:
        if (number := parse_number(unit.group(1))) is not None:
            return number  # "5 meters", "12 cm^2": the unit is presentation
    if len(s) > 2 and _WORDS.match(s) and s.lower() not in _CONSTANT_WORDS:
        return Text(s)  # a word such as "Even", not a product of variables
    expr = parse_leaf(s)
    if expr is None:
        return Text(s)
    return Expr(expr)
