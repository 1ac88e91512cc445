"""Compatibility routes: the bodies trainers already send to a remote reward service.

Checked against the trainers' sources (read in their repositories):

* OpenRLHF - ``OpenRLHF/OpenRLHF`` ``openrlhf/utils/agent.py``
  (``SingleTurnAgentExecutor._fetch_rewards_via_http``: POST ``{"query", "prompts",
  "labels"}`` lists, one sample per request, 180 s timeout, 5 tries; ``query`` is
  ``tokenizer.decode(prompt_ids + action_ids, skip_special_tokens=False)``; the
  reply's ``rewards``, ``scores`` (falls back to rewards) and ``extra_logs`` are
  read), ``openrlhf/trainer/ppo_utils/samples_generator.py`` (each ``extra_logs``
  value becomes ``torch.tensor([value])``, so values are numbers) and
  ``examples/python/math_reward_func.py`` (the response is the query after the prompt).
* slime - ``THUDM/slime`` ``slime/rollout/rm_hub/__init__.py`` (``remote_rm``: POST
  ``{"prompt", "response", "label"}``, returns the JSON reply as the reward, which
  is a number or a dict read with ``--reward-key``; 64 connections, 120 s, 10
  retries) and ``slime/utils/types.py`` (``prompt: str | list[dict]``).
* NeMo-Gym - ``NVIDIA-NeMo/Gym`` ``nemo_gym/base_resources_server.py``
  (``BaseVerifyRequest`` = ``responses_create_params`` + ``response``;
  ``BaseVerifyResponse`` adds ``reward``, ``mask_sample``, ``failure_kind``,
  ``failure_reason``), ``nemo_gym/failure_kinds.py`` (the vocabulary) and
  ``resources_servers/math_with_judge/app.py`` (``question``, ``expected_answer``;
  the verified text joins the ``output_text`` parts of ``message`` output items;
  the reply echoes the request).

Every route calls `VerificationService.verify_items`; rewards of abstentions
(``correct: null``) are 0.0 in the numeric fields, and the verdict itself is in
the reply.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter
from pydantic import ValidationError

from rlvr_client.labels import LabelError, parse_label
from service.compat_schemas import (
    NemoGymVerifyRequest,
    NemoGymVerifyResponse,
    OpenRLHFRequest,
    OpenRLHFResponse,
    SlimeRequest,
    SlimeResponse,
)
from service.errors import ApiError
from service.schemas import VerifyItem, VerifyResult
from service.validation import check_items
from service.verification import VerificationService

#: End-of-turn / special tokens a decode with ``skip_special_tokens=False`` leaves at the end.
_TRAILING_SPECIAL = re.compile(
    r"(?:\s*(?:<[|\uff5c][^<>\s]{1,60}[|\uff5c]>|</s>|<eos>|<end_of_turn>|<pad>))+\s*$"
)
#: Where the assistant turn starts in common chat templates (used when the prompt is not found).
_ASSISTANT_MARKERS = (
    "<|im_start|>assistant\n",
    "<|start_header_id|>assistant<|end_header_id|>\n\n",
    "<|start_header_id|>assistant<|end_header_id|>",
    "<\uff5cAssistant\uff5c>",
    "<start_of_turn>model\n",
    "<|assistant|>\n",
    "<|assistant|>",
    "[/INST]",
)


def split_openrlhf_query(query: str, prompt: str | None) -> tuple[str, bool]:
    """The response inside an OpenRLHF query, and whether the prompt was found in it.

    The response is what follows ``prompt`` (at the start of the query, else at
    its first occurrence); without a usable prompt, what follows the last
    assistant-turn marker of a known chat template; else the whole query.
    Trailing special tokens (``<|im_end|>``, ``</s>``, ...) are removed.
    """
    found = False
    text = query
    if prompt:
        if query.startswith(prompt):
            text, found = query[len(prompt) :], True
        else:
            at = query.find(prompt)
            if at >= 0:
                text, found = query[at + len(prompt) :], True
    if not found:
        cut = max(((query.rfind(m) + len(m)) for m in _ASSISTANT_MARKERS if m in query), default=-1)
        if cut >= 0:
            text = query[cut:]
    return _TRAILING_SPECIAL.sub("", text), found


def _item(
    response: str, label: Any, where: str, extra: Mapping[str, Any] | None = None
) -> VerifyItem:
    """A validated item from a response and a label; 422 naming ``where`` when unusable."""
    try:
        fields = parse_label(label)
    except LabelError as exc:
        raise ApiError(422, "validation_error", f"{where}: {exc}") from exc
    for name, value in (extra or {}).items():
        if value is not None:
            fields.setdefault(name, value)
    try:
        return VerifyItem.model_validate({**fields, "response": response})
    except ValidationError as exc:
        first = exc.errors()[0]
        location = ".".join(str(part) for part in first.get("loc", ()))
        raise ApiError(
            422,
            "validation_error",
            f"{where}.{location}: {first.get('msg')}"
            if location
            else f"{where}: {first.get('msg')}",
            exc.errors(include_url=False, include_context=False)[:20],
        ) from exc


def _reward(result: VerifyResult) -> float:
    return 0.0 if result.correct is None else float(result.reward)


def _failure_kind(result: VerifyResult) -> str:
    if result.reason == "judge_unavailable":
        return "judge_failed"
    if result.reason == "judge_invalid":
        return "judge_unparseable"
    return "verifier_error"


def nemo_gym_text(response: Mapping[str, Any]) -> str:
    """Every ``output_text`` part of every ``message`` item of a Responses-API response, joined."""
    output = response.get("output")
    if not isinstance(output, list):
        raise ApiError(422, "validation_error", "body.response.output: must be a list of items")
    texts = []
    for entry in output:
        if not isinstance(entry, Mapping) or entry.get("type") != "message":
            continue
        for part in entry.get("content") or ():
            if isinstance(part, Mapping) and part.get("type") == "output_text":
                text = part.get("text")
                if isinstance(text, str):
                    texts.append(text)
    return "".join(texts)


def build_router(service: VerificationService, dependencies: list[Any]) -> APIRouter:
    """The ``/compat`` router; every route verifies through ``service.verify_items``."""
    router = APIRouter(prefix="/compat", tags=["compat"], dependencies=dependencies)
    settings = service.settings

    def check(items: list[VerifyItem], where: Callable[[int], str]) -> None:
        """The /v1 item checks (sizes 413, code test specs 422), naming the trainer's field."""
        try:
            check_items(items, settings)
        except ApiError as exc:
            index = exc.detail.get("index", 0) if isinstance(exc.detail, dict) else 0
            message = exc.message.replace(f"items[{index}]", where(index), 1)
            raise ApiError(exc.status, exc.error, message, exc.detail) from exc

    @router.post(
        "/openrlhf",
        response_model=OpenRLHFResponse,
        summary="OpenRLHF remote reward (`--reward.remote_url`)",
    )
    async def openrlhf(body: OpenRLHFRequest) -> OpenRLHFResponse:
        count = len(body.query)
        for name in ("prompts", "labels"):
            values = getattr(body, name)
            if values is not None and len(values) != count:
                raise ApiError(
                    422,
                    "validation_error",
                    f"body.{name}: {len(values)} entries for {count} queries",
                )
        if count > settings.max_batch_items:
            raise ApiError(
                413,
                "batch_too_large",
                f"{count} samples; the limit is {settings.max_batch_items}",
                {"limit": settings.max_batch_items},
            )
        items, found = [], []
        for index, query in enumerate(body.query):
            prompt = body.prompts[index] if body.prompts is not None else None
            response, prompt_found = split_openrlhf_query(query, prompt)
            label = body.labels[index] if body.labels is not None else None
            items.append(_item(response, label, f"body.labels[{index}]"))
            found.append(1.0 if prompt_found else 0.0)
        check(items, lambda i: f"samples[{i}]")
        results = await service.verify_items(items, "compat_openrlhf") if items else []
        rewards = [_reward(r) for r in results]
        return OpenRLHFResponse(
            rewards=rewards,
            scores=list(rewards),
            extra_logs={
                "verifier_correct": [1.0 if r.correct is True else 0.0 for r in results],
                "verifier_abstained": [1.0 if r.correct is None else 0.0 for r in results],
                "verifier_cached": [1.0 if r.cached else 0.0 for r in results],
                "verifier_prompt_found": found,
            },
            results=results,
        )

    @router.post(
        "/slime",
        response_model=SlimeResponse,
        summary="slime remote reward (`--rm-type remote_rm`, read with `--reward-key reward`)",
    )
    async def slime(body: SlimeRequest) -> SlimeResponse:
        item = _item(body.response, body.label, "body.label")
        check([item], lambda _: "sample")
        (result,) = await service.verify_items([item], "compat_slime")
        return SlimeResponse(
            **{**result.model_dump(), "reward": _reward(result)},
            abstained=result.correct is None,
        )

    @router.post(
        "/nemo-gym/verify",
        response_model=NemoGymVerifyResponse,
        summary="NeMo-Gym resources-server verify",
    )
    async def nemo_gym_verify(body: NemoGymVerifyRequest) -> NemoGymVerifyResponse:
        text = nemo_gym_text(body.response)
        item = _item(
            text, body.expected_answer, "body.expected_answer", {"question": body.question}
        )
        check([item], lambda _: "sample")
        (result,) = await service.verify_items([item], "compat_nemo_gym")
        abstained = result.correct is None
        reply = body.model_dump()
        reply.update(
            reward=_reward(result),
            mask_sample=abstained,
            failure_kind=_failure_kind(result) if abstained else None,
            failure_reason=f"{result.stage}:{result.reason}" if abstained else None,
            extracted_answer=result.extracted_answer,
            verdict=result,
        )
        return NemoGymVerifyResponse.model_validate(reply)

    return router
