"""Generated bad input: schemathesis against the served OpenAPI document.

Every operation of a real running server's `/openapi.json` gets schema-valid
(positive) and schema-invalid (negative) requests. Each response must not be
a 5xx, must carry a documented status code and content type, and its body
must match the documented schema; schema-invalid requests must be rejected.

Not checked: that every schema-valid request is *accepted*. The service
validates more than the JSON schema can say (a code `tests` spec needs a
`kind`, sizes have limits, a language needs its compiler) and answers those
with a documented 422 or 413.

Bounded: a few dozen examples per operation and mode, no shrinking, no
example database, so the module takes well under a minute.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ServiceProcess, start_service

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis.specs.openapi.checks import positive_data_acceptance  # noqa: E402

EXAMPLES = 40
#: JSONL job uploads are text as far as the generator is concerned.
schemathesis.serializer.alias("application/x-ndjson", "text/plain")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    service = start_service(
        {
            "VERIFIER_MATH_TIMEOUT_S": "1",
            "VERIFIER_CODE_CPU_S": "1",
            "VERIFIER_CODE_WALL_S": "2",
            "VERIFIER_CODE_TOTAL_WALL_S": "4",
            "VERIFIER_MAX_BATCH_ITEMS": "20",
            "VERIFIER_ACCESS_LOG": "false",
        },
        tmp_path_factory.mktemp("fuzz"),
    )
    yield service
    service.stop()


def _operations(api: ServiceProcess) -> list[object]:
    schema = schemathesis.openapi.from_url(api.url + "/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


def _fuzz(operation: object, mode: object, base_url: str) -> tuple[int, str | None]:
    """(requests sent, failure or None) for one operation in one generation mode."""
    sent = 0

    @given(case=operation.as_strategy(generation_mode=mode))  # type: ignore[attr-defined]
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: object) -> None:
        nonlocal sent
        sent += 1
        case.call_and_validate(  # type: ignore[attr-defined]
            base_url=base_url, timeout=30, excluded_checks=[positive_data_acceptance]
        )

    try:
        run()
    except Unsatisfiable:
        return sent, None  # nothing schema-invalid to generate (no body, free strings)
    except BaseException as exc:  # schemathesis' FailureGroup is an ExceptionGroup
        if isinstance(exc, KeyboardInterrupt):
            raise
        return sent, f"{type(exc).__name__}: {exc}"[:2000]
    return sent, None


def test_generated_requests_get_no_5xx_and_conforming_responses(api: ServiceProcess) -> None:
    operations = _operations(api)
    assert len(operations) >= 10  # the document really was served and parsed
    failures: dict[str, str] = {}
    counts: dict[str, int] = {}
    started = time.monotonic()
    for operation in operations:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            name = f"{operation.method.upper()} {operation.path} ({mode.value})"  # type: ignore[attr-defined]
            counts[name], failure = _fuzz(operation, mode, api.url)
            if failure is not None:
                failures[name] = failure
    elapsed = time.monotonic() - started
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
    assert sum(counts.values()) >= EXAMPLES * 10, counts
    assert elapsed < 90
    with httpx.Client(base_url=api.url) as client:
        assert client.get("/readyz").json()["ready"] is True


# ------------------------------------------------------------------ regressions
# Each finding of the fuzzer, fixed in the service, pinned here.


@pytest.mark.parametrize(
    "path", ["/v1/verify", "/v1/verify/batch", "/v1/feedback", "/compat/slime", "/compat/openrlhf"]
)
def test_body_that_is_not_utf8_is_malformed_json_422(api: ServiceProcess, path: str) -> None:
    # Found by schemathesis: FastAPI answered an undocumented 400 "There was an
    # error parsing the body" for bytes that do not decode as UTF-8.
    with httpx.Client(base_url=api.url) as client:
        response = client.post(
            path, content=b"\xff\xfe\x03\xa0t\x9c", headers={"content-type": "application/json"}
        )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "validation_error"
    assert body["message"].startswith("malformed JSON body")


@pytest.mark.parametrize(
    "options",
    [
        {"tolerance": False},
        {"tolerance": "0.01"},
        {"timeout_s": True},
        {"timeout_s": "2"},
        {"all_or_nothing": "yes"},
        {"all_or_nothing": 1},
    ],
)
def test_options_of_the_wrong_json_type_are_rejected(
    api: ServiceProcess, options: dict[str, object]
) -> None:
    # Found by schemathesis: `"tolerance": false` was accepted (lax coercion to
    # 0.0) although the schema says number.
    item = {"response": "\\boxed{1}", "reference": "1", "options": options}
    with httpx.Client(base_url=api.url) as client:
        single = client.post("/v1/verify", json=item)
        batch = client.post("/v1/verify/batch", json={"items": [item]})
        feedback = client.post("/v1/feedback", json={"labels": [{"id": "x", "correct": "yes"}]})
    for response in (single, batch, feedback):
        assert response.status_code == 422, response.text
    assert "options" in single.json()["message"]
