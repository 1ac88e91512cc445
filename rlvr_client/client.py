"""Typed HTTP clients for the verification service (standard library + httpx only;
orjson, when installed, decodes answers about 3x faster).

`VerifierClient` (blocking) and `AsyncVerifierClient` (asyncio) share one
contract:

* ``verify(response, reference, ...)`` -> one `VerifyResult`;
* ``verify_batch(items)`` -> results in input order, sent in chunks of
  ``batch_size`` (the async client keeps up to ``max_concurrency`` chunks in
  flight); a chunk the server finds too large (413) is split and resent;
* connection errors, timeouts, 429 and 5xx are retried with exponential
  backoff and jitter (``Retry-After`` is honoured) - verification is
  idempotent, so a retry is always safe; other 4xx raise `VerifierHTTPError`
  at once;
* when every attempt failed, `VerifierUnavailable` is raised.

Defaults come from ``RLVR_VERIFIER_URL`` and ``RLVR_VERIFIER_API_KEY`` when the
constructor is not given a URL or key.
"""

from __future__ import annotations

import asyncio
import json as _stdjson
import os
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

try:  # optional: large answers decode in a fraction of the time
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None  # type: ignore[assignment]

DEFAULT_URL = "http://127.0.0.1:8000"
URL_ENV = "RLVR_VERIFIER_URL"
API_KEY_ENV = "RLVR_VERIFIER_API_KEY"

#: Statuses worth another attempt: overload and server-side failures.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: 413 errors that a smaller chunk avoids (an oversized *item* cannot be split).
SPLITTABLE_413 = frozenset({"batch_too_large", "payload_too_large"})


class VerifierError(Exception):
    """Base class of every error the client raises."""


class VerifierHTTPError(VerifierError):
    """The service answered with an error status that a retry would not fix (or retries ran out).

    ``error``, ``message`` and ``detail`` come from the service's error body when it has one.
    """

    def __init__(
        self, status: int, error: str, message: str, detail: Any = None, *, url: str = ""
    ) -> None:
        super().__init__(f"HTTP {status} {error}: {message}")
        self.status, self.error, self.message, self.detail, self.url = (
            status,
            error,
            message,
            detail,
            url,
        )


class VerifierUnavailable(VerifierError):
    """No attempt reached the service or got an answer in time."""


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The verdict on one item, as the service returns it.

    ``correct`` is True (accepted), False (rejected) or None (abstain; ``reason``
    says why). ``reward`` is the service's number (0.0 on abstain).
    """

    id: str
    correct: bool | None
    reward: float
    stage: str
    reason: str
    cached: bool = False
    extracted_answer: str | None = None
    confidence: float | None = None
    flags: tuple[str, ...] = ()
    latency_ms: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def abstained(self) -> bool:
        """True when the service could not decide (``correct is None``)."""
        return self.correct is None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VerifyResult:
        """Build from the service's JSON; unknown keys are ignored."""
        return cls(
            id=str(data.get("id", "")),
            correct=data.get("correct"),
            reward=float(data.get("reward", 0.0)),
            stage=str(data.get("stage", "")),
            reason=str(data.get("reason", "")),
            cached=bool(data.get("cached", False)),
            extracted_answer=data.get("extracted_answer"),
            confidence=data.get("confidence"),
            flags=tuple(data.get("flags") or ()),
            latency_ms=float(data.get("latency_ms", 0.0)),
            detail=dict(data.get("detail") or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (as the service sent it)."""
        return {
            "id": self.id,
            "correct": self.correct,
            "reward": self.reward,
            "stage": self.stage,
            "reason": self.reason,
            "cached": self.cached,
            "extracted_answer": self.extracted_answer,
            "confidence": self.confidence,
            "flags": list(self.flags),
            "latency_ms": self.latency_ms,
            "detail": self.detail,
        }


def make_item(
    response: str,
    reference: str = "",
    *,
    id: str | None = None,
    task: str | None = None,
    question: str | None = None,
    tests: Mapping[str, Any] | None = None,
    language: str | None = None,
    domain: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A `/v1/verify` item as a dict, leaving out every field that is None."""
    item: dict[str, Any] = {"response": response, "reference": reference}
    for name, value in (
        ("id", id),
        ("task", task),
        ("question", question),
        ("tests", dict(tests) if tests is not None else None),
        ("language", language),
        ("domain", domain),
        ("options", dict(options) if options is not None else None),
    ):
        if value is not None:
            item[name] = value
    return item


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry.

    Attempt ``n`` (0-based) that failed waits ``min(max_backoff_s, backoff_s * 2**n)``
    scaled by a random factor in [0.5, 1] (or the server's ``Retry-After``, when
    longer, capped at ``max_backoff_s``). ``retries`` is the number of retries
    after the first attempt.
    """

    retries: int = 4
    backoff_s: float = 0.5
    max_backoff_s: float = 10.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (0-based)."""
        base = min(self.max_backoff_s, self.backoff_s * (2**attempt))
        wait = base * (0.5 + random.random() / 2)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_backoff_s))
        return wait


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _error_from(response: httpx.Response) -> VerifierHTTPError:
    error, message, detail = "http_error", response.reason_phrase or "error", None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = str(body.get("error", error))
        message = str(body.get("message", body.get("detail", message)))
        detail = body.get("detail")
    elif response.text:
        message = response.text[:500]
    return VerifierHTTPError(
        response.status_code, error, message, detail, url=str(response.request.url)
    )


