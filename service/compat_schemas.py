"""Wire models of the trainer compatibility routes (``/compat/...``).

Each request model is the body a trainer already sends to a remote reward
service; each response model is what that trainer reads back, plus the full
verdicts so that nothing is hidden. A *label* is either the plain reference
answer or a JSON object that selects the task (see `rlvr_client.labels`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from service.schemas import VerifyResult

LABEL_HELP = (
    "A plain reference answer (text or number), or a JSON object - as an object or as a "
    'string holding one - that selects the task: `{"reference"|"answer": ..., "task": '
    '"auto|math|code|judge", "tests": {...}, "language": ..., "question": ..., "domain": ..., '
    '"options": {...}}`.'
)

_RESULT_EXAMPLE = {
    "id": "a1",
    "correct": True,
    "reward": 1.0,
    "stage": "math",
    "reason": "equal",
    "cached": False,
    "extracted_answer": "12",
    "confidence": 1.0,
    "flags": [],
    "latency_ms": 0.3,
    "detail": {"method": "number"},
}


class OpenRLHFRequest(BaseModel):
    """What OpenRLHF's remote reward client posts (`--reward.remote_url http://.../compat/openrlhf`).

    Parallel lists, one entry per sample (current OpenRLHF sends one sample per request).
    """

    query: list[str] = Field(
        ...,
        description=(
            "Prompt and response decoded together (special tokens kept). The response is "
            "what follows the sample's prompt; trailing end-of-turn tokens are dropped."
        ),
        examples=[
            [
                "<|im_start|>user\nWhat is 1/3 of 36?<|im_end|>\n<|im_start|>assistant\n"
                "A third of 36 is $\\boxed{12}$.<|im_end|>"
            ]
        ],
    )
    prompts: list[str] | None = Field(
        None,
        description=(
            "The prompt of each sample, stripped from the front of its query. When absent, or "
            "when a prompt is not found in its query, the text after the last assistant-turn "
            "marker of a known chat template is used, else the whole query."
        ),
        examples=[["<|im_start|>user\nWhat is 1/3 of 36?<|im_end|>\n<|im_start|>assistant\n"]],
    )
    labels: list[Any] | None = Field(
        None,
        description="One label per sample (the dataset's `--data.label_key`). " + LABEL_HELP,
        examples=[["12"]],
    )


class OpenRLHFResponse(BaseModel):
    """The reward dict OpenRLHF reads: `rewards`, `scores`, `extra_logs` (plus the verdicts)."""

    rewards: list[float] = Field(
        ...,
        description="Reward per sample, used for the advantage; 0.0 when the verifier abstained.",
        examples=[[1.0]],
    )
    scores: list[float] = Field(
        ...,
        description="Same as `rewards`; OpenRLHF's dynamic filtering reads this one.",
        examples=[[1.0]],
    )
    extra_logs: dict[str, list[float]] = Field(
        ...,
        description=(
            "Per-sample numbers OpenRLHF logs: `verifier_correct`, `verifier_abstained`, "
            "`verifier_cached` and `verifier_prompt_found` (1.0 or 0.0 each)."
        ),
        examples=[
            {
                "verifier_correct": [1.0],
                "verifier_abstained": [0.0],
                "verifier_cached": [0.0],
                "verifier_prompt_found": [1.0],
            }
        ],
    )
    results: list[VerifyResult] = Field(
        ...,
        description="The full verdict of each sample (OpenRLHF ignores it; logs can keep it).",
        examples=[[_RESULT_EXAMPLE]],
    )


class SlimeRequest(BaseModel):
    """What slime's `remote_rm` posts (`--rm-type remote_rm --rm-url http://.../compat/slime`)."""

    prompt: Any = Field(
        None,
        description="The sample's prompt (text or chat messages); not used for the verdict.",
        examples=["What is 1/3 of 36?"],
    )
    response: str = Field(
        ...,
        description="The generated response.",
        examples=["A third of 36 is $\\boxed{12}$."],
    )
    label: Any = Field(None, description="The sample's label. " + LABEL_HELP, examples=["12"])


class SlimeResponse(VerifyResult):
    """A reward dict for slime: pick the number with `--reward-key reward`."""

    abstained: bool = Field(
        ...,
        description="True when the verifier could not decide (`correct` is null; reward 0.0).",
        examples=[False],
    )


class NemoGymVerifyRequest(BaseModel):
    """A NeMo-Gym resources-server `/verify` body (`BaseVerifyRequest` plus the math fields).

    Unknown fields are kept and echoed back, as NeMo-Gym servers do.
    """

    model_config = ConfigDict(extra="allow")

    responses_create_params: dict[str, Any] = Field(
        ...,
        description="The Responses-API request that produced `response` (echoed back).",
        examples=[{"input": [{"role": "user", "content": "What is 1/3 of 36?"}]}],
    )
    response: dict[str, Any] = Field(
        ...,
        description=(
            "The Responses-API response. The text verified is every `output_text` part of "
            "every `message` item of `output`, joined (reasoning items are not verified)."
        ),
        examples=[
            {
                "id": "resp_1",
                "object": "response",
                "output": [
                    {
                        "type": "message",
                        "role": "assistant",
                        "content": [{"type": "output_text", "text": "So $\\boxed{12}$."}],
                    }
                ],
            }
        ],
    )
    question: str | None = Field(
        None,
        description="The question (the judge sees it); a label's own `question` wins.",
        examples=["What is 1/3 of 36?"],
    )
    expected_answer: Any = Field(
        None, description="The label of this task. " + LABEL_HELP, examples=["12"]
    )


class NemoGymVerifyResponse(NemoGymVerifyRequest):
    """A NeMo-Gym `BaseVerifyResponse`: the request echoed with `reward` and the verdict."""

    reward: float = Field(
        ..., description="The reward; 0.0 when the verifier abstained.", examples=[1.0]
    )
    mask_sample: bool = Field(
        ...,
        description=(
            "True when the verifier abstained (timeout, judge unavailable, undecidable): the "
            "reward is then not a measurement of the policy."
        ),
        examples=[False],
    )
    failure_kind: str | None = Field(
        None,
        description=(
            "NeMo-Gym failure vocabulary when the verifier abstained: `judge_failed`, "
            "`judge_unparseable` or `verifier_error`."
        ),
        examples=[None],
    )
    failure_reason: str | None = Field(
        None,
        description="`<stage>:<reason>` of an abstention.",
        examples=[None],
    )
    extracted_answer: str | None = Field(
        None, description="The final answer the verifier compared.", examples=["12"]
    )
    verdict: VerifyResult = Field(..., description="The full verdict.")
