"""False positives Math-Verify is known for: each must stay unequal."""

from __future__ import annotations

import pytest

from tests.unit.math.conftest import decide
from verifiers.math.compare import compare_answers

UNEQUAL = [
    ("\\frac{1}{2004!}", "\\frac{1}{2006!}"),
    ("\\frac{1}{2^{99}}", "\\frac{1}{2^{98}}"),
    ("3x-y+13=0", "3x+4y+14=0"),
    ("4", "4\\sqrt{2}"),
    ("1-\\frac{1}{e}", "1+\\frac{1}{e}"),
    ("12:00", "1:00"),
    ("32, 349", "32349"),
    ("a + 3z = 0", "0"),
    ("10^{-9}", "10^{-10}"),
    ("\\sqrt{2}", "1.4142"),
    ("x^2", "|x|^2 + 1"),
]


@pytest.mark.parametrize(("reference", "answer"), UNEQUAL)
def test_not_equal(reference: str, answer: str) -> None:
    assert compare_answers(answer, reference).outcome != "equal"
    assert compare_answers(reference, answer).outcome != "equal"


@pytest.mark.parametrize(("reference", "answer"), UNEQUAL[:4])
def test_not_equal_through_the_stage(reference: str, answer: str) -> None:
    assert decide(f"The answer is $\\boxed{{{answer}}}$.", reference) == "not_equal"


def test_hard_negative_for_constants() -> None:
    result = compare_answers("\\frac{1}{2^{99}}", "\\frac{1}{2^{98}}")
    assert result.outcome == "not_equal"
    assert result.hard_negative


@pytest.mark.parametrize(
    ("answer", "reference"),
    [("|x|", "x"), ("\\sqrt{x^2}", "x"), ("-|y|", "-y")],
)
def test_probing_covers_negative_values(answer: str, reference: str) -> None:
    """Regression: probing only at positive points called |x| equal to x."""
    from verifiers.math.compare import compare_answers

    assert compare_answers(answer, reference).outcome != "equal"
    assert compare_answers(reference, answer).outcome != "equal"


def test_identities_that_hold_wherever_both_sides_are_real_still_pass() -> None:
    from verifiers.math.compare import compare_answers

    assert compare_answers("\\ln(x^2)", "2\\ln x").outcome == "equal"
    assert compare_answers("x^{1/3}", "\\sqrt[3]{x}").outcome == "equal"
