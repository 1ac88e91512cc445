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
from fractions import Fraction
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


@dataclass(frozen=True, slots=True)
class Colon:
    """``4:30 p.m.`` or ``7:32``: a time of day or a ratio (numbers between colons)."""

    parts: tuple[Fraction, ...]
    meridiem: str  # "a", "p" or ""
    clock: bool  # looks like a time (H:MM, minutes in two digits)


Value = Num | Expr | Seq | Union | Relation | Function | Matrix | Text | Choice | Colon

# ---------------------------------------------------------------- scanning

_OPENERS = "([{"
_CLOSERS = ")]}"
# "<=" and ">=" before "<" and ">", so the longer operator wins
_REL_TOKENS = ("\\le", "\\ge", "\\ne", "\\approx", "\\sim", "<=", ">=", "=", "<", ">")
_REL_CANON = {
    "\\le": "<=",
    "\\ge": ">=",
    "\\ne": "!=",
    "\\approx": "~",
    "\\sim": "~",
    "=": "=",
    "<": "<",
    ">": ">",
}
_LIST_WORDS = re.compile(
    r"\s+(?:and|or)\s+"
    r"|(?<=[)\]}])\s*(?:and|or)\s*(?=[(\[{\\\d-])"  # "(11,7)or(7,11)"
    r"|(?<=\d)(?:and|or)(?=[A-Z(\\])"  # "W(x)=1orW(x)=-1"
    r"|^(?:and|or)\s+"
)


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


