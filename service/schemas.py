"""Wire models: the HTTP contract. Every field has a description and an example."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class VerifyOptions(BaseModel):
    """How to verify one item."""

    model_config = ConfigDict(extra="forbid")

    judge: Literal["off", "fallback", "appeal", "always"] | None = Field(
        None,
        description=(
            "LLM-judge policy: `off`; `fallback` (judge only when rules abstain; the default "
            "when a judge is configured); `appeal` (rule negatives are rechecked too); "
            "`always` (every non-code item goes to the judge)."
        ),
        examples=["fallback"],
    )
    # strict: `false` or `"0.1"` is not a number (the schema says so; found by fuzzing)
    tolerance: float = Field(
        1e-6,
        ge=0,
        le=0.1,
        strict=True,
        description="Relative tolerance of numeric comparison.",
        examples=[1e-6],
    )
    timeout_s: float | None = Field(
        None,
        gt=0,
        le=120,
        strict=True,
        description="Deadline of the symbolic comparison for this item (seconds).",
        examples=[5.0],
    )
    all_or_nothing: bool = Field(
        False,
        strict=True,
        description="Code: reward 1 only when every test passes.",
        examples=[False],
    )
    reward: Literal["raw", "corrected"] = Field(
        "raw",
        description=(
            "`raw`: the verdict's reward. `corrected`: the backward-corrected reward "
            "(y - FP) / (1 - FP - FN) from the deciding stage's online error estimates (see "
            "`GET /v1/stats`); it may fall outside [0, 1]. The raw reward stays in "
            "`detail.raw_reward`."
        ),
        examples=["raw"],
    )


class VerifyItem(BaseModel):
    """One (response, reference) pair."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": "prompt-17/sample-3",
                    "response": "... so the answer is $\\boxed{\\frac{1}{3}}$.",
                    "reference": "12/36",
                }
            ]
        },
    )

    id: str | None = Field(
        None,
        max_length=256,
        description="Client id, echoed in the result; generated when absent.",
        examples=["prompt-17/sample-3"],
    )
    task: Literal["auto", "math", "code", "judge"] = Field(
        "auto",
        description="`auto` = `code` when `tests` is present, else `math`.",
        examples=["auto"],
    )
    response: str = Field(
        ..., description="The model's full response.", examples=["The answer is $\\boxed{4}$."]
    )
    reference: str = Field(
        "", description="The reference answer (or a full reference solution).", examples=["4"]
    )
    question: str | None = Field(
        None, description="The question; only the judge uses it (general QA).", examples=[None]
    )
    tests: dict[str, Any] | None = Field(
        None,
        description=(
            "Code tests: `{kind: stdin|functional|assert, ...}`; see the README for the formats."
        ),
        examples=[{"kind": "stdin", "cases": [{"input": "1 2\n", "output": "3\n"}]}],
    )
    language: str | None = Field(
        None,
        max_length=32,
        description="Code language (default from the code fence, else python).",
        examples=["python"],
    )
    domain: str | None = Field(
        None,
        max_length=64,
        description="Tag for per-domain statistics; `general` lets the judge see the question.",
        examples=["math"],
    )
    options: VerifyOptions = Field(
        default_factory=VerifyOptions,
        description="Per-item options.",
    )


class VerifyResult(BaseModel):
    """The verdict on one item."""

    id: str = Field(..., description="The item's id (client's or generated).", examples=["a1b2"])
    correct: bool | None = Field(
        ...,
        description="True (accepted), false (rejected) or null (abstain: see `reason`).",
        examples=[True],
    )
    reward: float = Field(..., description="The number a trainer uses.", examples=[1.0])
    stage: str = Field(
        ..., description="Stage that decided: guard, math, code, judge, none.", examples=["math"]
    )
    reason: str = Field(
        ...,
        description=(
            "Machine-readable reason: equal, not_equal, no_answer, unparseable, timeout, error, "
            "guard:<name>, judge_*, passed, wrong_answer, ..."
        ),
        examples=["equal"],
    )
    cached: bool = Field(..., description="Served from the cache.", examples=[False])
    extracted_answer: str | None = Field(
        None, description="The final answer the stage compared.", examples=["\\frac{1}{3}"]
    )
    confidence: float | None = Field(
        None, description="Confidence in [0, 1], when known.", examples=[1.0]
    )
    flags: list[str] = Field(
        default_factory=list, description="What the guards noticed.", examples=[["injection"]]
    )
    latency_ms: float = Field(..., description="Server-side time for this item.", examples=[0.4])
    detail: dict[str, Any] = Field(
        default_factory=dict,
        description="Stage-specific detail (method, per-case results, errors).",
        examples=[{"method": "number"}],
    )


