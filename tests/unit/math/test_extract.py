"""One test per extraction rule of `verifiers.extract`."""

from __future__ import annotations

import time

import pytest

from verifiers.extract import extract_final_answer, extract_reference, find_boxes


def answer(text: str) -> str | None:
    found = extract_final_answer(text)
    return None if found is None else found.answer


def method(text: str) -> str | None:
    found = extract_final_answer(text)
    return None if found is None else found.method


class TestBoxes:
    def test_last_box_wins(self) -> None:
        assert answer(r"First $\boxed{3}$. Then we see the answer is $\boxed{4}$.") == "4"

    def test_nested_braces(self) -> None:
        assert answer(r"So $\boxed{\frac{\sqrt{3}}{2}}$.") == r"\frac{\sqrt{3}}{2}"

    def test_fbox(self) -> None:
        assert answer(r"\fbox{42}") == "42"

    def test_boxes_standing_together_are_joined(self) -> None:
        assert answer(r"$\boxed{1}$ and $\boxed{-2}$") == "1, -2"
        assert answer(r"$\boxed{(3, 3)} \text{ for part (a) and } \boxed{(1, 1)}$") == (
            "(3, 3), (1, 1)"
        )

    def test_correction_is_not_joined(self) -> None:
        text = "\\boxed{7}. Wait, that is wrong: \\boxed{8}"
        assert answer(text) == "8"

    def test_unclosed_box_ignored(self) -> None:
        assert answer(r"\boxed{12} and then \boxed{3") == "12"

    def test_find_boxes_positions(self) -> None:
        boxes = find_boxes(r"a \boxed{1} b \boxed{{2}}")
        assert [content for _, _, content in boxes] == ["1", "{2}"]

    def test_boxed_without_braces(self) -> None:
        assert answer(r"so the answer is $\boxed 5$.") == "5"


class TestMarkers:
    def test_minerva(self) -> None:
        text = "Final Answer: The final answer is $\\frac{1}{2}$. I hope it is correct."
        assert answer(text) == r"\frac{1}{2}"

    def test_minerva_after_box_wins(self) -> None:
        text = "We get $\\boxed{255}$ interest.\nFinal Answer: The final answer is $10,455$."
        assert answer(text) == "10,455"

    def test_minerva_sentence(self) -> None:
        text = "Final Answer: The volume of $ABCDEFGH$ is 120. I hope it is correct."
        assert answer(text) == "120"

    def test_hope_sentence_without_marker(self) -> None:
        text = "Therefore, there are 12 distinct sequences. I hope it is correct."
        assert answer(text) == "12"

    @pytest.mark.parametrize(
        "text",
        [
            "Thus the answer is 7.",
            "The final answer is $7$.",
            "Answer: 7",
            "**Answer:** 7",
            "Answer: \\(7\\)",
        ],
    )
    def test_answer_is(self, text: str) -> None:
        assert answer(text) == "7"

    def test_chat_tokens_cut(self) -> None:
        assert answer("The answer is 19. <|im_end|>\n<|im_start|>user\nThe answer is 3") == "19"


class TestFallbacks:
    def test_bold(self) -> None:
        assert answer("Some work.\n\nSo we get **42** apples in total") == "42"

    @pytest.mark.parametrize(
        "text", ["Hence $x = 3$", "Hence \\(x = 3\\)", "Hence \\[x = 3\\]", "Hence $$x = 3$$"]
    )
    def test_last_math_span(self, text: str) -> None:
        assert answer(text) == "x = 3"

    def test_escaped_dollar_is_not_a_delimiter(self) -> None:
        assert answer("It costs $\\$5$") == "5"

    def test_number_after_last_span(self) -> None:
        text = "We have $$\\frac{a}{b} \\geq 2.$$ Therefore the error increases by 100%."
        assert answer(text) == "100%"

    def test_last_line_short(self) -> None:
        assert answer("work work\n\n-5") == "-5"

    def test_last_line_sentence(self) -> None:
        assert answer("The area is pi*r**2") == "pi*r**2"

    def test_last_number(self) -> None:
        assert method("so that would give us 2,74 maybe eventually") == "last_number"
        assert answer("so that would give us 2,74 maybe eventually") == "2,74"

    def test_nothing(self) -> None:
        assert extract_final_answer("") is None
        assert extract_final_answer("   ") is None


class TestThink:
    def test_only_text_after_think_counts(self) -> None:
        assert answer("<think>the answer is \\boxed{41}</think>The answer is $42$.") == "42"

    def test_unclosed_think_has_no_answer(self) -> None:
        assert extract_final_answer("<think>so the answer is \\boxed{42}") is None


class TestChoices:
    @pytest.mark.parametrize(
        "text", ["The answer is (B).", "\\boxed{B}", "Answer: B", "\\boxed{\\text{(B)}}"]
    )
    def test_letters(self, text: str) -> None:
        assert answer(text) in ("B", "(B)", "\\text{(B)}")


class TestReference:
    def test_bare(self) -> None:
        assert extract_reference("  $\\frac12$ ") == "\\frac12"

    def test_solution_with_box(self) -> None:
        assert extract_reference("We compute ... so $\\boxed{420}$.") == "420"

    def test_several_boxes(self) -> None:
        assert extract_reference("\\(\\boxed{1}\\) and \\(\\boxed{-2}\\).") == "1, -2"


HOSTILE = [
    "\\(" * 50_000,
    "$" * 100_000,
    "\\boxed{" * 14_000,
    "\\[" * 50_000,
    "{" * 100_000,
    "final answer is " * 6_000,
    "I hope it is correct " * 5_000,
    "**" * 50_000,
    "\\boxed{1}" * 11_000,
    "<think>" * 14_000 + "</think>" + "x" * 1000,
]


@pytest.mark.parametrize("text", HOSTILE, ids=lambda t: repr(t[:12]))
def test_hostile_inputs_are_fast(text: str) -> None:
    started = time.perf_counter()
    extract_final_answer(text)
    extract_reference(text)
    assert time.perf_counter() - started < 2.0
