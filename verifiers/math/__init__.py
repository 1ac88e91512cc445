"""The symbolic math stage.

Split like Math-Verify into *extract/parse* and *compare*, with one rule:
only cheap, bounded string work happens in the caller (`prepare_math`,
`fast_compare`); everything that touches sympy goes through a `WorkerPool`
(`compare_task`), where a hard deadline and a memory limit apply.
"""

from __future__ import annotations

from dataclasses import dataclass

from verifiers.extract import extract_final_answer, extract_reference
from verifiers.math.normalize import compact, normalize_answer
from verifiers.math.numbers import numbers_equal, parse_number_pair, rounding_only
from verifiers.pickling import positional_pickle
from verifiers.pool import TaskOutcome, WorkerPool
from verifiers.verdict import Reason, Stage, Verdict

DEFAULT_TOLERANCE = 1e-6

__all__ = [
    "DEFAULT_TOLERANCE",
    "MathItem",
    "compare_task",
    "fast_compare",
    "normalize_answer",
    "prepare_math",
    "verdict_from_outcome",
    "verify_math",
]


@positional_pickle
@dataclass(frozen=True, slots=True)
class MathItem:
    """A response reduced to what the comparison needs.

    answer: the extracted final answer (None when the response has none).
    method: the extraction rule that found it.
    answer_key / reference_key: compact normal forms - the cache key material.
    """

    answer: str | None
    method: str
    reference: str
    answer_key: str
    reference_key: str


def prepare_math(response: str, reference: str) -> MathItem:
    """Extract and normalise both sides. Cheap and bounded; never raises."""
    found = extract_final_answer(response)
    reference_answer = extract_reference(reference)
    if found is None:
        return MathItem(None, "none", reference_answer, "", compact(reference_answer))
    return MathItem(
        found.answer,
        found.method,
        reference_answer,
        compact(found.answer),
        compact(reference_answer),
    )


def fast_compare(item: MathItem, tolerance: float = DEFAULT_TOLERANCE) -> Verdict | None:
    """Decide without sympy when possible: identical normal forms, or two
    plain numbers. None means "needs the symbolic comparison"."""
    if item.answer is None:
        return Verdict.reject(Stage.MATH, Reason.NO_ANSWER, detail={"extraction": "none"})
    if item.answer_key and item.answer_key == item.reference_key:
        return _verdict(item, "equal", "exact", hard=False)
    a, r = parse_number_pair(normalize_answer(item.answer), normalize_answer(item.reference))
    if a is not None and r is not None:
        if numbers_equal(a, r, tolerance):
            return _verdict(item, "equal", "number", hard=False)
        if rounding_only(a, r):
            return _verdict(item, "unparseable", "rounded", hard=False)
        return _verdict(item, "not_equal", "number", hard=True)
    return None


def compare_task(answer: str, reference: str, tolerance: float) -> tuple[str, str, bool]:
    """Worker-process entry point: (outcome, method, hard_negative)."""
    from verifiers.math.compare import compare_answers

    result = compare_answers(answer, reference, tolerance)
    return result.outcome, result.method, result.hard_negative


def _verdict(item: MathItem, outcome: str, method: str, *, hard: bool) -> Verdict:
    detail: dict[str, object] = {
        "method": method,
        "extraction": item.method,
        "reference_answer": item.reference,
    }
    if outcome == "equal":
        return Verdict.accept(Stage.MATH, Reason.EQUAL, extracted_answer=item.answer, detail=detail)
    if outcome == "not_equal":
        detail["hard_negative"] = hard
        return Verdict.reject(
            Stage.MATH, Reason.NOT_EQUAL, extracted_answer=item.answer, detail=detail
        )
    return Verdict.abstain(
        Stage.MATH, Reason.UNPARSEABLE, extracted_answer=item.answer, detail=detail
    )


def verdict_from_outcome(item: MathItem, outcome: TaskOutcome) -> Verdict:
    """Turn a worker outcome for `compare_task` into a verdict (abstain on
    timeout or crash, never a guess)."""
    if outcome.ok:
        result, method, hard = outcome.value
        return _verdict(item, result, method, hard=hard)
    if outcome.error == "timeout":
        return Verdict.abstain(
            Stage.MATH,
            Reason.TIMEOUT,
            extracted_answer=item.answer,
            detail={"error": "comparison exceeded its time limit", "seconds": outcome.seconds},
        )
    return Verdict.abstain(
        Stage.MATH, Reason.ERROR, extracted_answer=item.answer, detail={"error": outcome.error}
    )


async def verify_math(
    pool: WorkerPool,
    response: str,
    reference: str,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    timeout: float | None = None,
) -> Verdict:
    """Full math verification of one response (asyncio). Never raises."""
    item = prepare_math(response, reference)
    fast = fast_compare(item, tolerance)
    if fast is not None:
        return fast
    assert item.answer is not None
    outcome = await pool.run(compare_task, item.answer, item.reference, tolerance, timeout=timeout)
    return verdict_from_outcome(item, outcome)
