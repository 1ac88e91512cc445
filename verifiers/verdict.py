"""The result type shared by every stage of the cascade.

A `Verdict` keeps *incorrect*, *abstain*, *timeout* and *error* distinct:
`correct` is ``True`` / ``False`` only when a stage decided, ``None`` when it
could not (then `reason` says why). Stages never raise on model text; they
return a verdict.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from verifiers.pickling import positional_pickle

VERIFIER_VERSION = "0.2.0"


class Stage:
    """Names of the stages that can decide a verdict."""

    GUARD = "guard"
    MATH = "math"
    CODE = "code"
    JUDGE = "judge"
    NONE = "none"


class Reason:
    """Machine-readable reason codes shared across stages.

    Stage-specific reasons use a prefix: guards use ``guard:<name>``.
    """

    # math
    EQUAL = "equal"
    NOT_EQUAL = "not_equal"
    NO_ANSWER = "no_answer"
    UNPARSEABLE = "unparseable"
    # code
    PASSED = "passed"
    WRONG_ANSWER = "wrong_answer"
    COMPILE_ERROR = "compile_error"
    RUNTIME_ERROR = "runtime_error"
    MEMORY_LIMIT = "memory_limit"
    OUTPUT_LIMIT = "output_limit"
    SANDBOX_ERROR = "sandbox_error"
    # judge
    JUDGE_CORRECT = "judge_correct"
    JUDGE_INCORRECT = "judge_incorrect"
    JUDGE_INVALID = "judge_invalid"
    JUDGE_UNAVAILABLE = "judge_unavailable"
    JUDGE_OFF = "judge_off"
    # any stage
    TIMEOUT = "timeout"
    ERROR = "error"

    @staticmethod
    def guard(name: str) -> str:
        return f"guard:{name}"


# Reasons that describe a failure to decide, not a decision: never cached.
UNCACHEABLE_REASONS = frozenset(
    {Reason.TIMEOUT, Reason.ERROR, Reason.JUDGE_UNAVAILABLE, Reason.SANDBOX_ERROR}
)


@positional_pickle
@dataclass(frozen=True, slots=True)
class Verdict:
    """Outcome of verifying one response against one reference.

    correct: True (accepted), False (rejected) or None (abstain: see `reason`).
    reward: the number a trainer uses; 1.0 / 0.0 for binary stages, the pass
        fraction for code, 0.0 on abstain.
    stage: which stage decided (`Stage`).
    reason: machine-readable code (`Reason`).
    extracted_answer: the final answer the stage compared, when there was one.
    confidence: in [0, 1]; 1.0 for exact rule decisions, the judge's
        probability for judge decisions, None when unknown.
    flags: what the guards noticed (e.g. ``injection``), even when they did
        not decide.
    detail: stage-specific, JSON-serialisable extra information.
    """

    correct: bool | None
    reward: float
    stage: str
    reason: str
    extracted_answer: str | None = None
    confidence: float | None = None
    flags: tuple[str, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def abstained(self) -> bool:
        return self.correct is None

    @property
    def cacheable(self) -> bool:
        """False for timeouts and infrastructure errors, which must be retried."""
        return self.reason not in UNCACHEABLE_REASONS

    def with_flags(self, *flags: str) -> Verdict:
        merged = tuple(dict.fromkeys((*self.flags, *flags)))
        return replace(self, flags=merged)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["flags"] = list(self.flags)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        return cls(
            correct=data["correct"],
            reward=float(data["reward"]),
            stage=data["stage"],
            reason=data["reason"],
            extracted_answer=data.get("extracted_answer"),
            confidence=data.get("confidence"),
            flags=tuple(data.get("flags", ())),
            detail=dict(data.get("detail") or {}),
        )

    @classmethod
    def accept(cls, stage: str, reason: str, **kw: Any) -> Verdict:
        kw.setdefault("confidence", 1.0)
        return cls(correct=True, reward=1.0, stage=stage, reason=reason, **kw)

    @classmethod
    def reject(cls, stage: str, reason: str, **kw: Any) -> Verdict:
        kw.setdefault("confidence", 1.0)
        return cls(correct=False, reward=0.0, stage=stage, reason=reason, **kw)

    @classmethod
    def abstain(cls, stage: str, reason: str, **kw: Any) -> Verdict:
        return cls(correct=None, reward=0.0, stage=stage, reason=reason, **kw)
