"""Error-rate estimation maths: intervals, confusion counts, J, corrected rewards.

Pure functions, no I/O. The verifier is modelled as a noisy channel:

* FP rate ``rho0 = P(says correct | wrong)``,
* FN rate ``rho1 = P(says wrong | correct)``,
* Youden's ``J = 1 - rho0 - rho1`` (1 for a perfect verifier, 0 for a coin).

Every rate is reported with a binomial confidence interval: Wilson (default;
good coverage, never outside [0, 1]) or Clopper-Pearson (exact, conservative).
Neither needs scipy: the normal quantile comes from `statistics.NormalDist`
and the beta quantile from bisection on the regularised incomplete beta
function.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

IntervalMethod = Literal["wilson", "clopper-pearson"]

DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True, slots=True)
class Rate:
    """A proportion with its confidence interval.

    errors / samples: the observations (``errors`` of ``samples`` trials).
    value: the point estimate, None when there are no samples.
    lower / upper: the interval; (0, 1) when there are no samples. Always
        ``0 <= lower <= value <= upper <= 1``.
    """

    errors: int
    samples: int
    value: float | None
    lower: float
    upper: float


@dataclass(frozen=True, slots=True)
class Interval:
    """A point estimate with bounds (used for J, which may be negative)."""

    value: float
    lower: float
    upper: float


def _check_counts(k: int, n: int) -> None:
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def wilson_interval(k: int, n: int, confidence: float = DEFAULT_CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials.

    Returns (0, 1) for n = 0. The bounds lie in [0, 1] and contain k / n;
    the lower bound is exactly 0 when k = 0 and the upper exactly 1 when k = n.
    """
    _check_counts(k, n)
    _check_confidence(confidence)
    if n == 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = k / n
    z2n = z * z / n
    denominator = 1 + z2n
    centre = (p + z2n / 2) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z2n / (4 * n))
    lower = 0.0 if k == 0 else max(0.0, min(p, centre - half))
    upper = 1.0 if k == n else min(1.0, max(p, centre + half))
    return lower, upper


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _beta_continued_fraction(x: float, a: float, b: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1, a - 1
    c, d = 1.0, 1 - qab * x / qap
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1 + aa * d
        d = 1 / (d if abs(d) > tiny else tiny)
        c = 1 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1 + aa * d
        d = 1 / (d if abs(d) > tiny else tiny)
        c = 1 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return h


def regularized_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b), the CDF of Beta(a, b) at x (a, b > 0)."""
    if a <= 0 or b <= 0:
        raise ValueError("a and b must be > 0")
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = a * math.log(x) + b * math.log1p(-x) - _log_beta(a, b)
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_continued_fraction(x, a, b) / a
    return 1 - math.exp(log_front) * _beta_continued_fraction(1 - x, b, a) / b


def beta_quantile(q: float, a: float, b: float) -> float:
    """The x with I_x(a, b) = q, by bisection (absolute error < 1e-13)."""
    if not 0.0 <= q <= 1.0:
        raise ValueError("q must be in [0, 1]")
    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if regularized_beta(mid, a, b) < q:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-14:
            break
    return (lo + hi) / 2


def clopper_pearson_interval(
    k: int, n: int, confidence: float = DEFAULT_CONFIDENCE
) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval for k successes in n trials.

    lower = Beta(alpha/2; k, n-k+1) quantile (0 when k = 0), upper =
    Beta(1-alpha/2; k+1, n-k) quantile (1 when k = n). (0, 1) for n = 0.
    """
    _check_counts(k, n)
    _check_confidence(confidence)
    if n == 0:
        return 0.0, 1.0
    alpha = 1 - confidence
    p = k / n
    lower = 0.0 if k == 0 else min(p, beta_quantile(alpha / 2, k, n - k + 1))
    upper = 1.0 if k == n else max(p, beta_quantile(1 - alpha / 2, k + 1, n - k))
    return lower, upper


def interval(
    k: int, n: int, confidence: float = DEFAULT_CONFIDENCE, method: IntervalMethod = "wilson"
) -> tuple[float, float]:
    """The binomial interval of `method` for k of n."""
    if method == "wilson":
        return wilson_interval(k, n, confidence)
    if method == "clopper-pearson":
        return clopper_pearson_interval(k, n, confidence)
    raise ValueError(f"unknown interval method {method!r}")


def estimate_rate(
    k: int, n: int, confidence: float = DEFAULT_CONFIDENCE, method: IntervalMethod = "wilson"
) -> Rate:
    """k of n as a `Rate` (point estimate k / n and its interval)."""
    lower, upper = interval(k, n, confidence, method)
    return Rate(k, n, k / n if n else None, lower, upper)


