"""The verify fast path answers exactly as the FastAPI routes do.

Two real service processes with the same settings, one with the fast path
(the default) and one with ``VERIFIER_FAST_PATH=false``, get the same
requests - ordinary ones and every kind of bad one - and must give the same
status, the same body (up to ids and timings) and the same headers that
matter. Metrics and the access log must count fast-path requests as well.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import ServiceProcess, metric, start_service

KEY = "fast-path-test-key"
SETTINGS = {
    "VERIFIER_API_KEYS": f"{KEY},clé",  # one non-ASCII key: header bytes vs text
    "VERIFIER_MAX_BATCH_ITEMS": "5",
    "VERIFIER_MAX_RESPONSE_BYTES": "2000",
    "VERIFIER_MAX_BODY_BYTES": "50000",
    "VERIFIER_RATE_LIMIT_PER_S": "1000",
    "VERIFIER_LOG_LEVEL": "info",
}
AUTH = {"authorization": f"Bearer {KEY}"}
JSON = {"content-type": "application/json"}
Headers = dict[str, str] | list[tuple[str, str | bytes]]


@pytest.fixture(scope="module")
def pair(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    fast = start_service(SETTINGS, tmp_path_factory.mktemp("fast"))
    slow = start_service(
        {**SETTINGS, "VERIFIER_FAST_PATH": "false"}, tmp_path_factory.mktemp("slow")
    )
    yield fast, slow
    fast.stop()
    slow.stop()


def _raw(headers: Headers) -> list[tuple[bytes, bytes]]:
    pairs = headers.items() if isinstance(headers, dict) else headers
    return [(k.encode(), v if isinstance(v, bytes) else v.encode()) for k, v in pairs]


def _normalised(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        return response.text
    results = body.get("results", [body]) if isinstance(body, dict) else []
    for result in results:
        if isinstance(result, dict) and "latency_ms" in result:
            result["latency_ms"] = 0
            result["cached"] = None  # the two services have different cache histories
            if len(result.get("id", "")) == 32:
                result["id"] = "generated"
    return body


ITEM = {"response": "so $\\boxed{\\frac{1}{2}}$", "reference": "0.5"}
CASES: dict[str, tuple[str, bytes, Headers]] = {
    "single": ("/v1/verify", json.dumps(ITEM).encode(), {**AUTH, **JSON}),
    "single with id and options": (
        "/v1/verify",
        json.dumps({**ITEM, "id": "s-1", "options": {"tolerance": 0.01}}).encode(),
        {**AUTH, **JSON},
    ),
    "batch": (
        "/v1/verify/batch",
        json.dumps({"items": [ITEM, {"response": "\\boxed{3}", "reference": "4"}]}).encode(),
        {**AUTH, **JSON},
    ),
    "no content type": ("/v1/verify", json.dumps(ITEM).encode(), AUTH),
    "json with charset": (
        "/v1/verify",
        json.dumps(ITEM).encode(),
        {**AUTH, "content-type": "application/json; charset=utf-8"},
    ),
    "missing key": ("/v1/verify", json.dumps(ITEM).encode(), JSON),
    "wrong key, then the right one": (
        "/v1/verify",
        json.dumps(ITEM).encode(),
        [("authorization", "Bearer nope"), ("authorization", f"Bearer {KEY}"), *JSON.items()],
    ),
    "right key, then a wrong one": (
        "/v1/verify",
        json.dumps(ITEM).encode(),
        [("authorization", f"Bearer {KEY}"), ("authorization", "Bearer nope"), *JSON.items()],
    ),
    "non-ASCII key as UTF-8 bytes": (
        "/v1/verify",
        json.dumps(ITEM).encode(),
        [("authorization", "Bearer clé".encode()), *JSON.items()],
    ),
    "text/plain, then application/json": (
        "/v1/verify",
        json.dumps(ITEM).encode(),
        [*AUTH.items(), ("content-type", "text/plain"), ("content-type", "application/json")],
    ),
    "wrong key": ("/v1/verify", json.dumps(ITEM).encode(), {"authorization": "Bearer no", **JSON}),
    "malformed json": ("/v1/verify", b'{"response": ', {**AUTH, **JSON}),
    "NaN tolerance": (
        "/v1/verify",
        b'{"response": "1", "reference": "1", "options": {"tolerance": NaN}}',
        {**AUTH, **JSON},
    ),
    "integer beyond 64 bits": (
        "/v1/verify",
        b'{"response": "1", "reference": "1", "id": 123456789012345678901234567890}',
        {**AUTH, **JSON},
    ),
    "lone surrogate": (
        "/v1/verify",
        b'{"response": "\\ud800 \\\\boxed{1}", "reference": "1"}',
        {**AUTH, **JSON},
    ),
    "missing field": ("/v1/verify", b'{"response": "1"}', {**AUTH, **JSON}),
    "extra field": ("/v1/verify", b'{"response": "1", "reference": "1", "x": 1}', {**AUTH, **JSON}),
    "not an object": ("/v1/verify", b"[1, 2]", {**AUTH, **JSON}),
    "empty body": ("/v1/verify", b"", {**AUTH, **JSON}),
    "text/plain body": (
        "/v1/verify",
        json.dumps(ITEM).encode(),
        {**AUTH, "content-type": "text/plain"},
    ),
    "response too long": (
        "/v1/verify",
        json.dumps({"response": "x" * 3000, "reference": "1"}).encode(),
        {**AUTH, **JSON},
    ),
    "batch too large": (
        "/v1/verify/batch",
        json.dumps({"items": [ITEM] * 6}).encode(),
        {**AUTH, **JSON},
    ),
    "code item without tests": (
        "/v1/verify",
        json.dumps({"response": "print(1)", "reference": "", "task": "code"}).encode(),
        {**AUTH, **JSON},
    ),
    "body over the limit": (
        "/v1/verify",
        json.dumps({"response": "y" * 60000, "reference": "1"}).encode(),
        {**AUTH, **JSON},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_answer_as_the_fastapi_route(
    pair: tuple[ServiceProcess, ServiceProcess], case: str
) -> None:
    path, body, headers = CASES[case]
    answers = []
    for service in pair:
        with httpx.Client(base_url=service.url, timeout=30) as client:
            answers.append(client.post(path, content=body, headers=_raw(headers)))
    fast, slow = answers
    assert fast.status_code == slow.status_code, (case, fast.text, slow.text)
    assert _normalised(fast) == _normalised(slow), case
    assert fast.headers["content-type"] == slow.headers["content-type"]
    assert fast.headers.get("x-request-id")
    assert fast.status_code < 500


def test_an_absurd_content_length_gets_the_routes_answer(
    pair: tuple[ServiceProcess, ServiceProcess],
) -> None:
    body = json.dumps(ITEM).encode()
    length = "0" * 5000 + str(len(body))  # small, but beyond int()'s default digit limit
    statuses = []
    for service in pair:
        host, port = service.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            head = (
                f"POST /v1/verify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {length}\r\n"
                "Connection: close\r\n\r\n"
            )
            sock.sendall(head.encode() + body)
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        statuses.append(int(reply.split(b" ", 2)[1]))
    fast, slow = statuses
    assert fast == slow and fast < 500, statuses


def test_request_id_is_echoed_and_requests_are_counted(
    pair: tuple[ServiceProcess, ServiceProcess],
) -> None:
    fast, _ = pair
    with httpx.Client(base_url=fast.url, timeout=30, headers=AUTH) as client:
        before = metric(client, "verifier_http_requests_total", endpoint="/v1/verify", status="200")
        response = client.post("/v1/verify", json=ITEM, headers={"x-request-id": "trace-42"})
        assert response.status_code == 200
        assert response.headers["x-request-id"] == "trace-42"
        assert (
            metric(client, "verifier_http_requests_total", endpoint="/v1/verify", status="200")
            == before + 1
        )
    log = fast.log()
    line = next(x for x in log.splitlines() if '"request_id":"trace-42"' in x)
    entry = json.loads(line)
    assert entry["path"] == "/v1/verify" and entry["status"] == 200


def test_rate_limit_applies_to_the_fast_path(tmp_path_factory: pytest.TempPathFactory) -> None:
    service = start_service(
        {"VERIFIER_RATE_LIMIT_PER_S": "1", "VERIFIER_RATE_LIMIT_BURST": "2"},
        tmp_path_factory.mktemp("limited"),
    )
    try:
        with httpx.Client(base_url=service.url, timeout=30) as client:
            codes = [client.post("/v1/verify", json=ITEM).status_code for _ in range(4)]
    finally:
        service.stop()
    assert codes[:2] == [200, 200]
    assert 429 in codes[2:]
