"""Estimator maths: exact interval values, confusion counts, J, corrections."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verifiers.estimate import (
    Confusion,
    Rate,
    beta_quantile,
    classify,
    clopper_pearson_interval,
    correct_for_judge_error,
    corrected_reward,
    estimate_rate,
    regularized_beta,
    rule_fn_from_appeals,
    rule_fn_from_share,
    wilson_interval,
    youden_j,
)

Z95_SQUARED = 1.959963984540054**2


def binomial_tail(k: int, n: int, p: float, *, upper: bool) -> float:
    """P(X >= k) (upper) or P(X <= k) for X ~ Bin(n, p), summed exactly."""
    terms = range(k, n + 1) if upper else range(0, k + 1)
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in terms)


# ------------------------------------------------------------------ known values
def test_wilson_known_values() -> None:
    # R: prop.test(5, 10, correct = FALSE)$conf.int
    assert wilson_interval(5, 10) == pytest.approx((0.2365931, 0.7634069), abs=1e-7)
    # Wikipedia's example, 81 of 263
    assert wilson_interval(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    # k = 0: closed form upper z^2 / (n + z^2), lower exactly 0
    lower, upper = wilson_interval(0, 10)
    assert lower == 0.0
    assert upper == pytest.approx(Z95_SQUARED / (10 + Z95_SQUARED), rel=1e-12)
    lower, upper = wilson_interval(10, 10)
    assert upper == 1.0
    assert lower == pytest.approx(10 / (10 + Z95_SQUARED), rel=1e-12)


def test_wilson_by_hand() -> None:
    # 3 of 20 at 90%: z = 1.6448536269514722
    z = 1.6448536269514722
    n, p = 20, 3 / 20
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert wilson_interval(3, 20, 0.90) == pytest.approx((centre - half, centre + half), rel=1e-12)


def test_clopper_pearson_known_values() -> None:
    # R: binom.test(5, 10)$conf.int
    assert clopper_pearson_interval(5, 10) == pytest.approx((0.1870860, 0.8129140), abs=1e-7)
    # closed forms at the edges: upper = 1 - (alpha/2)^(1/n), lower = (alpha/2)^(1/n)
    assert clopper_pearson_interval(0, 10) == pytest.approx((0.0, 1 - 0.025**0.1), abs=1e-12)
    assert clopper_pearson_interval(10, 10) == pytest.approx((0.025**0.1, 1.0), abs=1e-12)
    assert clopper_pearson_interval(0, 10)[0] == 0.0
    assert clopper_pearson_interval(10, 10)[1] == 1.0


@pytest.mark.parametrize(("k", "n"), [(1, 7), (3, 20), (12, 40), (39, 40)])
def test_clopper_pearson_solves_the_binomial_tails(k: int, n: int) -> None:
    lower, upper = clopper_pearson_interval(k, n)
    assert binomial_tail(k, n, lower, upper=True) == pytest.approx(0.025, abs=1e-9)
    assert binomial_tail(k, n, upper, upper=False) == pytest.approx(0.025, abs=1e-9)


def test_regularized_beta_and_quantile() -> None:
    assert regularized_beta(0.3, 1, 1) == pytest.approx(0.3)
    assert regularized_beta(0.5, 2, 2) == pytest.approx(0.5)
    assert regularized_beta(0.25, 2, 1) == pytest.approx(0.0625)  # x^2
    assert regularized_beta(0.0, 2, 3) == 0.0
    assert regularized_beta(1.0, 2, 3) == 1.0
    assert beta_quantile(0.0625, 2, 1) == pytest.approx(0.25, abs=1e-12)


def test_empty_and_invalid_counts() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert clopper_pearson_interval(0, 0) == (0.0, 1.0)
    assert estimate_rate(0, 0) == Rate(0, 0, None, 0.0, 1.0)
    for bad in ((3, 2), (-1, 2), (0, -1)):
        with pytest.raises(ValueError):
            wilson_interval(*bad)
    with pytest.raises(ValueError):
        wilson_interval(1, 2, confidence=1.0)
    with pytest.raises(ValueError):
        estimate_rate(1, 2, method="bayes")  # type: ignore[arg-type]


# ------------------------------------------------------------------ confusion counts
def test_classify_cells() -> None:
    assert classify(True, True) == "tp"
    assert classify(True, False) == "fp"
    assert classify(False, False) == "tn"
    assert classify(False, True) == "fn"
    assert classify(None, True) == "abstain"


def test_confusion_rates_exact() -> None:
    confusion = Confusion(tp=90, fp=2, tn=48, fn=10, abstain=5)
    fn = confusion.false_negative_rate()
    fp = confusion.false_positive_rate()
    assert (fn.errors, fn.samples, fn.value) == (10, 100, 0.10)
    assert (fp.errors, fp.samples, fp.value) == (2, 50, 0.04)
    assert (fn.lower, fn.upper) == wilson_interval(10, 100)
    assert (fp.lower, fp.upper) == wilson_interval(2, 50)
    cp = confusion.false_positive_rate(method="clopper-pearson")
    assert (cp.lower, cp.upper) == clopper_pearson_interval(2, 50)
    assert Confusion(1, 2, 3, 4, 5) + Confusion(1, 1, 1, 1, 1) == Confusion(2, 3, 4, 5, 6)


def test_youden_j() -> None:
    fp = estimate_rate(2, 50)
    fn = estimate_rate(10, 100)
    j = youden_j(fp, fn)
    assert j is not None
    assert j.value == pytest.approx(1 - 0.04 - 0.10)
    assert j.lower == pytest.approx(1 - fp.upper - fn.upper)
    assert j.upper == pytest.approx(1 - fp.lower - fn.lower)
    only_fn = youden_j(None, fn)
    assert only_fn is not None and only_fn.value == pytest.approx(0.9)
    assert youden_j(None, None) is None
    assert youden_j(estimate_rate(0, 0), None) is None


# ------------------------------------------------------------------ corrections
def test_corrected_reward_by_hand() -> None:
    # FP 0.1, FN 0.2: J = 0.7
    assert corrected_reward(1.0, 0.1, 0.2) == pytest.approx(0.9 / 0.7)
    assert corrected_reward(0.0, 0.1, 0.2) == pytest.approx(-0.1 / 0.7)
    assert corrected_reward(1.0, 0.0, 0.0) == 1.0
    assert corrected_reward(0.0, 0.0, 0.0) == 0.0
    assert corrected_reward(1.0, 0.5, 0.5) is None
    with pytest.raises(ValueError):
        corrected_reward(1.0, -0.1, 0.0)


@given(
    fp=st.floats(0, 0.45),
    fn=st.floats(0, 0.45),
    truth=st.booleans(),
)
def test_corrected_reward_is_unbiased(fp: float, fn: float, truth: bool) -> None:
    # E[r | truth] over the noisy channel equals the clean reward.
    p_says_correct = (1 - fn) if truth else fp
    high = corrected_reward(1.0, fp, fn)
    low = corrected_reward(0.0, fp, fn)
    assert high is not None and low is not None
    expected = p_says_correct * high + (1 - p_says_correct) * low
    assert expected == pytest.approx(1.0 if truth else 0.0, abs=1e-9)


def test_correct_for_judge_error() -> None:
    assert correct_for_judge_error(0.3) == 0.3
    # observed = pi * 0.9 + (1 - pi) * 0.05 with pi = 0.25 -> 0.2625
    assert correct_for_judge_error(0.2625, judge_fp=0.05, judge_fn=0.1) == pytest.approx(0.25)
    assert correct_for_judge_error(0.01, judge_fp=0.05) == 0.0  # clipped
    assert correct_for_judge_error(0.99, judge_fn=0.1) == 1.0  # clipped
    with pytest.raises(ValueError):
        correct_for_judge_error(0.5, judge_fp=0.6, judge_fn=0.5)


def test_rule_fn_from_appeals_by_hand() -> None:
    # 900 rule positives, 100 appealable negatives, 10 of 40 appeals overturned.
    rate = rule_fn_from_appeals(10, 40, negatives=100, positives=900)
    share = 0.25
    assert rate.value == pytest.approx(share * 100 / (900 + share * 100))
    lo, hi = wilson_interval(10, 40)
    assert rate.lower == pytest.approx(lo * 100 / (900 + lo * 100))
    assert rate.upper == pytest.approx(hi * 100 / (900 + hi * 100))
    assert (rate.errors, rate.samples) == (10, 40)
    # judge calibration: FP 0.05, FN 0.1 shrink the share
    calibrated = rule_fn_from_appeals(
        10, 40, negatives=100, positives=900, judge_fp=0.05, judge_fn=0.1
    )
    pi = (0.25 - 0.05) / 0.85
    assert calibrated.value == pytest.approx(pi * 100 / (900 + pi * 100))
    assert rule_fn_from_appeals(0, 0, negatives=5, positives=5).value is None
    assert rule_fn_from_share(0.5, 0, 0) == 0.0


# ------------------------------------------------------------------ properties
counts = st.integers(0, 2000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n)))
confidences = st.sampled_from([0.8, 0.9, 0.95, 0.99])


@settings(max_examples=200, deadline=None)
@given(kn=counts, confidence=confidences, method=st.sampled_from(["wilson", "clopper-pearson"]))
def test_bounds_contain_the_estimate_and_stay_in_unit_interval(
    kn: tuple[int, int], confidence: float, method: str
) -> None:
    k, n = kn
    rate = estimate_rate(k, n, confidence, method)  # type: ignore[arg-type]
    assert 0.0 <= rate.lower <= rate.upper <= 1.0
    if n:
        assert rate.value is not None
        assert rate.lower <= rate.value <= rate.upper


@settings(max_examples=100, deadline=None)
@given(kn=counts)
def test_wider_at_higher_confidence(kn: tuple[int, int]) -> None:
    k, n = kn
    narrow = wilson_interval(k, n, 0.8)
    wide = wilson_interval(k, n, 0.99)
    assert wide[0] <= narrow[0] + 1e-12 and narrow[1] <= wide[1] + 1e-12


@settings(max_examples=100, deadline=None)
@given(
    overturned_appeals=st.integers(0, 300).flatmap(
        lambda n: st.tuples(st.integers(0, n), st.just(n))
    ),
    negatives=st.integers(1, 5000),
    positives=st.integers(0, 5000),
    judge_fp=st.floats(0, 0.3),
    judge_fn=st.floats(0, 0.3),
)
def test_appeal_estimate_is_a_rate(
    overturned_appeals: tuple[int, int],
    negatives: int,
    positives: int,
    judge_fp: float,
    judge_fn: float,
) -> None:
    overturned, appeals = overturned_appeals
    rate = rule_fn_from_appeals(
        overturned, appeals, negatives, positives, judge_fp=judge_fp, judge_fn=judge_fn
    )
    assert 0.0 <= rate.lower <= rate.upper <= 1.0
    if appeals:
        assert rate.value is not None
        assert rate.lower <= rate.value <= rate.upper
