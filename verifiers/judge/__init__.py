"""LLM judge: an async client of an OpenAI-compatible (vLLM) server.

The judge sees the reference and the *extracted* answer (the question only
outside math), answers one constrained letter (A correct / B incorrect /
C invalid), and its first-token log-probabilities give a confidence. When it
cannot answer, the verdict is an abstain (``judge_unavailable``), never a
guess.

Public surface: `JudgeClient`, `JudgeConfig`, `JudgeRequest`, `JudgeObserver`,
`CircuitBreaker`, `BreakerState`, `PROMPT_VERSION`.
"""

from verifiers.judge.breaker import BreakerState, CircuitBreaker
from verifiers.judge.client import (
    JudgeClient,
    JudgeConfig,
    JudgeObserver,
    JudgeRequest,
    NullObserver,
    normalize_base_url,
)
from verifiers.judge.prompts import CHOICES, PROMPT_VERSION, build_prompt

__all__ = [
    "CHOICES",
    "PROMPT_VERSION",
    "BreakerState",
    "CircuitBreaker",
    "JudgeClient",
    "JudgeConfig",
    "JudgeObserver",
    "JudgeRequest",
    "NullObserver",
    "build_prompt",
    "normalize_base_url",
]