class BatchRequest(BaseModel):
    """Many items; results come back in input order."""

    model_config = ConfigDict(extra="forbid")

    items: list[VerifyItem] = Field(
        ...,
        description="The items; identical items are computed once.",
        examples=[[{"response": "\\boxed{2}", "reference": "2"}]],
    )


class BatchResponse(BaseModel):
    """Results in the order of the request's items."""

    results: list[VerifyResult] = Field(
        ...,
        description="One result per item, in input order.",
        examples=[
            [
                {
                    "id": "a1",
                    "correct": True,
                    "reward": 1.0,
                    "stage": "math",
                    "reason": "equal",
                    "cached": False,
                    "extracted_answer": "2",
                    "confidence": 1.0,
                    "flags": [],
                    "latency_ms": 0.3,
                    "detail": {"method": "exact"},
                }
            ]
        ],
    )


class HealthResponse(BaseModel):
    """Liveness."""

    status: Literal["ok"] = Field(
        "ok", description="Always `ok` while the process serves.", examples=["ok"]
    )
    version: str = Field(..., description="Verifier version.", examples=["0.2.0"])


class ComponentState(BaseModel):
    """State of one dependency."""

    status: Literal["up", "down", "degraded", "disabled"] = Field(
        ..., description="Component state.", examples=["up"]
    )
    detail: dict[str, Any] = Field(
        default_factory=dict, description="Free-form details.", examples=[{"workers": 2}]
    )


class ReadyResponse(BaseModel):
    """Readiness: pools up; Redis and judge reported (degraded is still ready)."""

    ready: bool = Field(..., description="True when the service can answer.", examples=[True])
    status: Literal["ok", "degraded", "unavailable"] = Field(
        ..., description="`degraded` when an optional dependency is down.", examples=["ok"]
    )
    components: dict[str, ComponentState] = Field(
        ...,
        description="Per-component state: workers, cache, judge, sandbox.",
        examples=[{"workers": {"status": "up", "detail": {}}, "cache": {"status": "disabled"}}],
    )


class ErrorResponse(BaseModel):
    """Every 4xx body."""

    error: str = Field(..., description="Short error code.", examples=["validation_error"])
    message: str = Field(..., description="Human-readable explanation.", examples=["..."])
    detail: Any = Field(
        None,
        description="Field-level details when relevant.",
        examples=[[{"field": "body.response", "message": "Field required", "type": "missing"}]],
    )


class JobRequest(BaseModel):
    """A large batch to run in the background (or send JSONL: one item per line)."""

    model_config = ConfigDict(extra="forbid")

    items: list[VerifyItem] = Field(
        ...,
        description="The items; results keep this order.",
        examples=[[{"response": "\\boxed{2}", "reference": "2"}]],
    )


class JobStatus(BaseModel):
    """Status and progress of a job."""

    id: str = Field(..., description="Job id.", examples=["9f1c2d"])
    status: Literal["queued", "running", "completed", "failed", "cancelled"] = Field(
        ..., description="Job state.", examples=["running"]
    )
    total: int = Field(..., description="Items in the job.", examples=[10000])
    done: int = Field(..., description="Items verified so far.", examples=[4096])
    chunks: int = Field(..., description="Chunks the job was split into.", examples=[157])
    chunks_done: int = Field(..., description="Chunks finished.", examples=[64])
    correct: int = Field(..., description="Items accepted so far.", examples=[2900])
    abstained: int = Field(..., description="Items with `correct: null` so far.", examples=[3])
    created_at: float = Field(..., description="Unix time of submission.", examples=[1.7e9])
    finished_at: float | None = Field(
        None, description="Unix time it completed or was cancelled.", examples=[None]
    )
    error: str | None = Field(None, description="Why it failed, if it did.", examples=[None])


# ---------------------------------------------------------------- feedback and stats
class FeedbackLabel(BaseModel):
    """Ground truth for one past verdict."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(
        ...,
        min_length=1,
        max_length=256,
        description="The id a verify result echoed.",
        examples=["prompt-17/sample-3"],
    )
    correct: bool = Field(
        ..., strict=True, description="Was the response truly correct?", examples=[True]
    )


class FeedbackRequest(BaseModel):
    """Labels for verdicts given within the last `VERIFIER_VERDICT_TTL_S` seconds."""

    model_config = ConfigDict(extra="forbid")

    labels: list[FeedbackLabel] = Field(
        ...,
        description="One label per verdict id; an id labelled before is not counted again.",
        examples=[[{"id": "prompt-17/sample-3", "correct": True}]],
    )


class FeedbackResponse(BaseModel):
    """What the labels were counted as."""

    recorded: int = Field(..., description="Labels added to the confusion counts.", examples=[1])
    counts: dict[str, int] = Field(
        ...,
        description="This request's labels by cell: tp, fp, tn, fn, abstain.",
        examples=[{"tp": 1, "fp": 0, "tn": 0, "fn": 0, "abstain": 0}],
    )
    unknown: list[str] = Field(
        ...,
        description="Ids with no stored verdict (never seen, or older than the TTL).",
        examples=[["prompt-3/sample-0"]],
    )
    duplicate: list[str] = Field(
        ..., description="Ids labelled before (not counted again).", examples=[[]]
    )


class RateEstimate(BaseModel):
    """A rate with its confidence interval and the observations behind it."""

    value: float | None = Field(
        ..., description="Point estimate; null with no observations.", examples=[0.1]
    )
    lower: float = Field(..., description="Lower confidence bound.", examples=[0.055])
    upper: float = Field(..., description="Upper confidence bound.", examples=[0.174])
    errors: int = Field(
        ..., description="Observed errors (appeals: judge overturns).", examples=[10]
    )
    samples: int = Field(
        ..., description="Observations (appeals: appeals decided).", examples=[100]
    )


class JEstimate(BaseModel):
    """Youden's J = 1 - FP - FN with conservative bounds."""

    value: float = Field(..., description="1 - FP - FN.", examples=[0.86])
    lower: float = Field(..., description="1 - FP upper - FN upper.", examples=[0.77])
    upper: float = Field(..., description="1 - FP lower - FN lower.", examples=[0.93])


