"""Units written as plain words, degrees vs radians, the reals and the empty set."""

from __future__ import annotations

import pytest

from verifiers.math.compare import compare_answers
from verifiers.math.normalize import normalize_answer


@pytest.mark.parametrize(
    ("answer", "reference"),
    [
        ("12 apples", "12"),
        ("1,000 people", "1000"),
        ("3 hours", "3"),
        ("30^\\circ", "\\frac{\\pi}{6}"),
        ("\\frac{\\pi}{4}", "45^\\circ"),
        ("\\sin 30^\\circ", "\\frac{1}{2}"),
        ("\\tan 45^\\circ", "1"),
        ("90^\\circ", "90"),
        ("(-\\infty, \\infty)", "\\mathbb{R}"),
        ("\\{\\}", "\\emptyset"),
        ("\\varnothing", "∅"),
        ("\\{x \\mid x > 2\\}", "(2, \\infty)"),
        ("\\{x : x \\le 1\\}", "(-\\infty, 1]"),
        ("five", "5"),
        ("Twelve", "12"),
    ],
)
def test_equivalent(answer: str, reference: str) -> None:
    assert compare_answers(answer, reference).outcome == "equal"
    assert compare_answers(reference, answer).outcome == "equal"


@pytest.mark.parametrize(
    ("answer", "reference"),
    [
        ("3 million", "3"),  # magnitude words are not units
        ("5 hundred", "5"),
        ("7 dozen", "7"),
        ("12 apples", "13"),
        ("2 x", "2"),  # a one-letter word is a variable
        ("2 pi", "2"),
        ("45^\\circ", "\\frac{\\pi}{3}"),
        ("\\tan 30^\\circ", "1"),
        ("\\mathbb{R}", "(0, \\infty)"),
        ("\\{\\}", "\\{0\\}"),
        ("\\{x | x > 2\\}", "[2, \\infty)"),
        ("five", "6"),
    ],
)
def test_not_equivalent(answer: str, reference: str) -> None:
    assert compare_answers(answer, reference).outcome != "equal"
    assert compare_answers(reference, answer).outcome != "equal"


def test_normalisation_of_the_new_forms_is_idempotent() -> None:
    for text in ("\\sin 30^\\circ + \\cos 60°", "\\mathbb{R}", "\\{ \\}", "x \\in \\mathbb R"):
        once = normalize_answer(text)
        assert normalize_answer(once) == once
