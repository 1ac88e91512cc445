"""Wiring of the judge client: settings in, a cascade judge call and metrics out."""

from __future__ import annotations

from typing import Any

from service import metrics
from service.settings import Settings
from verifiers.cascade import JudgeCall
from verifiers.verdict import Verdict

_BREAKER_VALUES = {"closed": 0, "half_open": 1, "half-open": 1, "open": 2}


class PrometheusJudgeObserver:
    """Records judge calls and breaker changes as `verifier_judge_*` metrics."""

    def call_finished(
        self, outcome: str, latency_s: float, prompt_tokens: int, completion_tokens: int
    ) -> None:
        metrics.JUDGE_REQUESTS.labels(outcome).inc()
        metrics.JUDGE_LATENCY.observe(latency_s)
        metrics.JUDGE_TOKENS.labels("prompt").inc(prompt_tokens)
        metrics.JUDGE_TOKENS.labels("completion").inc(completion_tokens)

    def breaker_changed(self, state: Any) -> None:
        name = str(getattr(state, "value", state)).lower()
        metrics.JUDGE_BREAKER.set(_BREAKER_VALUES.get(name, 0))


def make_judge(settings: Settings) -> tuple[Any, JudgeCall, str]:
    """(client, call, prompt version) for the configured judge URL(s)."""
    from verifiers.judge import PROMPT_VERSION, JudgeClient, JudgeConfig

    client = JudgeClient(
        JudgeConfig(
            urls=settings.judge_urls,
            model=settings.judge_model,
            api_key=settings.judge_api_key or None,
            timeout_s=settings.judge_timeout_s,
            max_concurrency=settings.judge_max_concurrency,
            retries=settings.judge_retries,
            choice_field=settings.judge_choice_field,
            breaker_failures=settings.judge_breaker_failures,
            breaker_reset_s=settings.judge_breaker_reset_s,
        ),
        PrometheusJudgeObserver(),
    )

    return client, judge_call(client), PROMPT_VERSION


def judge_call(client: Any, *, screen: bool = True) -> JudgeCall:
    """The cascade's judge call over a `JudgeClient`.

    screen=False skips the answer guards inside the client: only for canary
    probes that measure the bare model on adversarial input.
    """
    from verifiers.judge import JudgeRequest

    async def call(
        reference: str, answer: str, question: str | None, domain: str, hardened: bool
    ) -> Verdict:
        request = JudgeRequest(
            reference=reference,
            answer=answer,
            question=question,
            domain=domain,
            hardened=hardened,
            screen=screen,
        )
        verdict: Verdict = await client.judge(request)
        return verdict

    return call