class ErrorRateGroup(BaseModel):
    """Estimates from one source for one stage (and domain)."""

    source: Literal["feedback", "appeal", "canary"] = Field(
        ...,
        description=(
            "`feedback`: client labels; `appeal`: rule negatives rechecked by the judge; "
            "`canary`: known-wrong probes sent to the judge."
        ),
        examples=["feedback"],
    )
    stage: str = Field(..., description="Stage the rates describe.", examples=["math"])
    domain: str | None = Field(
        ..., description="Item domain tag; null = all domains together.", examples=[None]
    )
    false_negative: RateEstimate | None = Field(
        ..., description="P(rejected | correct), when this source measures it.", examples=[None]
    )
    false_positive: RateEstimate | None = Field(
        ..., description="P(accepted | wrong), when this source measures it.", examples=[None]
    )
    j: JEstimate | None = Field(
        ..., description="1 - FP - FN when this source measures both.", examples=[None]
    )
    counts: dict[str, int] = Field(
        ...,
        description=(
            "Raw counts. feedback: tp, fp, tn, fn, abstain. appeal: appeals, overturned, "
            "upheld, abstained, rule_positives, rule_negatives, hard_negatives. canary: probes, "
            "accepted, rejected, abstained, attack_probes, attack_accepted."
        ),
        examples=[{"tp": 90, "fp": 2, "tn": 48, "fn": 10, "abstain": 0}],
    )


class StageEstimate(BaseModel):
    """The best estimates for one stage: feedback when it has enough samples, else
    appeals (FN) or canaries (FP). These drive `reward: corrected` and the J gauges."""

    stage: str = Field(..., description="Stage.", examples=["math"])
    false_negative: RateEstimate | None = Field(
        ..., description="Best FN estimate, if any.", examples=[None]
    )
    false_negative_source: str | None = Field(
        ..., description="Where it comes from.", examples=["appeal"]
    )
    false_positive: RateEstimate | None = Field(
        ..., description="Best FP estimate, if any.", examples=[None]
    )
    false_positive_source: str | None = Field(
        ..., description="Where it comes from.", examples=[None]
    )
    j: JEstimate | None = Field(
        ..., description="1 - FP - FN (a missing rate counts as 0).", examples=[None]
    )
    corrects_rewards: bool = Field(
        ...,
        description="True when `reward: corrected` changes this stage's rewards.",
        examples=[False],
    )


class StatsResponse(BaseModel):
    """Online FN/FP estimates, per stage, source and domain."""

    confidence: float = Field(
        ..., description="Confidence level of the intervals.", examples=[0.95]
    )
    interval: Literal["wilson", "clopper-pearson"] = Field(
        ..., description="Interval method.", examples=["wilson"]
    )
    backend: Literal["memory", "redis"] = Field(
        ..., description="Where counts live (redis: shared by replicas).", examples=["redis"]
    )
    backend_state: Literal["up", "down", "disabled"] = Field(
        ...,
        description="`down`: Redis unreachable, counting in-process until it is back.",
        examples=["up"],
    )
    groups: list[ErrorRateGroup] = Field(
        ..., description="Every source, stage and domain with observations.", examples=[[]]
    )
    stages: list[StageEstimate] = Field(..., description="Best estimate per stage.", examples=[[]])
    background: dict[str, int] = Field(
        ...,
        description="This replica's background probes: pending, dropped.",
        examples=[{"pending": 0, "dropped": 0}],
    )
    config: dict[str, Any] = Field(
        ...,
        description="Appeal fraction, canary rate, judge calibration, verdict TTL in effect.",
        examples=[{"appeal_fraction": 0.1, "canary_rate": 0.02}],
    )