def _body(payload: Any) -> dict[str, Any]:
    """httpx request arguments for a JSON body, encoded once for every attempt:
    the JSON text httpx's ``json=`` sends (NaN and infinities are refused, which
    orjson would turn into null silently, so encoding stays with the standard
    library)."""
    if payload is None:
        return {}
    text = _stdjson.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    try:
        content = text.encode()
    except UnicodeEncodeError:  # lone surrogates (broken model output): send them escaped
        content = _stdjson.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
    return {"content": content, "headers": {"content-type": "application/json"}}


def _json(response: httpx.Response) -> Any:
    try:
        if _orjson is not None:
            try:
                return _orjson.loads(response.content)
            except _orjson.JSONDecodeError:
                pass  # what orjson refuses (lone surrogates, ...) the standard library may take
        return response.json()
    except ValueError as exc:
        raise VerifierError(
            f"{response.request.url} answered {response.status_code} with a body that is not "
            f"JSON: {response.text[:200]!r}"
        ) from exc


def _chunks(items: Sequence[Mapping[str, Any]], size: int) -> Iterator[list[Mapping[str, Any]]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _results(body: Any, expected: int) -> list[VerifyResult]:
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list) or len(results) != expected:
        got = len(results) if isinstance(results, list) else "no"
        raise VerifierError(f"the service returned {got} results for {expected} items")
    return [VerifyResult.from_dict(r) for r in results]


