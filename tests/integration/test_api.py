"""The HTTP contract against a real uvicorn server (embedded defaults)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServiceProcess, metric, start_service


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    service = start_service(
        {
            "VERIFIER_MAX_BATCH_ITEMS": "50",
            "VERIFIER_MAX_RESPONSE_BYTES": "5000",
            "VERIFIER_MAX_BODY_BYTES": "200000",
            "VERIFIER_MATH_TIMEOUT_S": "2",
        },
        tmp_path_factory.mktemp("api"),
    )
    yield service
    service.stop()


@pytest.fixture
def client(api: ServiceProcess) -> Iterator[httpx.Client]:
    with api.client() as c:
        yield c


def test_verify_one_correct(client: httpx.Client) -> None:
    r = client.post(
        "/v1/verify",
        json={"id": "a", "response": "So $\\boxed{\\frac{1}{3}}$.", "reference": "12/36"},
    )
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == "a"
    assert body["correct"] is True and body["reward"] == 1.0
    assert body["stage"] == "math" and body["reason"] == "equal"
    assert body["extracted_answer"] == "\\frac{1}{3}"
    assert body["latency_ms"] >= 0


def test_verify_one_incorrect_and_generated_id(client: httpx.Client) -> None:
    body = client.post("/v1/verify", json={"response": "The answer is 4.", "reference": "5"}).json()
    assert body["correct"] is False and body["reward"] == 0.0 and body["reason"] == "not_equal"
    assert re.fullmatch(r"[0-9a-f]{32}", body["id"])


def test_no_answer_is_rejected_not_guessed(client: httpx.Client) -> None:
    body = client.post(
        "/v1/verify", json={"response": "<think>let me see", "reference": "5"}
    ).json()
    assert body["correct"] is False and body["reason"] == "no_answer"


def test_batch_in_input_order(client: httpx.Client) -> None:
    items = [
        {"id": f"i{k}", "response": f"\\boxed{{{k}}}", "reference": str(k if k % 2 else k + 1)}
        for k in range(20)
    ]
    results = client.post("/v1/verify/batch", json={"items": items}).json()["results"]
    assert [r["id"] for r in results] == [f"i{k}" for k in range(20)]
    assert [r["correct"] for r in results] == [bool(k % 2) for k in range(20)]


def test_batch_computes_identical_items_once(client: httpx.Client) -> None:
    before = metric(client, "verifier_stage_duration_seconds_count", stage="math")
    item = {"response": "\\boxed{\\sqrt{8}}", "reference": "2\\sqrt{2}"}
    results = client.post("/v1/verify/batch", json={"items": [item] * 6}).json()["results"]
    assert all(r["correct"] is True for r in results)
    after = metric(client, "verifier_stage_duration_seconds_count", stage="math")
    assert after - before == 1
    # and the next request is served from the cache
    again = client.post("/v1/verify", json=item).json()
    assert again["cached"] is True and again["correct"] is True


def test_cache_keys_on_extracted_answer(client: httpx.Client) -> None:
    first = client.post(
        "/v1/verify",
        json={"response": "Long reasoning... \\boxed{\\sin^2 y + \\cos^2 y}", "reference": "1"},
    ).json()
    second = client.post(
        "/v1/verify",
        json={
            "response": "Different words, same answer: \\boxed{\\sin^2 y + \\cos^2 y}",
            "reference": "1",
        },
    ).json()
    assert first["correct"] is True and first["cached"] is False
    assert second["correct"] is True and second["cached"] is True


def test_latex_bomb_abstains_and_others_still_answer(client: httpx.Client) -> None:
    import concurrent.futures

    # a product sympy evaluates term by term: far beyond a 1 s deadline
    slow = "\\prod_{k=1}^{3000000} (1+\\frac{1}{k})"
    bomb = {"response": f"\\boxed{{{slow}}}", "reference": "3", "options": {"timeout_s": 1}}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        slow = pool.submit(client.post, "/v1/verify", json=bomb)
        fast = client.post(
            "/v1/verify", json={"response": "\\boxed{x^2+2x+1}", "reference": "(x+1)^2"}
        )
        assert fast.status_code == 200 and fast.json()["correct"] is True
        body = slow.result(timeout=30).json()
    assert body["correct"] is None and body["reason"] == "timeout"
    # timeouts are never cached
    again = client.post("/v1/verify", json=bomb).json()
    assert again["cached"] is False and again["reason"] == "timeout"
    tower = {"response": "\\boxed{9^{9^{9^{9}}}}", "reference": "3", "options": {"timeout_s": 1}}
    body = client.post("/v1/verify", json=tower).json()
    assert body["correct"] is None and body["reason"] in ("timeout", "unparseable")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body.response"),
        ({"response": 5, "reference": "1"}, "body.response"),
        ({"response": "1", "reference": "1", "task": "poetry"}, "body.task"),
        ({"response": "1", "reference": "1", "surprise": True}, "body.surprise"),
        (
            {"response": "1", "reference": "1", "options": {"judge": "sometimes"}},
            "body.options.judge",
        ),
        (
            {"response": "1", "reference": "1", "options": {"tolerance": -1}},
            "body.options.tolerance",
        ),
    ],
)
def test_invalid_bodies_get_422_naming_the_field(
    client: httpx.Client, body: dict[str, object], field: str
) -> None:
    r = client.post("/v1/verify", json=body)
    assert r.status_code == 422
    payload = r.json()
    assert payload["error"] == "validation_error"
    assert field in [d["field"] for d in payload["detail"]]
    assert field in payload["message"]


def test_malformed_json_gets_422(client: httpx.Client) -> None:
    r = client.post(
        "/v1/verify", content=b'{"response": "1", ', headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    assert "malformed JSON" in r.json()["message"]


def test_batch_over_item_limit_gets_413(client: httpx.Client) -> None:
    items = [{"response": "1", "reference": "1"}] * 51
    r = client.post("/v1/verify/batch", json={"items": items})
    assert r.status_code == 413
    assert r.json()["error"] == "batch_too_large"


def test_item_over_size_limit_gets_413(client: httpx.Client) -> None:
    r = client.post("/v1/verify", json={"response": "x" * 5001, "reference": "1"})
    assert r.status_code == 413
    assert r.json()["detail"]["field"] == "response"


def test_body_over_limit_gets_413_by_content_length(client: httpx.Client) -> None:
    r = client.post(
        "/v1/verify",
        content=b"{" + b" " * 300_000 + b"}",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["error"] == "payload_too_large"


def test_chunked_body_over_limit_gets_413(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"response": "'
        for _ in range(30):
            yield b"y" * 10_000
        yield b'", "reference": "1"}'

    r = client.post("/v1/verify", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_health_ready_metrics(client: httpx.Client) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["ready"] is True
    assert body["components"]["workers"]["status"] == "up"
    assert body["components"]["cache"]["status"] == "disabled"
    assert body["components"]["judge"]["status"] == "disabled"
    text = client.get("/metrics").text
    for name in (
        "verifier_http_requests_total",
        "verifier_http_request_duration_seconds_bucket",
        "verifier_verdicts_total",
        "verifier_cache_requests_total",
        "verifier_pool_queue_depth",
        "verifier_pool_workers",
        "verifier_build_info",
    ):
        assert name in text, name
    assert 'le="60.0"' in text


def test_unknown_route_is_404_json(client: httpx.Client) -> None:
    r = client.get("/v1/nope")
    assert r.status_code == 404
    assert r.json()["error"] == "http_error"


def test_openapi_document_is_committed_and_current(client: httpx.Client) -> None:
    committed = json.loads((Path(__file__).parents[2] / "openapi" / "openapi.json").read_text())
    from service.openapi import document

    assert committed == document(), "openapi/openapi.json is stale: run `make openapi`"
    served = client.get("/openapi.json").json()
    assert served["paths"].keys() == committed["paths"].keys()


def test_every_model_and_field_is_documented() -> None:
    from service.openapi import document

    schemas = document()["components"]["schemas"]  # type: ignore[index]
    ours = {
        name: schema
        for name, schema in schemas.items()
        if name not in ("HTTPValidationError", "ValidationError")
    }
    assert {"VerifyItem", "VerifyResult", "BatchRequest", "BatchResponse", "ErrorResponse"} <= set(
        ours
    )
    missing = []
    for name, schema in ours.items():
        if not schema.get("description"):
            missing.append(name)
        for field, spec in schema.get("properties", {}).items():
            if not spec.get("description"):
                missing.append(f"{name}.{field}: description")
            if "examples" not in spec and "example" not in spec and "$ref" not in spec:
                missing.append(f"{name}.{field}: example")
    assert not missing, missing