def _split_at(s: str, tokens: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Split on tokens that stand outside every bracket: (parts, tokens found).

    Tokens are tried in order at each position; a command token (``\\le``)
    does not match the start of a longer command (``\\left``).
    """
    depths = _depth_scan(s)
    parts: list[str] = []
    found: list[str] = []
    start = 0
    i = 0
    while i < len(s):
        if depths[i] == 0:
            for token in tokens:
                if s.startswith(token, i):
                    end = i + len(token)
                    if token[0] == "\\" and s[end : end + 1].isalpha():
                        continue
                    parts.append(s[start:i])
                    found.append(token)
                    i = start = end
                    break
            else:
                i += 1
            continue
        i += 1
    parts.append(s[start:])
    return parts, found


def split_top(s: str, separators: tuple[str, ...]) -> list[str]:
    """Split on separators that stand outside every bracket."""
    return _split_at(s, separators)[0]


def _split_relations(s: str) -> tuple[list[str], list[str]]:
    """Parts and canonical operators of a relation chain (``1 < x \\le 3``)."""
    parts, ops = _split_at(s, _REL_TOKENS)
    return parts, [_REL_CANON.get(op, op) for op in ops]


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


_MAX_NESTING = 40


def _too_deep(text: str) -> bool:
    """More than `_MAX_NESTING` nested brackets: the parser would recurse too deep."""
    depth = deepest = 0
    for ch in text:
        if ch in "({[":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")}]":
            depth -= 1
    return deepest > _MAX_NESTING


def parse_leaf(s: str) -> Any | None:
    """A sympy expression for one scalar answer, or None if it does not parse."""
    text = s.strip()
    if not text:
        return None
    if _too_deep(text):
        return None
    try:
        if "\\" not in text and any(h in text for h in _PLAIN_HINTS):
            plain = _plain_sympy(text)
            if plain is not None:
                return plain
        result = _latex_sympy(text)
    except MemoryError:
        raise
    except RecursionError:
        return None  # deeply nested input: unparseable, not an error
    except Exception:
        return None
    if isinstance(result, list | tuple):
        return None
    return result


# ---------------------------------------------------------------- structure

_CHOICE = re.compile(r"^\(?([A-J])\)?$|^\(([a-j])\)$")
_COLON = re.compile(r"^(\d+(?:\.\d+)?)((?:\s*:\s*\d+(?:\.\d+)?)+)\s*(?:([AaPp])\.?\s*[Mm]\.?)?$")
_FUNCTION_HEAD = re.compile(r"^\s*([a-zA-Z])\s*\(\s*([a-zA-Z](?:\s*,\s*[a-zA-Z])*)\s*\)\s*$")
_MATRIX = re.compile(r"\\begin\{([pbvBV]?matrix|array)\}(?:\{[^}]*\})?(.*?)\\end\{\1\}", re.S)
_IN_PREFIX = re.compile(r"^[a-zA-Z]\s*\\in\s*")
_WORDS = re.compile(r"^[A-Za-z][A-Za-z '\-]*$")
_UNIT_WORDS = """m cm mm km in inch inches ft foot feet yd yard yards mi mile miles meter meters
metre metres centimeter centimeters millimeter millimeters kilometer kilometers kg g mg gram
grams kilogram kilograms lb lbs pound pounds oz ounce ounces l ml liter liters litre litres
gallon gallons s sec second seconds min minute minutes h hr hrs hour hours day days week weeks
month months year years dollar dollars cent cents units unit sq square cubic degree degrees
rad radian radians mph kph people students ways times percent"""
_UNITS = frozenset(_UNIT_WORDS.split())
#: Words that change a number's value or meaning: never dropped as units.
_NOT_UNIT_WORDS = """hundred hundreds thousand thousands million millions billion billions
trillion trillions dozen dozens score half halves quarter quarters third thirds fourth fourths
fifth fifths tenth tenths hundredth hundredths thousandth thousandths percent pct not no none
less more than over under least most plus minus times squared cubed factorial power powers
root roots degrees radians and or"""
_NOT_UNITS = frozenset(_NOT_UNIT_WORDS.split())
#: ``\{x \mid x > 2\}``, ``\{x : x > 2\}``: a set given by a condition on one variable.
_SET_BUILDER = re.compile(r"^\\\{\s*[a-zA-Z]\s*(?:\\mid|\||:)\s*(.+?)\s*\\\}$")
_NUMBER_WORD_LIST = """zero one two three four five six seven eight nine ten eleven twelve
thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty"""
_NUMBER_WORDS = {word: value for value, word in enumerate(_NUMBER_WORD_LIST.split())}
_PLAIN_VALUE = re.compile(r"^-?\d+(?:,\d{3})*(?:\.\d+)?$")
_TRAILING_WORDS = re.compile(r"^(.*?[\d}).])\s*((?:[A-Za-z]+\.?(?:\^\{?[23]\}?)?\s*)+)$")
_CONSTANT_WORDS = frozenset({"pi", "inf", "infinity", "oo"})
_PLUS_MINUS = re.compile(r"\\(?:pm|mp)(?![a-zA-Z])")
_REPEATING = re.compile(r"^(-)?(\d*)\.(\d*)\\overline\{(\d+)\}$")
# numeric power towers (``9^{9^{9^{9}}}``) and huge factorials are bombs
_TOWER = re.compile(
    r"\d\s*\^\s*\{?\s*\(?\s*\d+\s*\)?\s*\^"  # 9^{9^{9}}
    r"|\d\s*\^\s*\{?\s*\(?\s*\d{5,}"  # 9^{123456}
    r"|\d\s*(?:\*\*|\^)\s*\(?\s*\d+\s*\)?\s*(?:\*\*|\^)"
)
_BIG_FACTORIAL = re.compile(r"\d{5,}\s*!")


@lru_cache(maxsize=4096)
def parse_answer(answer: str) -> Value:
    """Structured value of an answer (normalised first). Never returns None:
    what does not parse becomes `Text`."""
    return _parse(normalize_answer(answer), depth=0)


def _repeating_decimal(s: str) -> Num | None:
    """``0.\\overline{3}`` -> 1/3."""
    match = _REPEATING.match(s.replace(" ", ""))
    if not match:
        return None
    sign, whole, fixed, period = match.groups()
    base = Fraction(int(whole or "0")) + (
        Fraction(int(fixed), 10 ** len(fixed)) if fixed else Fraction(0)
    )
    value = base + Fraction(int(period), (10 ** len(period) - 1) * 10 ** len(fixed))
    return Num(-value if sign else value)


def _colon(match: re.Match[str]) -> Colon:
    first, rest, meridiem = match.groups()
    texts = [first, *(p.strip() for p in rest.split(":")[1:])]
    clock = len(texts) in (2, 3) and all(len(t) == 2 and t.isdigit() for t in texts[1:])
    return Colon(
        tuple(Fraction(t) for t in texts),
        (meridiem or "").lower(),
        clock and int(texts[1]) < 60 and Fraction(first) <= 24,
    )


def _is_unit(word: str, plain_value: bool) -> bool:
    """A known unit, or - after a plain number - any other word that cannot
    change the value ("12 apples"), i.e. not a magnitude ("3 million"), a
    negation or comparison, or a function/constant name."""
    w = word.rstrip(".").split("^")[0].lower()
    if w in _UNITS:
        return True
    return (
        plain_value
        and len(w) >= 3
        and w.isalpha()
        and w not in _NOT_UNITS
        and w not in _PLAIN_NAMES
        and w not in _CONSTANT_WORDS
    )


def _unit_split(s: str) -> str | None:
    """The value before trailing unit words ("5 meters" -> "5"), or None."""
    unit = _TRAILING_WORDS.match(s)
    if not unit:
        return None
    plain_value = _PLAIN_VALUE.match(unit.group(1).strip()) is not None
    if all(_is_unit(w, plain_value) for w in unit.group(2).split()):
        return unit.group(1)
    return None


def _split_list(s: str) -> list[str]:
    """Top-level items separated by commas and by the words "and" / "or"."""
    items: list[str] = []
    for part in split_top(s, (",",)):
        if _LIST_WORDS.search(part):
            depths = _depth_scan(part)
            cuts = [m for m in _LIST_WORDS.finditer(part) if depths[m.start()] == 0]
            start = 0
            for m in cuts:
                items.append(part[start : m.start()])
                start = m.end()
            items.append(part[start:])
        else:
            items.append(part)
    return [p for p in items if p.strip()]


def _parse(s: str, depth: int) -> Value:
    s = s.strip()
    if depth > 12 or not s:
        return Text(s)
    if (number := parse_number(s)) is not None:
        return number
    if (number := _repeating_decimal(s)) is not None:
        return number
    if depth == 0 and (match := _CHOICE.match(s)):
        return Choice((match.group(1) or match.group(2)).upper())
    if match := _COLON.match(s):
        return _colon(match)
    if (unit := _unit_split(s)) is not None and (number := parse_number(unit)) is not None:
        return number  # "1,000.99 m^2"
    if s.count("\\begin{") == 1 and (match := _MATRIX.fullmatch(s)):
        body = match.group(2)
        rows = [r for r in re.split(r"\\\\", body) if r.strip()]
        return Matrix(tuple(tuple(_parse(c, depth + 1) for c in r.split("&")) for r in rows))
    s = _IN_PREFIX.sub("", s)
    if match := _SET_BUILDER.match(s):
        return _parse(match.group(1), depth + 1)  # {x | x > 2}: the condition
    if (word := _NUMBER_WORDS.get(s.lower())) is not None:
        return Num(Fraction(word))

    unions = split_top(s, ("\\cup",))
    if len(unions) > 1:
        return Union(tuple(_parse(p, depth + 1) for p in unions))

    groups = [p for p in split_top(s, (";",)) if p.strip()]
    if len(groups) > 1:
        return Seq("list", tuple(_parse(p, depth + 1) for p in groups))

    items = _split_list(s)
    if len(items) > 1:
        return Seq("list", tuple(_parse(p, depth + 1) for p in items))
    if len(items) == 1 and items[0].strip() != s:
        return _parse(items[0], depth + 1)  # "and 82" at the end of a list

    parts, ops = _split_relations(s)
    if ops[:1] == ["~"] and len(ops) == 1 and re.match(r"^[A-Za-z]\s*$", parts[0]):
        ops = ["="]  # "x \approx 11"
    if "~" in ops:
        # "x = 1/3 \approx 0.33": what follows an approximation sign is not the answer
        cut = ops.index("~")
        parts, ops = parts[: cut + 1], ops[:cut]
        if not parts[0].strip() and len(parts) == 1:
            return Text(s)
        if not ops:
            return _parse(parts[0], depth + 1)
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

    if (value := _unit_split(s)) is not None:
        return _parse(value, depth + 1)  # "5 meters", "12 cm^2": presentation
    if len(s) > 2 and _WORDS.match(s) and s.lower() not in _CONSTANT_WORDS:
        return Text(s)  # a word such as "Even", not a product of variables
    if _PLUS_MINUS.search(s) and len(_PLUS_MINUS.findall(s)) == 1:
        plus = _PLUS_MINUS.sub("+", s, count=1)
        minus = _PLUS_MINUS.sub("-", s, count=1)
        if s.lstrip().startswith("\\mp"):
            plus, minus = minus, plus
        return Seq("list", (_parse(plus, depth + 1), _parse(minus, depth + 1)))
    if _TOWER.search(s) or _BIG_FACTORIAL.search(s):
        return Text(s)  # would not finish; a judge (or nobody) decides
    expr = parse_leaf(s)
    if expr is None:
        return Text(s)
    if isinstance(expr, sympy.MatrixBase) or getattr(expr, "is_Matrix", False):
        try:
            matrix = sympy.Matrix(expr.doit())
        except Exception:
            return Text(s)
        return Matrix(tuple(tuple(Expr(x) for x in row) for row in matrix.tolist()))
    return Expr(expr)
