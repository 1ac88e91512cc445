"""Request checks that pydantic cannot express: configured sizes and code test specs."""

from __future__ import annotations

from collections.abc import Sequence

from service.errors import ApiError
from service.schemas import VerifyItem
from service.settings import Settings


def check_items(items: Sequence[VerifyItem], settings: Settings) -> None:
    """Raise `ApiError` (413 for sizes, 422 for test specs) naming the item and field."""
    limit = settings.max_response_bytes
    for index, item in enumerate(items):
        for name in ("response", "reference", "question"):
            value = getattr(item, name)
            if value is not None and len(value) > limit:
                raise ApiError(
                    413,
                    "item_too_large",
                    f"items[{index}].{name} is {len(value)} characters; the limit is {limit}",
                    {"index": index, "field": name, "limit": limit},
                )
        if item.tests is not None or item.task == "code":
            _check_code(index, item)


def _check_code(index: int, item: VerifyItem) -> None:
    try:
        from verifiers.code import TestSpecError, supported_languages
        from verifiers.code.languages import get_language
        from verifiers.code.spec import parse_tests
    except ImportError:  # pragma: no cover - the code stage is part of the package
        return
    if item.tests is None:
        raise ApiError(
            422,
            "validation_error",
            f"items[{index}].tests: required for task 'code'",
            {"index": index, "field": "tests"},
        )
    try:
        parse_tests(item.tests)
    except TestSpecError as exc:
        raise ApiError(
            422,
            "validation_error",
            f"items[{index}].tests: {exc}",
            {"index": index, "field": "tests"},
        ) from exc
    if item.language is not None and get_language(item.language) is None:
        raise ApiError(
            422,
            "validation_error",
            f"items[{index}].language: {item.language!r} is not supported here "
            f"(supported: {', '.join(supported_languages())})",
            {"index": index, "field": "language"},
        )
