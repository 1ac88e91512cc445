"""The service's estimator without a server: canaries are always wrong, counts
and fields round-trip, feedback/appeal/canary accounting with scripted judges,
and the backward correction applied to results."""

from __future__ import annotations

import asyncio
import random
import re
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.estimator import (
    ATTACK_ANSWERS,
    Correction,
    ErrorRateEstimator,
    _field,
    _parse_field,
    apply_correction,
    make_canary,
    near_miss,
)
from service.schemas import VerifyItem, VerifyResult
from service.settings import Settings
from verifiers.cascade import Plan, VerifyRequest
from verifiers.estimate import rule_fn_from_appeals
from verifiers.math import prepare_math
from verifiers.verdict import Verdict


def as_number(text: str) -> Fraction:
    match = re.fullmatch(r"\\frac\{(-?\d+)\}\{(\d+)\}", text)
    if match:
        return Fraction(int(match.group(1)), int(match.group(2)))
    if "/" in text:
        num, den = text.split("/")
        return Fraction(int(num), int(den))
    return Fraction(text)


@given(st.integers(-(10**12), 10**12), st.integers(0, 1000))
def test_near_miss_integers_are_wrong(value: int, seed: int) -> None:
    wrong = near_miss(str(value), random.Random(seed))
    assert wrong is not None and int(wrong) != value


@given(st.decimals(-1000, 1000, places=3, allow_nan=False), st.integers(0, 1000))
def test_near_miss_decimals_are_wrong(value: object, seed: int) -> None:
    text = f"{value:.3f}"
    wrong = near_miss(text, random.Random(seed))
    assert wrong is not None and Fraction(wrong) != Fraction(text)


@pytest.mark.parametrize("reference", ["1/3", "\\frac{2}{7}", "$\\frac{-5}{4}$", "\\boxed{12}"])
def test_near_miss_fractions_and_wrappers(reference: str) -> None:
    for seed in range(20):
        wrong = near_miss(reference, random.Random(seed))
        assert wrong is not None
        core = "12" if "\\boxed" in reference else reference.strip("$")
        assert as_number(wrong) != as_number(core)


def test_near_miss_choices_and_refusals() -> None:
    for seed in range(20):
        assert near_miss("(B)", random.Random(seed)) in set("ACDE")
    assert near_miss("x^2 + 1", random.Random(0)) is None
    assert near_miss("1/0", random.Random(0)) is None


def test_make_canary_kinds() -> None:
    rng = random.Random(7)
    kinds = {make_canary("42", rng)[0] for _ in range(50)}
    assert kinds == {"near_miss", "attack"}
    for _ in range(20):
        kind, answer = make_canary("\\sqrt{2}", rng)
        assert kind == "attack" and answer in ATTACK_ANSWERS


def test_fields_round_trip_with_odd_domains() -> None:
    for domain in ("", "algebra", "a|b|c", "x:y"):
        assert _parse_field(_field("feedback", "math", domain, "tp")) == (
            "feedback",
            "math",
            domain,
            "tp",
        )
    assert _parse_field("garbage") is None


# ------------------------------------------------------------------ accounting in-process
def item(response: str, reference: str, **kw: object) -> VerifyItem:
    return VerifyItem(response=response, reference=reference, **kw)  # type: ignore[arg-type]


def result(key: str, correct: bool | None, stage: str, reason: str, **kw: object) -> VerifyResult:
    base: dict[str, object] = {
        "id": key,
        "correct": correct,
        "reward": 1.0 if correct else 0.0,
        "stage": stage,
        "reason": reason,
        "cached": False,
        "extracted_answer": "x",
        "latency_ms": 0.1,
    }
    base.update(kw)
    return VerifyResult.model_validate(base)


def math_plan(response: str, reference: str) -> Plan:
    request = VerifyRequest(response=response, reference=reference)
    return Plan(request, "done", "fallback", math=prepare_math(response, reference))


def counts(stats: object, source: str, stage: str) -> dict[str, int]:
    for group in stats.groups:  # type: ignore[attr-defined]
        if (group.source, group.stage, group.domain) == (source, stage, None):
            return dict(group.counts)
    return {}


