"""The one exception route handlers raise for a 4xx."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error that becomes a 4xx `ErrorResponse` (`error`, `message`, `detail`)."""

    def __init__(self, status: int, error: str, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.detail = status, error, message, detail
