"""Wire format of an OpenAI-compatible (vLLM) chat-completions judge call.

Request: ``temperature 0``, ``max_tokens 1``, ``logprobs true``,
``top_logprobs k`` and the reply constrained to the choices, either with
``"structured_outputs": {"choice": [...]}`` (vLLM >= 0.10.2) or with the older
``"guided_choice": [...]`` (removed in vLLM 0.12).

Response: ``choices[0].message.content`` is the letter;
``choices[0].logprobs.content[0].top_logprobs[j] = {token, logprob, bytes}``
gives the first-token distribution; ``usage`` counts tokens.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from verifiers.judge.prompts import CHOICES

ChoiceField = Literal["structured_outputs", "guided_choice"]


class ProtocolError(ValueError):
    """The server's reply is not a well-formed constrained judge answer."""


def build_request_body(
    model: str,
    messages: Sequence[dict[str, str]],
    *,
    choice_field: ChoiceField = "structured_outputs",
    top_logprobs: int = 5,
    choices: Sequence[str] = CHOICES,
) -> dict[str, Any]:
    """JSON body of ``POST /v1/chat/completions`` for one judge call
    (``model`` left out when empty)."""
    body: dict[str, Any] = {
        "messages": [dict(m) for m in messages],
        "temperature": 0,
        "max_tokens": 1,
        "n": 1,
        "stream": False,
        "logprobs": top_logprobs > 0,
    }
    if model:  # vLLM uses its served model when the field is absent
        body["model"] = model
    if top_logprobs > 0:
        body["top_logprobs"] = top_logprobs
    if choice_field == "structured_outputs":
        body["structured_outputs"] = {"choice": list(choices)}
    else:
        body["guided_choice"] = list(choices)
    return body


@dataclass(frozen=True, slots=True)
class JudgeReply:
    """A parsed judge reply.

    label: ``"A"``, ``"B"`` or ``"C"``.
    confidence: probability of `label` renormalised over the three choices,
        from the first token's top log-probabilities; None when the server
        sent none.
    probabilities: renormalised probability of each choice seen (may be empty).
    """

    label: str
    confidence: float | None
    probabilities: dict[str, float] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str | None = None


def _as_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return 0
    return value


def _logprob(entry: dict[str, Any]) -> float | None:
    value = entry.get("logprob")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    if math.isnan(value) or value > 1e-6:
        return None
    return min(value, 0.0)


def first_token_probabilities(logprobs: Any, choices: Sequence[str] = CHOICES) -> dict[str, float]:
    """Probability mass of each choice in the first generated token.

    Tokens are compared after stripping whitespace (``" A"`` counts as ``A``);
    distinct tokens that denote the same choice add up. Malformed entries are
    ignored. Returns raw (not renormalised) probabilities; empty when there
    is nothing usable.
    """
    if not isinstance(logprobs, dict):
        return {}
    content = logprobs.get("content")
    if not isinstance(content, list) or not content or not isinstance(content[0], dict):
        return {}
    first = content[0]
    seen: dict[str, float] = {}
    candidates: list[Any] = []
    top = first.get("top_logprobs")
    if isinstance(top, list):
        candidates.extend(top)
    candidates.append(first)  # the sampled token, if it is missing from the top list
    for entry in candidates:
        if not isinstance(entry, dict):
            continue
        raw_token = entry.get("token")
        token_key = raw_token if isinstance(raw_token, str) else repr(entry.get("bytes"))
        if token_key in seen:
            continue
        logprob = _logprob(entry)
        if logprob is None:
            continue
        seen[token_key] = logprob
    mass: dict[str, float] = {}
    for token_key, logprob in seen.items():
        text = token_key.strip()
        if text in choices:
            mass[text] = mass.get(text, 0.0) + math.exp(logprob)
    return mass


def parse_reply(payload: Any, choices: Sequence[str] = CHOICES) -> JudgeReply:
    """Parse a chat-completions response body (already JSON-decoded).

    Raises `ProtocolError` when there is no choice, no message content, or
    the content is not exactly one of `choices` (surrounding whitespace is
    tolerated). Missing log-probabilities or usage are not errors.
    """
    if not isinstance(payload, dict):
        raise ProtocolError(f"reply is a {type(payload).__name__}, not an object")
    items = payload.get("choices")
    if not isinstance(items, list) or not items or not isinstance(items[0], dict):
        raise ProtocolError("reply has no choices")
    choice = items[0]
    message = choice.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        raise ProtocolError("reply has no message content")
    label = content.strip()
    if label not in choices:
        raise ProtocolError(f"judge replied {content[:40]!r}, expected one of {list(choices)}")
    mass = first_token_probabilities(choice.get("logprobs"), choices)
    total = sum(mass.values())
    probabilities = {k: v / total for k, v in sorted(mass.items())} if total > 0 else {}
    confidence = probabilities.get(label) if probabilities else None
    usage = payload.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    model = payload.get("model")
    return JudgeReply(
        label=label,
        confidence=confidence,
        probabilities=probabilities,
        prompt_tokens=_as_int(usage.get("prompt_tokens")),
        completion_tokens=_as_int(usage.get("completion_tokens")),
        model=model if isinstance(model, str) else None,
    )


def error_message(payload: Any, fallback: str) -> str:
    """The human-readable message of an error body.

    vLLM sends ``{"error": {"message", "type", "param", "code"}}`` (older
    releases: ``{"object": "error", "message": ...}``); proxies send anything.
    """
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])[:300]
        if isinstance(error, str):
            return error[:300]
        if isinstance(payload.get("message"), str):
            return str(payload["message"])[:300]
    return fallback[:300]