async def test_appeals_and_canaries_with_scripted_judges() -> None:
    estimator = ErrorRateEstimator(
        Settings(appeal_fraction=1.0, canary_rate=1.0, judge_calibration_fp=0.1), seed=3
    )
    asked: list[tuple[str, str]] = []

    async def judge(reference: str, answer: str, q: str | None, d: str, h: bool) -> Verdict:
        asked.append((reference, answer))
        if answer == "x+1":
            return Verdict.accept("judge", "judge_correct")
        if answer == "x+9":
            return Verdict.abstain("judge", "judge_unavailable")
        return Verdict.reject("judge", "judge_incorrect")

    estimator.set_judge(judge)
    items = [item(f"\\boxed{{{a}}}", "x+2") for a in ("x+1", "x+3", "x+9", "2+x")]
    results = [
        result("n1", False, "math", "not_equal", extracted_answer="x+1"),
        result("n2", False, "math", "not_equal", extracted_answer="x+3"),
        result("n3", False, "math", "not_equal", extracted_answer="x+9"),
        result("p1", True, "math", "equal"),
    ]
    plans = [math_plan(i.response, i.reference) for i in items]
    # plus a hard negative (never appealed) and a judge-decided item (a canary)
    items += [item("\\boxed{3}", "4"), item("\\boxed{5}", "5", task="judge")]
    results += [
        result("h1", False, "math", "not_equal", detail={"hard_negative": True}),
        result("j1", True, "judge", "judge_correct"),
    ]
    plans += [math_plan("\\boxed{3}", "4"), math_plan("\\boxed{5}", "5")]
    await estimator.record(items, results, plans)
    await estimator.drain()

    stats = await estimator.stats()
    appeal = counts(stats, "appeal", "math")
    assert appeal == {
        "appeals": 2,
        "overturned": 1,
        "upheld": 1,
        "abstained": 1,
        "rule_negatives": 3,
        "rule_positives": 1,
        "hard_negatives": 1,
    }
    canary = counts(stats, "canary", "judge")
    assert canary["probes"] == 1 and canary["rejected"] == 1
    appealed = sorted(a for _, a in asked if a.startswith("x+"))
    assert appealed == ["x+1", "x+3", "x+9"]
    assert len(asked) == 4  # three appeals and one canary (not the reference)
    assert ("5", "5") not in asked
    fn = next(g for g in stats.groups if g.source == "appeal" and g.domain is None)
    expected = rule_fn_from_appeals(1, 2, 3, 1, judge_fp=0.1)
    assert fn.false_negative is not None and fn.false_negative.value == expected.value
    await estimator.close()


async def test_no_judge_no_background_and_feedback_in_process() -> None:
    estimator = ErrorRateEstimator(Settings(appeal_fraction=1.0, canary_rate=1.0))
    items = [item("\\boxed{x+1}", "x+2", domain="alg"), item("\\boxed{1}", "1")]
    results = [result("a", False, "math", "not_equal"), result("b", True, "math", "equal")]
    await estimator.record(items, results, [math_plan(i.response, i.reference) for i in items])
    stats = await estimator.stats()
    assert stats.background == {"pending": 0, "dropped": 0}
    report = await estimator.feedback([("a", True), ("b", True), ("c", False), ("a", False)])
    assert report.recorded == 2 and report.unknown == ["c"] and report.duplicate == ["a"]
    assert report.counts["fn"] == 1 and report.counts["tp"] == 1
    stats = await estimator.stats()
    assert counts(stats, "feedback", "math") == {"fn": 1, "tp": 1}
    assert any(g.domain == "alg" for g in stats.groups)
    await estimator.close()


async def test_background_probes_are_bounded() -> None:
    estimator = ErrorRateEstimator(
        Settings(appeal_fraction=1.0, estimator_max_pending=2, estimator_concurrency=1)
    )
    release = asyncio.Event()

    async def slow_judge(reference: str, answer: str, q: str | None, d: str, h: bool) -> Verdict:
        await release.wait()
        return Verdict.reject("judge", "judge_incorrect")

    estimator.set_judge(slow_judge)
    items = [item(f"\\boxed{{x+{n}}}", "x") for n in range(1, 6)]
    results = [result(f"r{n}", False, "math", "not_equal") for n in range(5)]
    await estimator.record(items, results, [math_plan(i.response, i.reference) for i in items])
    assert estimator.dropped == 3
    release.set()
    await estimator.drain()
    assert counts(await estimator.stats(), "appeal", "math")["appeals"] == 2
    await estimator.close()


def test_apply_correction() -> None:
    corrections = {"math": Correction(fp=0.1, fn=0.2, fp_source="feedback", fn_source="appeal")}
    accepted = result("a", True, "math", "equal")
    apply_correction(accepted, corrections)
    assert accepted.reward == pytest.approx(0.9 / 0.7)
    assert accepted.detail["raw_reward"] == 1.0
    assert accepted.detail["correction"]["fn_source"] == "appeal"
    abstained = result("b", None, "math", "timeout")
    apply_correction(abstained, corrections)
    assert abstained.reward == 0.0 and abstained.detail["correction"] == {"applied": False}
    other = result("c", True, "code", "passed")
    apply_correction(other, corrections)
    assert other.reward == 1.0 and other.detail["correction"] == {"applied": False}
    useless = {"math": Correction(fp=0.5, fn=0.5, fp_source="feedback", fn_source="feedback")}
    flat = result("d", True, "math", "equal")
    apply_correction(flat, useless)
    assert flat.reward == 1.0 and flat.detail["correction"] == {"applied": False}
