"""Warm-up of a math worker: the LaTeX parser's first-use costs, paid at start.

The LaTeX grammar's parser (ANTLR, inside latex2sympy2_extended) builds its
prediction tables lazily: the first answer of a new shape (``\\frac{1}{2}(\\sqrt{5}-1)``,
``x^2+\\sin(y)``) costs 20-70 ms, the next one of that shape 2-4 ms; sympy
fills caches the same way. A fresh worker would pay this on the first batch
it sees, inside request latency. `warm_up` (run by `verifiers.pool_worker`
before the worker reports ready, about half a second) parses one answer of
each common shape and compares a few pairs instead.

The answers are generic shapes of competition-math answers, written for this
purpose; none comes from a benchmark or test set.
"""

from __future__ import annotations

import contextlib

#: One answer per common shape, in the forms models write them.
WARM_UP_ANSWERS: tuple[str, ...] = (
    # numbers, fractions, roots, powers
    "\\frac{3}{4}",
    "-\\frac{7}{2}",
    "\\dfrac{2\\sqrt{3}}{3}",
    "\\frac{1}{2}(\\sqrt{3}+1)",
    "\\frac{\\sqrt{3}+1}{2}",
    "3\\sqrt{2}",
    "4\\sqrt{2}-2",
    "\\sqrt[3]{16}",
    "2^{10}",
    "10^{-3}",
    "1.5 \\times 10^{3}",
    "2 \\cdot 3^{2}",
    "2\\frac{1}{3}",
    "\\frac{a+b}{c}",
    "\\frac{x+1}{x-1}",
    "\\sqrt{x^2+y^2}",
    # polynomials and products
    "x^2 - 5x + 6",
    "(x-2)(x-3)",
    "2x^3+3x^2-x+7",
    "a_1 + a_2",
    "-2(x - 1)^2 + 5",
    # functions and constants
    "\\sin^2 x + \\cos^2 x",
    "\\frac{\\sin\\theta}{\\cos\\theta}",
    "\\cos\\left(\\frac{\\pi}{3}\\right)",
    "\\arctan 1",
    "\\sec x",
    "\\log_2 8",
    "\\ln(e^2)",
    "e^{i\\pi}",
    "2\\pi r",
    "\\frac{5\\pi}{6}",
    "\\pi - 2",
    "3 + 4i",
    "|x - 1|",
    "\\binom{10}{3}",
    "5!",
    "\\lfloor 3.7 \\rfloor",
    # tuples, sets, intervals, matrices
    "(3, -4)",
    "\\left( \\frac{4}{5}, \\frac{1}{5} \\right)",
    "\\{1, 2, 3\\}",
    "[1, 5)",
    "(-\\infty, 2] \\cup (3, \\infty)",
    "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
    "\\begin{pmatrix} -1 \\\\ 2 \\\\ 0 \\end{pmatrix}",
    # equations and relations
    "x = 5",
    "y = 2x + 3",
    "x^2 + y^2 = 25",
    "x \\le 4",
    "-2 < x < 3",
    "x \\in (0, 1]",
    "1 \\pm \\sqrt{2}",
    # units, percentages, money, degrees
    "150^\\circ",
    "12\\%",
    "\\$12.50",
    "15 \\text{ cm}^2",
)

#: A few comparisons for sympy's own first-use costs (probing and simplification).
WARM_UP_PAIRS: tuple[tuple[str, str], ...] = (
    ("\\frac{1}{2}(\\sqrt{3}+1)", "\\frac{\\sqrt{3}+1}{2}"),
    ("x^2 - 5x + 6", "(x-2)(x-3)"),
    ("\\frac{5\\pi}{6}", "150^\\circ"),
    ("(-\\infty, 2] \\cup (3, \\infty)", "(-\\infty,2]\\cup(3,\\infty)"),
)


def warm_up() -> None:
    """Parse every warm-up answer and compare the warm-up pairs (never raises)."""
    from verifiers.math.compare import DEFAULT_TOLERANCE, compare_answers
    from verifiers.math.parse import parse_answer

    for answer in WARM_UP_ANSWERS:
        with contextlib.suppress(Exception):
            parse_answer(answer)
    for answer, reference in WARM_UP_PAIRS:
        with contextlib.suppress(Exception):
            compare_answers(answer, reference, DEFAULT_TOLERANCE)
