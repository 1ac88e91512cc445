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
    tolerance: float = Field(
        1e-6, ge=0, le=0.1, description="Relative tolerance of numeric comparison.", examples=[1e-6]
    )
    timeout_s: float | None = Field(
        None,
        gt=0,
        le=120,
        description="Deadline of the symbolic comparison for this item (seconds).",
        examples=[5.0],
    )
    all_or_nothing: bool = Field(
        False, description="Code: reward 1 only when every test passes.", examples=[False]
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
    version: str = Field(..., description="Verifier version.", examples=["0.1.0"])


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
