"""Routes for large batch jobs: submit, status, results (NDJSON), cancel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from service import metrics
from service.errors import ApiError
from service.jobs import COMPLETED, JobBackend, JobInfo
from service.schemas import ErrorResponse, JobRequest, JobStatus, VerifyItem
from service.settings import Settings
from service.validation import check_items

JSONL_TYPES = ("application/x-ndjson", "application/jsonl", "application/x-jsonlines", "text/plain")


def _status(info: JobInfo) -> JobStatus:
    return JobStatus(**info.to_dict())


def _found(info: JobInfo | None, job_id: str) -> JobInfo:
    """The job, or a 404 that says it is unknown or expired."""
    if info is None:
        raise ApiError(404, "not_found", f"no job {job_id} (unknown or expired)")
    return info


def _parse_jsonl(body: bytes) -> list[dict[str, Any]]:
    """One item per line, or OpenAI Batch lines (`custom_id` + `body`)."""
    items: list[dict[str, Any]] = []
    for number, line in enumerate(body.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ApiError(
                422, "validation_error", f"line {number}: malformed JSON: {exc}"
            ) from exc
        if isinstance(row, dict) and "body" in row and "custom_id" in row:
            row = {**row["body"], "id": str(row["custom_id"])}
        try:
            items.append(VerifyItem.model_validate(row).model_dump(exclude_none=True))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise ApiError(
                422, "validation_error", f"line {number}: {where}: {first.get('msg')}"
            ) from exc
    return items


def build_router(jobs: JobBackend, settings: Settings, dependencies: list[Any]) -> APIRouter:
    max_items = settings.max_job_items
    router = APIRouter(prefix="/v1/jobs", tags=["jobs"], dependencies=dependencies)

    @router.post(
        "",
        response_model=JobStatus,
        status_code=202,
        summary="Submit a large batch (JSON `{items}` or JSONL upload)",
        openapi_extra={
            "requestBody": {
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/JobRequest"}},
                    "application/x-ndjson": {"schema": {"type": "string"}},
                },
                "required": True,
            }
        },
    )
    async def submit(
        request: Request,
        idempotency_key: Annotated[
            str | None, Header(max_length=256, description="Makes client retries safe.")
        ] = None,
    ) -> JobStatus:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await request.body()
        if content_type in JSONL_TYPES:
            items = _parse_jsonl(body)
        else:
            try:
                parsed = JobRequest.model_validate_json(body)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first.get("loc", ()))
                message = f"body.{where}: {first.get('msg')}" if where else str(first.get("msg"))
                raise ApiError(422, "validation_error", message, exc.errors()[:20]) from exc
            items = [item.model_dump(exclude_none=True) for item in parsed.items]
        check_items([VerifyItem.model_validate(i) for i in items], settings)
        if len(items) > max_items:
            raise ApiError(
                413,
                "job_too_large",
                f"{len(items)} items; the limit is {max_items}",
                {"limit": max_items},
            )
        info = await jobs.submit(items, idempotency_key)
        metrics.JOBS_SUBMITTED.inc()
        return _status(info)

    @router.get(
        "/{job_id}",
        response_model=JobStatus,
        summary="Status and progress",
        responses={404: {"model": ErrorResponse}},
    )
    async def status(job_id: str) -> JobStatus:
        return _status(_found(await jobs.get(job_id), job_id))

    @router.get(
        "/{job_id}/results",
        summary="Results as NDJSON, one per line, in input order",
        response_class=StreamingResponse,
        responses={
            200: {"content": {"application/x-ndjson": {}}},
            404: {"model": ErrorResponse},
            409: {"model": ErrorResponse, "description": "The job has not completed."},
        },
    )
    async def results(job_id: str) -> StreamingResponse:
        info = _found(await jobs.get(job_id), job_id)
        if info.status != COMPLETED:
            raise ApiError(
                409,
                "not_completed",
                f"job {job_id} is {info.status} ({info.done}/{info.total} items)",
                info.to_dict(),
            )

        async def lines() -> AsyncIterator[bytes]:
            async for chunk in jobs.results(job_id):
                yield chunk

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    @router.delete(
        "/{job_id}",
        response_model=JobStatus,
        summary="Cancel a job",
        responses={404: {"model": ErrorResponse}},
    )
    async def cancel(job_id: str) -> JobStatus:
        return _status(_found(await jobs.cancel(job_id), job_id))

    return router
