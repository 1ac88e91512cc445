"""Routes of the online FN/FP estimator: `POST /v1/feedback`, `GET /v1/stats`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from service.errors import ApiError
from service.estimator import ErrorRateEstimator
from service.schemas import FeedbackRequest, FeedbackResponse, StatsResponse


def build_router(
    estimator: ErrorRateEstimator, max_labels: int, dependencies: list[Any]
) -> APIRouter:
    """The estimator's routes; `dependencies` carries the API-key check."""
    router = APIRouter(prefix="/v1", tags=["estimates"], dependencies=dependencies)

    @router.post(
        "/feedback",
        response_model=FeedbackResponse,
        summary="Ground-truth labels for past verdicts (feeds the confusion counts)",
    )
    async def feedback(body: FeedbackRequest) -> FeedbackResponse:
        if len(body.labels) > max_labels:
            raise ApiError(
                413,
                "too_many_labels",
                f"{len(body.labels)} labels; the limit is {max_labels}",
                {"limit": max_labels},
            )
        return await estimator.feedback((label.id, label.correct) for label in body.labels)

    @router.get(
        "/stats",
        response_model=StatsResponse,
        summary="Online FN/FP estimates with confidence intervals, per stage, source and domain",
    )
    async def stats() -> StatsResponse:
        return await estimator.stats()

    return router
