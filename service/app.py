"""The FastAPI application: factory, lifespan, middleware and routes.

Handlers are thin: validate limits, call `VerificationService`, return wire
models. Bad input gets a 4xx with a clear message (422 for malformed or
invalid bodies, 413 for oversized ones, 401 for missing keys).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from service import logs, metrics
from service.compat_routes import build_router as build_compat_router
from service.errors import STORE_RETRY_AFTER_S, ApiError, store_unavailable
from service.fast_path import VerifierApp, VerifyFastPath
from service.job_routes import build_router as build_job_router
from service.middleware import BodyLimitMiddleware, ObserveMiddleware
from service.ratelimit import RateLimitMiddleware, make_buckets
from service.schemas import (
    BatchRequest,
    BatchResponse,
    ComponentState,
    ErrorResponse,
    HealthResponse,
    ReadyResponse,
    VerifyItem,
    VerifyResult,
)
from service.settings import Settings
from service.stats_routes import build_router as build_stats_router
from service.validation import check_items
from service.verification import VerificationService
from verifiers.heap import settle_heap
from verifiers.verdict import VERIFIER_VERSION

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
#: Open too: the API description (FastAPI's defaults).
DOC_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
_HTTP_ERRORS = {408: "request_timeout", 413: "payload_too_large", 429: "rate_limited"}


def _error_response(status: int, error: str, message: str, detail: Any = None) -> JSONResponse:
    body = ErrorResponse(error=error, message=message, detail=detail)
    return JSONResponse(body.model_dump(), status_code=status)


def _describe_validation(exc: RequestValidationError) -> tuple[str, list[dict[str, Any]]]:
    errors = []
    for err in exc.errors():
        location = ".".join(str(part) for part in err.get("loc", ()))
        errors.append({"field": location, "message": err.get("msg", ""), "type": err.get("type")})
    if any(e["type"] == "json_invalid" for e in errors):
        return "malformed JSON body: " + "; ".join(e["message"] for e in errors[:1]), errors
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return summary or "invalid request", errors


def create_app(settings: Settings | None = None) -> VerifierApp:
    """Build the application; the lifespan owns pools and connections."""
    settings = settings or Settings()
    logs.configure(settings.log_level, settings.log_format)
    logs.redact_secrets([*settings.api_key_set, settings.judge_api_key])
    if settings.access_log:  # ours carries the request id; uvicorn's would duplicate it
        logging.getLogger("uvicorn.access").disabled = True
    service = VerificationService(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        settle_heap()  # see verifiers/heap.py: a third of a small request's cost
        try:
            yield
        finally:
            await service.close()

    app = VerifierApp(
        title="rlvr-verifier",
        version=VERIFIER_VERSION,
        description=(
            "Answer verification for RL training: guards, symbolic math, a code sandbox and "
            "an LLM judge, with a cache and online error-rate estimates."
        ),
        lifespan=lifespan,
        responses={
            401: {"model": ErrorResponse, "description": "Missing or wrong API key."},
            408: {"model": ErrorResponse, "description": "The body did not arrive in time."},
            413: {"model": ErrorResponse, "description": "Body or item over the limits."},
            422: {"model": ErrorResponse, "description": "Malformed JSON or invalid fields."},
            429: {
                "model": ErrorResponse,
                "description": "Per-key rate limit exceeded (`Retry-After` says when to retry).",
            },
            503: {
                "model": ErrorResponse,
                "description": "The job store (Redis) is down or full; retry later.",
            },
        },
    )
    app.state.service = service
    app.state.settings = settings
    buckets = None
    if settings.rate_limit_per_s > 0:
        buckets = make_buckets(settings.rate_limit_per_s, settings.rate_limit_burst)
        app.add_middleware(
            RateLimitMiddleware,
            buckets=buckets,
            keys=settings.api_key_set,
            exempt=PUBLIC_PATHS | DOC_PATHS,
        )
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        timeout_s=settings.body_timeout_s,
    )

    app.add_middleware(ObserveMiddleware, access=settings.access_log)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        summary, errors = _describe_validation(exc)
        return _error_response(422, "validation_error", summary, errors)

    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error_response(exc.status, exc.error, exc.message, exc.detail)

    @app.exception_handler(RedisError)
    async def on_store_error(request: Request, exc: RedisError) -> JSONResponse:
        # Jobs live in Redis: down or out of memory is "try again", not a 500.
        response = _error_response(503, "store_unavailable", store_unavailable(exc))
        response.headers["retry-after"] = str(STORE_RETRY_AFTER_S)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.__cause__ is not None:
            # FastAPI's body parser: a body that is not UTF-8 is malformed JSON too.
            cause = f"{type(exc.__cause__).__name__}: {exc.__cause__}"[:200]
            return _error_response(422, "validation_error", f"malformed JSON body: {cause}")
        error = _HTTP_ERRORS.get(exc.status_code, "http_error")
        response = _error_response(exc.status_code, error, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    keys = settings.api_key_set

    def valid_key(token: str) -> bool:
        return any(hmac.compare_digest(token.strip().encode(), k.encode()) for k in keys)

    def bearer(request: Request) -> str:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return token if scheme.lower() == "bearer" else ""

    async def require_key(request: Request) -> None:
        if keys and not valid_key(bearer(request)):
            raise ApiError(401, "unauthorized", "a valid 'Authorization: Bearer <key>' is required")

    async def require_key_or_query(request: Request) -> None:
        """For trainers that can only be given a URL (OpenRLHF, slime, NeMo-Gym):
        the key may also come as ``?api_key=`` (redacted from logs like any key)."""
        if keys and not valid_key(bearer(request) or request.query_params.get("api_key", "")):
            raise ApiError(
                401,
                "unauthorized",
                "a valid 'Authorization: Bearer <key>' or '?api_key=<key>' is required",
            )

    def check_item_sizes(items: list[VerifyItem]) -> None:
        check_items(items, settings)

    secured = [Depends(require_key)]

    @app.post(
        "/v1/verify",
        response_model=VerifyResult,
        dependencies=secured,
        summary="Verify one item",
        tags=["verify"],
    )
    async def verify(item: VerifyItem) -> VerifyResult:
        check_item_sizes([item])
        (result,) = await service.verify_items([item], "verify")
        return result

    @app.post(
        "/v1/verify/batch",
        response_model=BatchResponse,
        dependencies=secured,
        summary="Verify many items (results in input order)",
        tags=["verify"],
    )
    async def verify_batch(batch: BatchRequest) -> BatchResponse:
        if len(batch.items) > settings.max_batch_items:
            raise ApiError(
                413,
                "batch_too_large",
                f"{len(batch.items)} items; the limit is {settings.max_batch_items} "
                "(use /v1/jobs for larger work)",
                {"limit": settings.max_batch_items},
            )
        check_item_sizes(batch.items)
        return BatchResponse(results=await service.verify_items(batch.items, "batch"))

    app.include_router(build_job_router(service.jobs, settings, secured))
    app.include_router(build_stats_router(service.estimator, settings.max_batch_items, secured))
    app.include_router(build_compat_router(service, [Depends(require_key_or_query)]))

    @app.get("/healthz", response_model=HealthResponse, tags=["ops"], summary="Liveness")
    async def healthz() -> HealthResponse:
        return HealthResponse(status="ok", version=VERIFIER_VERSION)

    @app.get(
        "/readyz",
        response_model=ReadyResponse,
        tags=["ops"],
        summary="Readiness",
        responses={503: {"model": ReadyResponse, "description": "Not ready."}},
    )
    async def readyz() -> JSONResponse:
        report = await readiness(service)
        return JSONResponse(report.model_dump(), status_code=200 if report.ready else 503)

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics", response_class=Response)
    async def metrics_endpoint() -> Response:
        service.update_saturation()
        await service.estimator.refresh_gauges()
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    # The hot verify routes skip FastAPI's per-request machinery; their errors
    # and their OpenAPI description still come from the routes above.
    if settings.fast_path:
        app.fast_path = VerifyFastPath(service, settings, buckets=buckets)
    return app


async def readiness(service: VerificationService) -> ReadyResponse:
    """Workers decide readiness; cache, judge and sandbox only degrade it."""
    components: dict[str, ComponentState] = {}
    pool = service.pool
    components["workers"] = ComponentState(
        status="up" if pool.alive else "down",
        detail={
            "workers": pool.size,
            "busy": pool.busy_workers,
            "queue_depth": pool.queue_depth,
            "restarts": dict(pool.restarts),
            "job_queue_depth": service.jobs.queue_depth(),
        },
    )
    jobs_state, jobs_detail = service.jobs.describe()
    components["jobs"] = ComponentState(status=jobs_state, detail=jobs_detail)
    cache_state = await service.cache.refresh()
    components["cache"] = ComponentState(
        status="disabled" if cache_state == "disabled" else cache_state,
        detail=service.cache.describe(),
    )
    if service.judge is None:
        components["judge"] = ComponentState(status="disabled", detail={"reason": "no judge URL"})
    else:
        health = await service.judge.health()
        up = health.get("reachable") and health.get("state") != "open"
        components["judge"] = ComponentState(status="up" if up else "down", detail=health)
    ok, why = service.code_status
    components["sandbox"] = ComponentState(
        status="up" if ok else "down", detail={"detail": why, **_languages()}
    )
    ready = components["workers"].status == "up"
    degraded = any(c.status == "down" for name, c in components.items() if name != "workers")
    status = "unavailable" if not ready else ("degraded" if degraded else "ok")
    return ReadyResponse(ready=ready, status=status, components=components)


def _languages() -> dict[str, Any]:
    try:
        from verifiers.code import supported_languages
    except ImportError:
        return {"languages": []}
    return {"languages": supported_languages()}
