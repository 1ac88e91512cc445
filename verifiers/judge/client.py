"""Async client of an OpenAI-compatible (vLLM) judge server.

`JudgeClient.judge` turns one `JudgeRequest` into a `Verdict` of stage
``judge``: A -> accepted (``judge_correct``), B -> rejected
(``judge_incorrect``), C -> rejected (``judge_invalid``), with the first-token
probability of the letter, renormalised over A/B/C, as confidence. When the
judge cannot answer - breaker open, every retry failed, timeout, an error
status, a reply that is not exactly one letter - the verdict is an abstain
with reason ``judge_unavailable`` and the error in ``detail["error"]``: never
a guess, never an exception.

Robustness: bounded concurrency (a semaphore around each HTTP call), a hard
per-attempt timeout, retries with exponential backoff and jitter on
connection errors, timeouts, 429 and 5xx (not on other 4xx or on malformed
replies), several base URLs chosen least-loaded (round-robin on ties,
avoiding replicas that just failed), and a circuit breaker over whole calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import httpx

from verifiers.guards import screen_answer
from verifiers.judge.breaker import BreakerState, CircuitBreaker
from verifiers.judge.prompts import PROMPT_VERSION, build_prompt
from verifiers.judge.protocol import (
    JudgeReply,
    ProtocolError,
    build_request_body,
    error_message,
    parse_reply,
)
from verifiers.verdict import Reason, Stage, Verdict

_OUTCOME_BY_LABEL = {"A": "correct", "B": "incorrect", "C": "invalid"}


def normalize_base_url(url: str) -> str:
    """``http://h:8000``, ``http://h:8000/``, ``http://h:8000/v1/`` -> ``http://h:8000/v1``.

    A URL that already ends in a version segment or in a custom path ending
    with ``/v1`` is kept; anything else gets ``/v1`` appended.
    """
    base = url.strip().rstrip("/")
    if not base:
        raise ValueError("empty judge URL")
    if not base.startswith(("http://", "https://")):
        base = "http://" + base
    for suffix in ("/chat/completions", "/completions"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    if not base.endswith("/v1"):
        base += "/v1"
    return base


@dataclass(frozen=True)
class JudgeConfig:
    """Settings of a `JudgeClient`.

    urls: base URLs of one or more replicas (``http://host:8000`` or
        ``http://host:8000/v1``); requests are spread least-loaded.
    model: the served model name; empty means "whatever the server serves"
        (the field is left out of the request, which vLLM accepts).
    timeout_s: hard limit per HTTP attempt.
    retries: extra attempts after a retryable failure (connection error,
        timeout, 429, 5xx), with backoff ``backoff_s * 2**i`` (x jitter 0.5-1.5,
        at most ``backoff_max_s``).
    choice_field: ``structured_outputs`` (vLLM >= 0.10.2) or ``guided_choice``
        (older vLLM).
    breaker_failures / breaker_reset_s: consecutive failed calls that open
        the breaker; seconds before a half-open probe.
    hardened_min_confidence: in hardened mode an A below this probability is
        not accepted.
    """

    urls: tuple[str, ...]
    model: str
    api_key: str | None = None
    timeout_s: float = 30.0
    max_concurrency: int = 64
    retries: int = 2
    choice_field: Literal["structured_outputs", "guided_choice"] = "structured_outputs"
    top_logprobs: int = 5
    breaker_failures: int = 5
    breaker_reset_s: float = 30.0
    backoff_s: float = 0.2
    backoff_max_s: float = 2.0
    health_timeout_s: float = 2.0
    hardened_min_confidence: float = 0.9

    def __post_init__(self) -> None:
        urls = (self.urls,) if isinstance(self.urls, str) else tuple(self.urls)
        if not urls:
            raise ValueError("JudgeConfig needs at least one URL")
        object.__setattr__(self, "urls", tuple(normalize_base_url(u) for u in urls))
        if self.timeout_s <= 0 or self.health_timeout_s <= 0:
            raise ValueError("timeouts must be > 0")
        if self.max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        if self.retries < 0:
            raise ValueError("retries must be >= 0")
        if not 0 <= self.top_logprobs <= 20:
            raise ValueError("top_logprobs must be in [0, 20] (vLLM's default maximum)")
        if self.choice_field not in ("structured_outputs", "guided_choice"):
            raise ValueError(f"unknown choice_field {self.choice_field!r}")
        if self.backoff_s < 0 or self.backoff_max_s < 0:
            raise ValueError("backoff must be >= 0")


@dataclass(frozen=True)
class JudgeRequest:
    """One item for the judge.

    answer: the EXTRACTED final answer, never the raw response.
    domain: ``"math"`` leaves the question out of the prompt (unless
        `include_question` is True); any other domain includes it.
    hardened: the response was flagged by the guards; the prompt warns the
        judge and acceptance needs ``hardened_min_confidence``.
    screen: run `screen_answer` first and return its guard rejection without
        calling the judge. Turn off only for canary probes that measure the
        judge itself on adversarial input.
    """

    reference: str
    answer: str
    question: str | None = None
    domain: str = "math"
    include_question: bool | None = None
    hardened: bool = False
    screen: bool = True


class JudgeObserver(Protocol):
    """Receives one event per judge call and per breaker transition.

    `outcome` is one of ``correct``, ``incorrect``, ``invalid``, ``timeout``,
    ``error``, ``bad_reply``, ``breaker_open``. Implementations must be cheap;
    exceptions they raise are swallowed.
    """

    def call_finished(
        self, outcome: str, latency_s: float, prompt_tokens: int, completion_tokens: int
    ) -> None: ...

    def breaker_changed(self, state: BreakerState) -> None: ...


class NullObserver:
    """The default observer: ignores everything."""

    def call_finished(
        self, outcome: str, latency_s: float, prompt_tokens: int, completion_tokens: int
    ) -> None:
        return None

    def breaker_changed(self, state: BreakerState) -> None:
        return None


@dataclass
class _Replica:
    url: str
    inflight: int = 0
    failures: int = 0
    failed_at: float = float("-inf")


class _AttemptError(Exception):
    def __init__(self, message: str, *, retryable: bool, outcome: str) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.outcome = outcome


class JudgeClient:
    """Async judge client; one per process, shared by all requests."""

    def __init__(
        self,
        config: JudgeConfig,
        observer: JudgeObserver | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._observer: JudgeObserver = observer or NullObserver()
        self._clock = clock
        self._random = random.Random()
        self._replicas = [_Replica(url) for url in config.urls]
        self._turn = 0
        self._semaphore = asyncio.Semaphore(config.max_concurrency)
        self._breaker = CircuitBreaker(
            config.breaker_failures,
            config.breaker_reset_s,
            clock=clock,
            on_change=self._breaker_changed,
        )
        headers = {"Content-Type": "application/json"}
        if config.api_key:
            headers["Authorization"] = f"Bearer {config.api_key}"
        limits = httpx.Limits(
            max_connections=config.max_concurrency,
            max_keepalive_connections=config.max_concurrency,
        )
        self._http = httpx.AsyncClient(
            transport=transport,
            headers=headers,
            timeout=httpx.Timeout(config.timeout_s),
            limits=limits,
        )

    # ------------------------------------------------------------ properties
    @property
    def breaker_state(self) -> BreakerState:
        return self._breaker.state

    @property
    def prompt_version(self) -> str:
        return PROMPT_VERSION

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> JudgeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------ observer
    def _breaker_changed(self, state: BreakerState) -> None:
        with contextlib.suppress(Exception):
            self._observer.breaker_changed(state)

    def _finished(self, outcome: str, latency: float, reply: JudgeReply | None) -> None:
        with contextlib.suppress(Exception):
            self._observer.call_finished(
                outcome,
                latency,
                reply.prompt_tokens if reply else 0,
                reply.completion_tokens if reply else 0,
            )

    # ------------------------------------------------------------ judge
    async def judge(self, request: JudgeRequest) -> Verdict:
        """Judge one extracted answer against its reference. Never raises
        (except on cancellation): failures come back as an abstain with
        reason ``judge_unavailable``."""
        try:
            return await self._judge(request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return self._unavailable(request, f"internal error: {type(exc).__name__}: {exc}", 0)

    def _base_detail(self, request: JudgeRequest) -> dict[str, Any]:
        detail: dict[str, Any] = {"prompt_version": PROMPT_VERSION, "model": self.config.model}
        if request.hardened:
            detail["hardened"] = True
        return detail

    def _unavailable(self, request: JudgeRequest, error: str, attempts: int) -> Verdict:
        detail = self._base_detail(request)
        detail.update({"error": error, "attempts": attempts})
        return Verdict.abstain(
            Stage.JUDGE, Reason.JUDGE_UNAVAILABLE, extracted_answer=request.answer, detail=detail
        )

    async def _judge(self, request: JudgeRequest) -> Verdict:
        if request.screen:
            guard = screen_answer(request.answer)
            if guard.rejection is not None:
                detail = {**guard.rejection.detail, "prompt_version": PROMPT_VERSION}
                return dataclasses.replace(
                    guard.rejection, extracted_answer=request.answer, detail=detail
                )
        if not self._breaker.allow():
            self._finished("breaker_open", 0.0, None)
            return self._unavailable(request, "circuit breaker open", 0)
        try:
            return await self._call(request)
        except BaseException:
            # Cancelled, or a bug of ours: not the server's fault. Free the
            # half-open probe slot so the breaker cannot get stuck.
            self._breaker.release()
            raise

    async def _call(self, request: JudgeRequest) -> Verdict:
        prompt = build_prompt(
            request.reference,
            request.answer,
            request.question,
            request.domain,
            include_question=request.include_question,
            hardened=request.hardened,
        )
        body = build_request_body(
            self.config.model,
            prompt.messages(),
            choice_field=self.config.choice_field,
            top_logprobs=self.config.top_logprobs,
        )
        # ASCII escapes: valid JSON even for lone surrogates in model text.
        payload = json.dumps(body).encode("ascii")
        started = time.perf_counter()
        attempts = 0
        tried: set[str] = set()
        error: _AttemptError | None = None
        for attempt in range(self.config.retries + 1):
            if attempt:
                await asyncio.sleep(self._backoff(attempt - 1))
            attempts += 1
            replica = self._pick(tried)
            tried.add(replica.url)
            try:
                reply = await self._attempt(replica, payload)
            except _AttemptError as exc:
                error = exc
                if not exc.retryable:
                    break
                continue
            self._breaker.record_success()
            latency = time.perf_counter() - started
            self._finished(_OUTCOME_BY_LABEL[reply.label], latency, reply)
            return self._verdict(request, reply, attempts, prompt.includes_question)
        self._breaker.record_failure()
        assert error is not None
        self._finished(error.outcome, time.perf_counter() - started, None)
        return self._unavailable(request, str(error), attempts)

    def _backoff(self, retry: int) -> float:
        delay = self.config.backoff_s * (2**retry) * self._random.uniform(0.5, 1.5)
        return min(delay, self.config.backoff_max_s)

    def _pick(self, tried: set[str]) -> _Replica:
        """Least-loaded replica, avoiding ones that just failed or were tried
        in this call; round-robin among equals."""
        now = self._clock()
        count = len(self._replicas)
        self._turn = (self._turn + 1) % count

        def key(item: tuple[int, _Replica]) -> tuple[bool, bool, int, int]:
            index, replica = item
            cooling = replica.failures > 0 and now - replica.failed_at < self.config.breaker_reset_s
            return (replica.url in tried, cooling, replica.inflight, (index - self._turn) % count)

        return min(enumerate(self._replicas), key=key)[1]

    async def _attempt(self, replica: _Replica, payload: bytes) -> JudgeReply:
        replica.inflight += 1
        try:
            async with self._semaphore, asyncio.timeout(self.config.timeout_s):
                response = await self._http.post(replica.url + "/chat/completions", content=payload)
            reply = self._read(response)
        except TimeoutError as exc:
            self._replica_failed(replica)
            raise _AttemptError(
                f"timeout after {self.config.timeout_s:g}s ({replica.url})",
                retryable=True,
                outcome="timeout",
            ) from exc
        except httpx.TimeoutException as exc:
            self._replica_failed(replica)
            raise _AttemptError(
                f"timeout: {type(exc).__name__} ({replica.url})", retryable=True, outcome="timeout"
            ) from exc
        except httpx.HTTPError as exc:
            self._replica_failed(replica)
            raise _AttemptError(
                f"connection error: {type(exc).__name__}: {exc} ({replica.url})",
                retryable=True,
                outcome="error",
            ) from exc
        except _AttemptError:
            self._replica_failed(replica)
            raise
        finally:
            replica.inflight -= 1
        replica.failures = 0
        return reply

    def _replica_failed(self, replica: _Replica) -> None:
        replica.failures += 1
        replica.failed_at = self._clock()

    @staticmethod
    def _read(response: httpx.Response) -> JudgeReply:
        status = response.status_code
        try:
            data: Any = response.json()
        except (ValueError, UnicodeDecodeError):
            data = None
        if status >= 400:
            message = error_message(data, response.text[:300] or response.reason_phrase)
            retryable = status >= 500 or status in (408, 429)
            raise _AttemptError(f"HTTP {status}: {message}", retryable=retryable, outcome="error")
        if data is None:
            snippet = response.text[:80]
            raise _AttemptError(
                f"bad reply: body is not JSON ({snippet!r})", retryable=False, outcome="bad_reply"
            )
        try:
            return parse_reply(data)
        except ProtocolError as exc:
            raise _AttemptError(f"bad reply: {exc}", retryable=False, outcome="bad_reply") from exc

    def _verdict(
        self, request: JudgeRequest, reply: JudgeReply, attempts: int, with_question: bool
    ) -> Verdict:
        detail = self._base_detail(request)
        if not self.config.model and reply.model:
            detail["model"] = reply.model
        detail.update(
            {
                "label": reply.label,
                "probabilities": {k: round(v, 6) for k, v in reply.probabilities.items()},
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens,
                "attempts": attempts,
                "question_shown": with_question,
            }
        )
        confidence = reply.confidence
        common: dict[str, Any] = {
            "extracted_answer": request.answer,
            "confidence": confidence,
            "detail": detail,
        }
        if reply.label == "A":
            threshold = self.config.hardened_min_confidence
            if request.hardened and (confidence is None or confidence < threshold):
                detail["low_confidence_accept"] = True
                return Verdict.reject(Stage.JUDGE, Reason.JUDGE_INCORRECT, **common)
            return Verdict.accept(Stage.JUDGE, Reason.JUDGE_CORRECT, **common)
        if reply.label == "B":
            return Verdict.reject(Stage.JUDGE, Reason.JUDGE_INCORRECT, **common)
        return Verdict.reject(Stage.JUDGE, Reason.JUDGE_INVALID, **common)

    # ------------------------------------------------------------ health
    async def health(self) -> dict[str, Any]:
        """Reachability of every replica (``GET /v1/models``, short timeout).

        Returns ``{"state", "reachable", "model", "model_available",
        "prompt_version", "urls", "replicas": [{"url", "reachable", "models",
        "error"}]}``. Never raises.
        """
        results = await asyncio.gather(
            *(self._probe(replica.url) for replica in self._replicas), return_exceptions=True
        )
        replicas: list[dict[str, Any]] = []
        for replica, result in zip(self._replicas, results, strict=True):
            if isinstance(result, BaseException):
                replicas.append(
                    {"url": replica.url, "reachable": False, "models": [], "error": repr(result)}
                )
            else:
                replicas.append(result)
        return {
            "state": self.breaker_state.value,
            "reachable": any(r["reachable"] for r in replicas),
            "model": self.config.model,
            "model_available": any(
                (self.config.model in r["models"]) if self.config.model else bool(r["models"])
                for r in replicas
            ),
            "prompt_version": PROMPT_VERSION,
            "urls": [r.url for r in self._replicas],
            "replicas": replicas,
        }

    async def _probe(self, url: str) -> dict[str, Any]:
        timeout = self.config.health_timeout_s
        try:
            async with asyncio.timeout(timeout):
                response = await self._http.get(url + "/models", timeout=timeout)
        except (TimeoutError, httpx.HTTPError) as exc:
            return {"url": url, "reachable": False, "models": [], "error": type(exc).__name__}
        models: list[str] = []
        try:
            data = response.json()
            for entry in data.get("data", []) if isinstance(data, dict) else []:
                if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                    models.append(entry["id"])
        except (ValueError, UnicodeDecodeError):
            pass
        ok = response.status_code == 200
        return {
            "url": url,
            "reachable": ok,
            "models": models,
            "error": None if ok else f"HTTP {response.status_code}",
        }
