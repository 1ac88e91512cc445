"""The one exception route handlers raise for a 4xx."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error that becomes a 4xx `ErrorResponse` (`error`, `message`, `detail`)."""

    def __init__(self, status: int, error: str, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.detail = status, error, message, detail


#: ``Retry-After`` of a 503 for a store (Redis) that is down or full.
STORE_RETRY_AFTER_S = 5


def store_unavailable(exc: Exception) -> str:
    """The message of a 503 when the store (Redis) is down or out of memory."""
    return f"the job store is unavailable: {type(exc).__name__}: {exc}"[:300]