class _Base:
    """Settings shared by the blocking and the asyncio client."""

    def __init__(
        self,
        base_url: str | None,
        *,
        api_key: str | None,
        timeout: float,
        connect_timeout: float,
        retries: int,
        backoff_s: float,
        max_backoff_s: float,
        batch_size: int,
        headers: Mapping[str, str] | None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.base_url = (base_url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV) or None
        self.headers = {"user-agent": "rlvr-client/0.1", **(headers or {})}
        if key:
            self.headers["authorization"] = f"Bearer {key}"
        self.timeout = httpx.Timeout(timeout, connect=min(connect_timeout, timeout))
        self.retry = RetryPolicy(retries, backoff_s, max_backoff_s)
        self.batch_size = batch_size
        #: Retries performed so far (all calls); useful in logs and tests.
        self.retries_done = 0

    def _should_split(self, exc: VerifierHTTPError, size: int) -> bool:
        return exc.status == 413 and exc.error in SPLITTABLE_413 and size > 1


class VerifierClient(_Base):
    """Blocking client; thread-safe (one connection pool shared by all threads).

    ``timeout`` bounds each attempt (read/write/pool), ``connect_timeout`` the
    TCP connect. Use as a context manager or call `close`.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        connect_timeout: float = 5.0,
        retries: int = 4,
        backoff_s: float = 0.5,
        max_backoff_s: float = 10.0,
        batch_size: int = 512,
        max_connections: int = 64,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url,
            api_key=api_key,
            timeout=timeout,
            connect_timeout=connect_timeout,
            retries=retries,
            backoff_s=backoff_s,
            max_backoff_s=max_backoff_s,
            batch_size=batch_size,
            headers=headers,
        )
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=self.headers,
            timeout=self.timeout,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
        )

    def __enter__(self) -> VerifierClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def request(self, method: str, path: str, json: Any = None) -> Any:
        """Send one request with retries; returns the decoded JSON body of a 2xx answer.

        Raises `VerifierHTTPError` for a non-retryable status (or a retryable one
        that outlived the retries) and `VerifierUnavailable` when no attempt got
        an answer.
        """
        last: Exception | None = None
        body = _body(json)
        for attempt in range(self.retry.retries + 1):
            retry_after = None
            try:
                response = self._http.request(method, path, **body)
            except httpx.TransportError as exc:
                last = exc
            else:
                if response.is_success:
                    return _json(response)
                last = _error_from(response)
                if response.status_code not in RETRY_STATUSES:
                    raise last
                retry_after = _retry_after(response)
            if attempt < self.retry.retries:
                self.retries_done += 1
                time.sleep(self.retry.delay(attempt, retry_after))
        if isinstance(last, VerifierHTTPError):
            raise last
        raise VerifierUnavailable(
            f"{method} {self.base_url}{path} failed after {self.retry.retries + 1} attempts: "
            f"{type(last).__name__}: {last}"
        ) from last

    def verify_item(self, item: Mapping[str, Any]) -> VerifyResult:
        """Verify one item dict (see `make_item`)."""
        return VerifyResult.from_dict(self.request("POST", "/v1/verify", dict(item)))

    def verify(self, response: str, reference: str = "", **fields: Any) -> VerifyResult:
        """Verify one (response, reference) pair; ``fields`` as in `make_item`."""
        return self.verify_item(make_item(response, reference, **fields))

    def verify_batch(self, items: Sequence[Mapping[str, Any]]) -> list[VerifyResult]:
        """Verify many items; one result per item, in input order."""
        results: list[VerifyResult] = []
        for chunk in _chunks(items, self.batch_size):
            results.extend(self._send_chunk(chunk))
        return results

    def _send_chunk(self, chunk: list[Mapping[str, Any]]) -> list[VerifyResult]:
        try:
            body = self.request("POST", "/v1/verify/batch", {"items": [dict(i) for i in chunk]})
        except VerifierHTTPError as exc:
            if not self._should_split(exc, len(chunk)):
                raise
            half = len(chunk) // 2
            return self._send_chunk(chunk[:half]) + self._send_chunk(chunk[half:])
        return _results(body, len(chunk))

    def health(self) -> dict[str, Any]:
        """``GET /healthz``."""
        return dict(self.request("GET", "/healthz"))

    def ready(self) -> dict[str, Any]:
        """``GET /readyz`` body, without retries (a 503 "not ready" answer is returned, not
        raised; an unreachable service raises `VerifierUnavailable`)."""
        try:
            response = self._http.get("/readyz")
        except httpx.TransportError as exc:
            raise VerifierUnavailable(f"GET {self.base_url}/readyz: {exc!r}") from exc
        return dict(_json(response))


class AsyncVerifierClient(_Base):
    """asyncio client; ``max_concurrency`` bounds the requests in flight from this client.

    Bound to the event loop it is first used in (like any httpx.AsyncClient).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        connect_timeout: float = 5.0,
        retries: int = 4,
        backoff_s: float = 0.5,
        max_backoff_s: float = 10.0,
        batch_size: int = 512,
        max_concurrency: int = 64,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url,
            api_key=api_key,
            timeout=timeout,
            connect_timeout=connect_timeout,
            retries=retries,
            backoff_s=backoff_s,
            max_backoff_s=max_backoff_s,
            batch_size=batch_size,
            headers=headers,
        )
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self._slots = asyncio.Semaphore(max_concurrency)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=self.headers,
            timeout=self.timeout,
            limits=httpx.Limits(
                max_connections=max_concurrency, max_keepalive_connections=max_concurrency
            ),
            transport=transport,
        )

    async def __aenter__(self) -> AsyncVerifierClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def request(self, method: str, path: str, json: Any = None) -> Any:
        """As `VerifierClient.request`, without blocking the event loop."""
        last: Exception | None = None
        body = _body(json)
        for attempt in range(self.retry.retries + 1):
            retry_after = None
            try:
                async with self._slots:
                    response = await self._http.request(method, path, **body)
            except httpx.TransportError as exc:
                last = exc
            else:
                if response.is_success:
                    return _json(response)
                last = _error_from(response)
                if response.status_code not in RETRY_STATUSES:
                    raise last
                retry_after = _retry_after(response)
            if attempt < self.retry.retries:
                self.retries_done += 1
                await asyncio.sleep(self.retry.delay(attempt, retry_after))
        if isinstance(last, VerifierHTTPError):
            raise last
        raise VerifierUnavailable(
            f"{method} {self.base_url}{path} failed after {self.retry.retries + 1} attempts: "
            f"{type(last).__name__}: {last}"
        ) from last

    async def verify_item(self, item: Mapping[str, Any]) -> VerifyResult:
        """Verify one item dict (see `make_item`)."""
        return VerifyResult.from_dict(await self.request("POST", "/v1/verify", dict(item)))

    async def verify(self, response: str, reference: str = "", **fields: Any) -> VerifyResult:
        """Verify one (response, reference) pair; ``fields`` as in `make_item`."""
        return await self.verify_item(make_item(response, reference, **fields))

    async def verify_batch(self, items: Sequence[Mapping[str, Any]]) -> list[VerifyResult]:
        """Verify many items, chunks concurrently; one result per item, in input order."""
        chunks = list(_chunks(items, self.batch_size))
        done = await asyncio.gather(*(self._send_chunk(chunk) for chunk in chunks))
        return [result for chunk_results in done for result in chunk_results]

    async def _send_chunk(self, chunk: list[Mapping[str, Any]]) -> list[VerifyResult]:
        try:
            body = await self.request(
                "POST", "/v1/verify/batch", {"items": [dict(i) for i in chunk]}
            )
        except VerifierHTTPError as exc:
            if not self._should_split(exc, len(chunk)):
                raise
            half = len(chunk) // 2
            first, second = await asyncio.gather(
                self._send_chunk(chunk[:half]), self._send_chunk(chunk[half:])
            )
            return first + second
        return _results(body, len(chunk))

    async def health(self) -> dict[str, Any]:
        """``GET /healthz``."""
        return dict(await self.request("GET", "/healthz"))

    async def ready(self) -> dict[str, Any]:
        """``GET /readyz`` body, without retries (a 503 "not ready" answer is returned, not
        raised; an unreachable service raises `VerifierUnavailable`)."""
        try:
            response = await self._http.get("/readyz")
        except httpx.TransportError as exc:
            raise VerifierUnavailable(f"GET {self.base_url}/readyz: {exc!r}") from exc
        return dict(_json(response))
