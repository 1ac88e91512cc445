"""Canonical text form of a math answer.

`normalize_answer` is cheap, pure string work (no sympy), idempotent, and is
what the exact fast path and the cache key use: two answers with the same
normal form are equal without any parsing.
"""

from __future__ import annotations

import functools
import re

_WRAPPERS = (
    "text",
    "textbf",
    "textnormal",
    "textsf",
    "texttt",
    "textup",
    "mathnormal",
    "bm",
    "textit",
    "textrm",
    "mathrm",
    "mathbf",
    "mathit",
    "mathsf",
    "mathtt",
    "boldsymbol",
    "mbox",
    "operatorname",
    "displaystyle",
    "hbox",
)
_SPACING = re.compile(r"(?<!\\)\\(?:[,;:! ]|quad|qquad|enspace|thinspace|medspace|thickspace)")
_SIZING = re.compile(
    r"\\(?:left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|big|Big|bigg|Bigg)(?![a-zA-Z])"
)
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°|\\degree(?![a-zA-Z])|\\circ(?![a-zA-Z])")
_FRAC_SHORT = re.compile(r"\\frac\s*(\d)\s*(\d)")
_FRAC_HALF_SHORT = re.compile(r"\\frac\s*\{([^{}]*)\}\s*(\d)")
_FRAC_FIRST_SHORT = re.compile(r"\\frac\s*(\d)\s*\{")
_SQRT_SHORT = re.compile(r"\\sqrt\s*(\d+|[a-zA-Z])")
_SPACES = re.compile(r"\s+")
#: ``\%`` (and any run of backslashes before ``%``, so one pass is enough).
_ESCAPED_PERCENT = re.compile(r"\\+%")
#: Every space except one between ``!``/``<``/``>`` and ``=`` (see `compact`).
_DROPPABLE_SPACE = re.compile(r"(?<![!<>]) | (?!=)")
# ``\\frac`` etc.: a string escaped twice (JSON inside a Python literal).
_DOUBLE_ESCAPED = re.compile(
    r"(?<!\\)\\\\(?=(?:frac|dfrac|tfrac|left|right|sqrt|begin|end|pi|cdot|times|le|leq|ge"
    r"|geq|ne|neq|text|textbf|mathrm|infty|in|cup|cap|pm|mp|circ|approx|alpha|beta|theta)"
    r"(?![a-zA-Z]))"
)
_TEXT_COMMAND = r"\\(?:text|textbf|textnormal|textrm|textit|textsf|mbox|mathrm|operatorname)"
# A trailing ``\text{meters}``-style unit after a value (not ``\text{ p.m.}``).
_TRAILING_TEXT_UNIT = re.compile(
    rf"(?<=[\d}})%])\s*(?:{_TEXT_COMMAND}\s*\{{\s*([A-Za-z][A-Za-z .]*?)\s*\}}"
    r"(?:\s*\^\s*\{?\s*[23]\s*\}?)?\s*)+$"
)
_THOUSANDS_THIN = re.compile(r",\s*\\!\s*")
_PERCENT_WORD = re.compile(r"(?<=\d)\s*(?:\\text\{\s*)?(?:pct|percent|percentage)\.?\}?\s*$", re.I)
_TIME_OF_DAY = re.compile(r"^\s*[ap]\.?\s*m\.?\s*$", re.I)
_FRAC_ALIASES = re.compile(r"\\[dt]frac(?![a-zA-Z])")
_BINOM_ALIASES = re.compile(r"\\[dt]binom(?![a-zA-Z])")
_REALS = re.compile(r"\\mathbb\s*(?:\{\s*R\s*\}|R(?![a-zA-Z]))")
_EMPTY_SET = re.compile(r"\\\{\s*\\\}|∅")
_TRIG = re.compile(r"\\(?:sin|cos|tan|cot|sec|csc)(?![a-zA-Z])")
_DEGREE_VALUE = re.compile(r"(\d+(?:\.\d+)?)\s*(?:\^\s*\{?\s*\\circ\s*\}?|°)")
#: A degree mark anywhere (tested on the raw answer, before normalisation drops it).
DEGREE_MARK = re.compile(r"\\circ(?![a-zA-Z])|°|\\degree(?![a-zA-Z])")

_WORD_OPS = (
    ("\\leqslant", "\\le"),
    ("\\geqslant", "\\ge"),
    ("\\leq", "\\le"),
    ("\\geq", "\\ge"),
    ("\\neq", "\\ne"),
    ("≤", "\\le"),
    ("≥", "\\ge"),
    ("≠", "\\ne"),
    ("!=", "\\ne"),
    ("<=", "\\le"),
    (">=", "\\ge"),
    ("\\lt", "<"),
    ("\\gt", ">"),
    ("−", "-"),
    ("\\infty", "\\infty"),
    ("∞", "\\infty"),
    ("\\lbrace", "\\{"),
    ("\\rbrace", "\\}"),
    ("\\lbrack", "["),
    ("\\rbrack", "]"),
    ("\\emptyset", "\\varnothing"),
    ("×", "\\times"),
    ("·", "\\cdot"),
    ("π", "\\pi"),
    ("√", "\\sqrt"),
    ("²", "^2"),
    ("³", "^3"),
    ("€", ""),
    ("£", ""),
    ("¥", ""),
)


