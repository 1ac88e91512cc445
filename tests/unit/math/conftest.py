"""Helpers for the math-stage tests."""

from __future__ import annotations

from verifiers.math import compare_task, fast_compare, prepare_math
from verifiers.verdict import Verdict


def decide(response: str, reference: str) -> str:
    """The outcome of the math stage in-process: equal / not_equal /
    unparseable / no_answer (benign inputs only - no time bound here)."""
    item = prepare_math(response, reference)
    fast: Verdict | None = fast_compare(item)
    if fast is not None:
        if fast.correct is None:
            return "unparseable"
        return fast.reason
    assert item.answer is not None
    outcome, _, _ = compare_task(item.answer, item.reference, 1e-6)
    return outcome
