"""Request bodies and reply parsing of the vLLM wire format."""

from __future__ import annotations

import math
from typing import Any

import pytest

from verifiers.judge.protocol import (
    ProtocolError,
    build_request_body,
    error_message,
    first_token_probabilities,
    parse_reply,
)

MESSAGES = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]


def test_body_with_structured_outputs() -> None:
    body = build_request_body("m", MESSAGES, choice_field="structured_outputs", top_logprobs=5)
    assert body["model"] == "m"
    assert body["temperature"] == 0
    assert body["max_tokens"] == 1
    assert body["logprobs"] is True
    assert body["top_logprobs"] == 5
    assert body["structured_outputs"] == {"choice": ["A", "B", "C"]}
    assert "guided_choice" not in body
    assert body["messages"] == MESSAGES


def test_body_with_guided_choice() -> None:
    body = build_request_body("m", MESSAGES, choice_field="guided_choice")
    assert body["guided_choice"] == ["A", "B", "C"]
    assert "structured_outputs" not in body


def test_body_without_logprobs() -> None:
    body = build_request_body("m", MESSAGES, top_logprobs=0)
    assert body["logprobs"] is False
    assert "top_logprobs" not in body


def _entry(token: str, p: float) -> dict[str, Any]:
    return {"token": token, "logprob": math.log(p), "bytes": list(token.encode())}


def _reply(content: Any, top: list[dict[str, Any]] | None, sampled: str = "A") -> dict[str, Any]:
    logprobs = None
    if top is not None:
        first = {**_entry(sampled, 0.5), "top_logprobs": top}
        logprobs = {"content": [first]}
    return {
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "logprobs": logprobs,
                "finish_reason": "length",
            }
        ],
        "usage": {"prompt_tokens": 120, "completion_tokens": 1, "total_tokens": 121},
    }


def test_confidence_is_renormalised_over_the_choices() -> None:
    top = [_entry("A", 0.5), _entry("The", 0.3), _entry("B", 0.15), _entry("C", 0.05)]
    reply = parse_reply(_reply("A", top))
    assert reply.label == "A"
    assert reply.confidence == pytest.approx(0.5 / 0.7)
    assert sum(reply.probabilities.values()) == pytest.approx(1.0)
    assert reply.prompt_tokens == 120 and reply.completion_tokens == 1


def test_whitespace_variants_of_a_letter_add_up() -> None:
    top = [_entry("A", 0.4), _entry(" A", 0.2), _entry("B", 0.2)]
    reply = parse_reply(_reply("A", top))
    assert reply.confidence == pytest.approx(0.6 / 0.8)


def test_sampled_token_counts_when_missing_from_top_list() -> None:
    reply = parse_reply(_reply("A", [_entry("B", 0.3)], sampled="A"))
    assert reply.confidence == pytest.approx(0.5 / 0.8)


def test_no_logprobs_means_unknown_confidence() -> None:
    reply = parse_reply(_reply("B", None))
    assert reply.label == "B"
    assert reply.confidence is None
    assert reply.probabilities == {}


def test_malformed_logprob_entries_are_ignored() -> None:
    top: list[Any] = [
        {"token": "A", "logprob": "x"},
        {"token": "B", "logprob": float("nan")},
        {"token": "C", "logprob": True},
        "junk",
        {"token": "A", "logprob": 3.0},
        _entry("B", 0.25),
    ]
    probs = first_token_probabilities(
        {"content": [{"token": "Q", "logprob": -1.0, "top_logprobs": top}]}
    )
    assert probs == {"B": pytest.approx(0.25)}


def test_vllm_minus_inf_placeholder_is_zero_mass() -> None:
    top = [_entry("A", 0.9), {"token": "B", "logprob": -9999.0, "bytes": [66]}]
    assert parse_reply(_reply("A", top)).confidence == pytest.approx(1.0)


@pytest.mark.parametrize(
    "payload",
    [
        None,
        [],
        "A",
        {},
        {"choices": []},
        {"choices": [{}]},
        {"choices": [{"message": {"content": None}}]},
        {"choices": [{"message": {"content": "The answer is A"}}]},
        {"choices": [{"message": {"content": "D"}}]},
        {"choices": [{"message": {"content": ""}}]},
        {"choices": [{"message": {"content": "a"}}]},
    ],
)
def test_unusable_replies_raise_protocol_error(payload: Any) -> None:
    with pytest.raises(ProtocolError):
        parse_reply(payload)


def test_surrounding_whitespace_is_tolerated() -> None:
    assert parse_reply(_reply(" C\n", None)).label == "C"


def test_error_messages() -> None:
    new = {
        "error": {
            "message": "The model `x` does not exist.",
            "type": "NotFoundError",
            "param": "model",
            "code": 404,
        }
    }
    assert error_message(new, "?") == "The model `x` does not exist."
    assert error_message({"object": "error", "message": "old style"}, "?") == "old style"
    assert error_message({"error": "Unauthorized"}, "?") == "Unauthorized"
    assert error_message(None, "fallback") == "fallback"