def _matching_brace(text: str, open_index: int) -> int:
    depth = 0
    i = open_index
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def unwrap_commands(text: str, names: tuple[str, ...] = _WRAPPERS) -> str:
    """Replace ``\\name{content}`` by ``content`` for each formatting command."""
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        if text[i] == "\\":
            j = i + 1
            while j < n and text[j].isalpha():
                j += 1
            name = text[i + 1 : j]
            if name in names:
                k = j
                while k < n and text[k] == " ":
                    k += 1
                if k < n and text[k] == "{":
                    end = _matching_brace(text, k)
                    if end > 0:
                        # Recurse on the content; keep a space so words stay apart.
                        out.append(unwrap_commands(text[k + 1 : end], names))
                        i = end + 1
                        continue
                if name == "displaystyle":
                    i = j
                    continue
            out.append(text[i:j] if j > i + 1 else text[i : i + 2])
            i = j if j > i + 1 else i + 2
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


@functools.lru_cache(maxsize=8192)  # pure; answers and references repeat across samples
def normalize_answer(answer: str) -> str:
    """Canonical form of an answer string. Pure, idempotent, never raises.

    Removes presentation-only LaTeX (``\\left``, spacing, ``\\text{}``-style
    wrappers, ``$``), unifies operator spellings (``\\leq`` -> ``\\le``,
    ``\\dfrac`` -> ``\\frac``), drops degree marks, expands ``\\frac12`` and
    ``\\sqrt2``, collapses whitespace and a trailing period.
    """
    current = answer
    for _ in range(4):  # rewrites can expose one another; stop at a fixed point
        following = _normalize_once(current)
        if following == current:
            break
        current = following
    return current


def _normalize_once(answer: str) -> str:
    s = answer.strip()
    if not s:
        return ""
    if _DOUBLE_ESCAPED.search(s):
        s = s.replace("\\\\", "\\")
    s = s.replace("\\$", "").replace("$", "")
    s = _ESCAPED_PERCENT.sub("%", s)
    s = _THOUSANDS_THIN.sub(",", s).replace("{,}", ",")
    s = _PERCENT_WORD.sub("%", s)
    s = _strip_text_unit(s)
    s = _SPACING.sub(" ", s)
    s = s.replace("~", " ")
    s = _SIZING.sub("", s)
    s = _REALS.sub(r"(-\\infty,\\infty)", s)
    s = _EMPTY_SET.sub(r"\\varnothing", s)
    s = unwrap_commands(s)
    s = _FRAC_ALIASES.sub(r"\\frac", s)
    s = _BINOM_ALIASES.sub(r"\\binom", s)
    for old, new in _WORD_OPS:
        s = s.replace(old, new)
    if _TRIG.search(s):
        # inside trigonometry a degree mark changes the value: 30° = pi/6
        s = _DEGREE_VALUE.sub(r"(\1\\pi/180)", s)
    s = _DEGREES.sub("", s)
    s = _FRAC_SHORT.sub(r"\\frac{\1}{\2}", s)
    s = _FRAC_HALF_SHORT.sub(r"\\frac{\1}{\2}", s)
    s = _FRAC_FIRST_SHORT.sub(r"\\frac{\1}{", s)
    s = _SQRT_SHORT.sub(r"\\sqrt{\1}", s)
    s = _SPACES.sub(" ", s).strip()
    while s.endswith(".") or s.endswith("\\"):
        s = s[:-1].rstrip()
    return s


def _strip_text_unit(s: str) -> str:
    """``\\frac{1}{3} \\text{ meters}`` -> ``\\frac{1}{3}``: a unit written
    as text after a value is presentation."""
    match = _TRAILING_TEXT_UNIT.search(s)
    if match is None or _TIME_OF_DAY.match(match.group(1)):
        return s
    head = s[: match.start()].rstrip()
    return head if head else s


def compact(answer: str) -> str:
    """Normal form with the spaces removed (for exact comparison).

    A space between ``!``, ``<`` or ``>`` and ``=`` stays: removing it would
    write a relation the text did not contain (``5! = 120`` is not ``5 != 120``),
    and compacting again would turn that into ``\\ne`` (compact must be idempotent).
    """
    return _DROPPABLE_SPACE.sub("", normalize_answer(answer))
