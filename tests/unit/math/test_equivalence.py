"""Equivalence families of the math stage, and our own held-out-style set
(`data/equivalents.jsonl`: differently written equal answers and near misses)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.math.conftest import decide
from verifiers.math.compare import compare_answers
from verifiers.math.normalize import normalize_answer
from verifiers.math.numbers import parse_number

DATA = Path(__file__).parent / "data" / "equivalents.jsonl"
PAIRS = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]


def test_the_set_covers_every_family() -> None:
    families = {pair["family"] for pair in PAIRS}
    assert {
        "number",
        "percent",
        "expr",
        "set",
        "tuple",
        "interval",
        "matrix",
        "equation",
        "function",
        "degrees",
        "units",
        "text",
        "time",
        "choice",
        "extraction",
    } <= families
    assert len(PAIRS) >= 100
    assert sum(1 for pair in PAIRS if not pair["equal"]) >= 30


@pytest.mark.parametrize("pair", PAIRS, ids=[f"{p['family']}:{p['response'][:30]}" for p in PAIRS])
def test_equivalents(pair: dict[str, object]) -> None:
    outcome = decide(str(pair["response"]), str(pair["reference"]))
    if pair["equal"]:
        assert outcome == "equal"
    else:
        # never a false positive; a near miss is rejected (or, for free text, left to a judge)
        assert outcome != "equal"
        if pair["family"] != "text":
            assert outcome in ("not_equal", "no_answer")


def eq(answer: str, reference: str) -> str:
    return compare_answers(answer, reference).outcome


class TestNumbers:
    @pytest.mark.parametrize(
        ("text", "value"),
        [
            ("7,425,000", 7425000),
            ("1 000", 1000),
            ("-12.50", -12.5),
            ("\\frac{3}{4}", 0.75),
            ("3/4", 0.75),
            ("2\\frac{1}{2}", 2.5),
            ("1.5\\times 10^{3}", 1500),
            ("2e-3", 0.002),
        ],
    )
    def test_parse_number(self, text: str, value: float) -> None:
        number = parse_number(normalize_answer(text))
        assert number is not None
        assert float(number.value) == pytest.approx(value)

    def test_decimal_comma_only_against_a_decimal(self) -> None:
        assert eq("1,22", "1.22") == "equal"
        assert eq("0,111", "0.111") == "equal"
        assert eq("1,234", "1.234") == "not_equal"  # a thousands separator

    def test_relative_tolerance(self) -> None:
        assert eq("3.14159265", "\\pi") == "equal"
        assert eq("3.15", "\\pi") == "not_equal"

    def test_short_rounding_abstains(self) -> None:
        assert eq("0.33", "\\frac{1}{3}") == "unparseable"
        assert eq("1.41", "\\sqrt{2}") == "unparseable"

    def test_percent(self) -> None:
        assert eq("50\\%", "0.5") == "equal"
        assert eq("50\\%", "50") == "equal"
        assert eq("5\\%", "0.5") == "not_equal"


class TestStructures:
    def test_sets_are_unordered_tuples_are_not(self) -> None:
        assert eq("\\{2, 1\\}", "\\{1, 2\\}") == "equal"
        assert eq("(2, 1)", "(1, 2)") == "not_equal"
        assert eq("2, 1", "1, 2") == "equal"

    def test_duplicates_in_a_solution_list(self) -> None:
        assert eq("(1,2), (3,4), (1,2)", "(1,2), (3,4)") == "equal"

    def test_interval_inequality(self) -> None:
        assert eq("x \\in [-2, 7]", "-2 \\le x \\le 7") == "equal"
        assert eq("(-\\infty, 3)", "x < 3") == "equal"
        assert eq("x \\ne 3", "(-\\infty, 3) \\cup (3, \\infty)") == "equal"
        assert eq("0 < f(x) < 1", "(0, 1)") == "equal"

    def test_matrix_arithmetic(self) -> None:
        first = "\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix}"
        left = first + " + \\begin{pmatrix}5 & 6 \\\\ 7 & 8\\end{pmatrix}"
        assert eq(left, "\\begin{pmatrix}6 & 8 \\\\ 10 & 12\\end{pmatrix}") == "equal"

    def test_named_assignments(self) -> None:
        assert eq("(5,2),(7,2)", "p=5,q=2;p=7,q=2") == "equal"
        assert eq("(2,5),(2,7)", "p=5,q=2;p=7,q=2") == "not_equal"

    def test_labelled_values(self) -> None:
        assert eq("1", "|AB| = 1") == "equal"
        assert eq("7:32", "S_{MBCN}:S=7:32") == "equal"
        assert eq("0", "a + 3z = 0") == "not_equal"

    def test_plus_minus(self) -> None:
        assert eq("1 \\pm \\sqrt{2}", "1+\\sqrt{2}, 1-\\sqrt{2}") == "equal"

    def test_function_renaming(self) -> None:
        assert eq("g(t) = t^2 + 1", "g(x) = x^2 + 1") == "equal"


class TestTextAndChoices:
    def test_text_wrappers(self) -> None:
        assert eq("\\textbf{Even}", "\\text{even}") == "equal"

    def test_choice_with_content(self) -> None:
        assert eq("(B) 12", "B") == "equal"
        assert eq("(C) 12", "B") == "not_equal"

    def test_times(self) -> None:
        assert eq("16:30", "4:30 p.m.") == "equal"
        assert eq("12:00", "1:00") == "not_equal"