@dataclass(frozen=True, slots=True)
class Confusion:
    """Verdicts against ground truth.

    tp: said correct, was correct.   fp: said correct, was wrong.
    tn: said wrong, was wrong.       fn: said wrong, was correct.
    abstain: the verifier did not decide (not part of either rate).
    """

    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0
    abstain: int = 0

    def __add__(self, other: Confusion) -> Confusion:
        return Confusion(
            self.tp + other.tp,
            self.fp + other.fp,
            self.tn + other.tn,
            self.fn + other.fn,
            self.abstain + other.abstain,
        )

    def false_negative_rate(
        self, confidence: float = DEFAULT_CONFIDENCE, method: IntervalMethod = "wilson"
    ) -> Rate:
        """rho1 = fn / (fn + tp): how often a correct answer is rejected."""
        return estimate_rate(self.fn, self.fn + self.tp, confidence, method)

    def false_positive_rate(
        self, confidence: float = DEFAULT_CONFIDENCE, method: IntervalMethod = "wilson"
    ) -> Rate:
        """rho0 = fp / (fp + tn): how often a wrong answer is accepted."""
        return estimate_rate(self.fp, self.fp + self.tn, confidence, method)


def classify(said: bool | None, truth: bool) -> str:
    """The confusion cell ("tp", "fp", "tn", "fn", "abstain") of one labelled verdict."""
    if said is None:
        return "abstain"
    if said:
        return "tp" if truth else "fp"
    return "fn" if truth else "tn"


def youden_j(fp: Rate | None, fn: Rate | None) -> Interval | None:
    """J = 1 - FP - FN with conservative bounds (1 - FP_hi - FN_hi, 1 - FP_lo - FN_lo).

    A missing or empty rate counts as 0 with no uncertainty; None when both are.
    """
    known = [r for r in (fp, fn) if r is not None and r.value is not None]
    if not known:
        return None
    value = 1 - sum(r.value for r in known if r.value is not None)
    lower = 1 - sum(r.upper for r in known)
    upper = 1 - sum(r.lower for r in known)
    return Interval(value, lower, upper)


def corrected_reward(reward: float, fp: float, fn: float) -> float | None:
    """Backward-corrected reward r = (y - FP) / (1 - FP - FN).

    Unbiased for the clean reward when FP and FN are the channel's true rates:
    E[r | correct] = 1 and E[r | wrong] = 0. The result may lie outside [0, 1]
    (that is what makes it unbiased). None when J = 1 - FP - FN <= 0, where
    the verdicts carry no information and no correction exists.
    """
    if not (0.0 <= fp <= 1.0 and 0.0 <= fn <= 1.0):
        raise ValueError("rates must be in [0, 1]")
    j = 1.0 - fp - fn
    if j <= 0.0:
        return None
    return (reward - fp) / j


def correct_for_judge_error(observed: float, judge_fp: float = 0.0, judge_fn: float = 0.0) -> float:
    """True share of correct answers from the judge's observed acceptance rate.

    observed = pi (1 - judge_fn) + (1 - pi) judge_fp, solved for pi and
    clipped to [0, 1]. Identity when the judge's error rates are 0. Raises
    when judge_fp + judge_fn >= 1 (such a judge carries no information).
    """
    if not (0.0 <= judge_fp < 1.0 and 0.0 <= judge_fn < 1.0):
        raise ValueError("judge error rates must be in [0, 1)")
    j = 1.0 - judge_fp - judge_fn
    if j <= 0.0:
        raise ValueError("judge_fp + judge_fn must be < 1")
    return min(1.0, max(0.0, (observed - judge_fp) / j))


def rule_fn_from_share(share: float, negatives: int, positives: int) -> float:
    """rho1 from the share of truly correct answers among rule negatives.

    Rule positives are taken as correct (rule FP ~ 0), so
    rho1 = share * N_neg / (N_pos + share * N_neg). Increasing in `share`.
    """
    if negatives < 0 or positives < 0:
        raise ValueError("counts must be >= 0")
    missed = share * negatives
    total = positives + missed
    return missed / total if total > 0 else 0.0


def rule_fn_from_appeals(
    overturned: int,
    appeals: int,
    negatives: int,
    positives: int,
    *,
    judge_fp: float = 0.0,
    judge_fn: float = 0.0,
    confidence: float = DEFAULT_CONFIDENCE,
    method: IntervalMethod = "wilson",
) -> Rate:
    """The rule stage's FN rate estimated from appeals to the judge.

    `overturned` of `appeals` sampled rule negatives were accepted by the
    judge; the rule stage saw `negatives` appealable negatives and
    `positives` positives in all. The overturn rate's interval is corrected
    for the judge's error rates (`correct_for_judge_error`) and mapped
    through `rule_fn_from_share`; both maps are monotone, so the bounds map
    to bounds. The judge's rates are treated as known. The returned `Rate`
    keeps the observations (overturned of appeals).
    """
    overturn = estimate_rate(overturned, appeals, confidence, method)
    if overturn.value is None:
        return overturn

    def fn(q: float) -> float:
        share = correct_for_judge_error(q, judge_fp, judge_fn)
        return rule_fn_from_share(share, negatives, positives)

    value = fn(overturn.value)
    lower = min(value, fn(overturn.lower))
    upper = max(value, fn(overturn.upper))
    return Rate(overturned, appeals, value, lower, upper)
