"""Access: with API keys set, every non-public route refuses missing and wrong
keys; keys never reach the logs; per-key rate limits when configured.

The routes come from the app itself, so a route added later is covered
without touching this file.
"""

from __future__ import annotations

import concurrent.futures
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import fastapi.routing
import httpx
import pytest
from fastapi import FastAPI

from service.app import DOC_PATHS, PUBLIC_PATHS, create_app
from service.settings import Settings
from tests.conftest import ServiceProcess, start_service

KEYS = ("sk-test-4f1d2c9a7b", "sk-test-0e8b5a3c6d")
WRONG = (
    None,  # no header
    "Bearer",
    "Bearer sk-test-wrong",
    f"Bearer {KEYS[0]}x",  # a prefix of a valid key is not a valid key
    f"Bearer {KEYS[0][:-1]}",
    f"Basic {KEYS[0]}",  # right key, wrong scheme
    KEYS[0],  # no scheme
    f"Bearer {KEYS[0]},{KEYS[1]}",
)
ITEM = {"response": "\\boxed{\\frac{6}{8}}", "reference": "0.75"}


def build_app(**settings: Any) -> FastAPI:
    """The app, built in this process without starting it (logging left as found)."""
    ours = logging.getLogger("rlvr_verifier")
    saved = (ours.level, ours.propagate, list(ours.handlers))
    try:
        return create_app(Settings(access_log=False, **settings))
    finally:
        ours.setLevel(saved[0])
        ours.propagate = saved[1]
        ours.handlers[:] = saved[2]


def routes() -> list[tuple[str, str]]:
    """(method, path) of every route the app serves (documentation aside),
    path parameters filled in."""
    app = build_app(api_keys=",".join(KEYS))
    # FastAPI >= 0.13x keeps included routers as such; this flattens them.
    flatten = getattr(fastapi.routing, "iter_route_contexts", None)
    found = []
    for route in flatten(app.routes) if flatten else app.routes:
        path = getattr(route, "path", None)
        if path is None or path in DOC_PATHS:
            continue
        path = re.sub(r"\{[^}]+\}", "0123456789abcdef", path)
        methods = set(getattr(route, "methods", None) or ()) - {"HEAD", "OPTIONS"}
        found.extend((method, path) for method in sorted(methods))
    return found


ROUTES = routes()
PROTECTED = [(m, p) for m, p in ROUTES if p not in PUBLIC_PATHS]


def test_route_list_is_complete() -> None:
    paths = {p for _, p in PROTECTED}
    assert {"/v1/verify", "/v1/verify/batch", "/v1/jobs", "/v1/feedback", "/v1/stats"} <= paths
    assert any(p.startswith("/compat/") for p in paths)
    assert {p for _, p in ROUTES} - paths == set(PUBLIC_PATHS)


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    service = start_service(
        {"VERIFIER_API_KEYS": ",".join(KEYS), "VERIFIER_LOG_LEVEL": "debug"},
        tmp_path_factory.mktemp("keyed"),
    )
    yield service
    service.stop()


def request(
    client: httpx.Client, method: str, path: str, authorization: str | None
) -> httpx.Response:
    headers = {"X-Api-Key": KEYS[1]}  # a key in the wrong header counts for nothing
    if authorization is not None:
        headers["Authorization"] = authorization
    body = {"json": {"items": [ITEM]}} if method in ("POST", "PUT", "PATCH") else {}
    return client.request(method, path, headers=headers, **body)  # type: ignore[arg-type]


@pytest.mark.parametrize(("method", "path"), PROTECTED, ids=[f"{m} {p}" for m, p in PROTECTED])
def test_every_protected_route_refuses_missing_and_wrong_keys(
    keyed: ServiceProcess, method: str, path: str
) -> None:
    with keyed.client() as client:
        for authorization in WRONG:
            response = request(client, method, path, authorization)
            assert response.status_code == 401, (authorization, response.text)
            body = response.json()
            assert body["error"] == "unauthorized"
            assert not any(key in response.text for key in KEYS)
            assert not any(key[:10] in str(response.headers) for key in KEYS)
        # and a valid key gets past authentication (whatever the route then says)
        allowed = request(client, method, path, f"Bearer {KEYS[1]}")
        assert allowed.status_code != 401, allowed.text
        assert allowed.status_code < 500, allowed.text


def test_public_routes_stay_open(keyed: ServiceProcess) -> None:
    with keyed.client() as client:
        for path in sorted(PUBLIC_PATHS | {"/openapi.json"}):
            assert client.get(path).status_code == 200, path
        # the documentation routes exist and are open
        assert "/docs" in DOC_PATHS and client.get("/docs").status_code == 200


def test_keys_never_reach_the_log(keyed: ServiceProcess) -> None:
    with keyed.client() as client:
        for key in KEYS:
            headers = {"Authorization": f"Bearer {key}", "X-Request-Id": "access-test"}
            assert client.post("/v1/verify", json=ITEM, headers=headers).status_code == 200
        for authorization in WRONG[1:]:
            client.post("/v1/verify", json=ITEM, headers={"Authorization": authorization or ""})
        # even a key sent where a request id or a path goes
        client.post(f"/v1/{KEYS[0]}", headers={"X-Request-Id": KEYS[1]})
    time.sleep(0.3)
    log = keyed.log()
    assert "access-test" in log  # the log is really being written (debug level)
    for key in (*KEYS, "sk-test-wrong"):
        assert key not in log, key


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    service = start_service(
        {
            "VERIFIER_API_KEYS": ",".join(KEYS),
            "VERIFIER_RATE_LIMIT_PER_S": "5",
            "VERIFIER_RATE_LIMIT_BURST": "10",
        },
        tmp_path_factory.mktemp("limited"),
    )
    yield service
    service.stop()


def test_per_key_rate_limit(limited: ServiceProcess) -> None:
    first, second = ({"Authorization": f"Bearer {key}"} for key in KEYS)
    with limited.client() as client:

        def hit(headers: dict[str, str]) -> httpx.Response:
            return client.post("/v1/verify", json=ITEM, headers=headers)

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            replies = list(pool.map(hit, [first] * 30))
        codes = [r.status_code for r in replies]
        assert 10 <= codes.count(200) <= 14, codes  # the burst, plus what refilled meanwhile
        assert codes.count(429) >= 16, codes
        refused = next(r for r in replies if r.status_code == 429)
        assert refused.json()["error"] == "rate_limited"
        assert 1 <= int(refused.headers["retry-after"]) <= 5
        # another key has its own bucket
        assert hit(second).status_code == 200
        # public endpoints are never limited
        assert all(client.get("/healthz").status_code == 200 for _ in range(20))
        # the bucket refills at the configured rate
        time.sleep(1.0)
        assert hit(first).status_code == 200
        metrics = client.get("/metrics").text
        assert re.search(r"^verifier_rate_limited_total [1-9]", metrics, re.M), metrics[:200]


def test_wrong_keys_share_their_address_bucket(limited: ServiceProcess) -> None:
    """Random keys cannot buy fresh buckets: without a valid key the bucket is
    the client address's, and the route still answers 401 while tokens last."""
    with limited.client() as client:
        codes = [
            client.post(
                "/v1/verify", json=ITEM, headers={"Authorization": f"Bearer random-{k}"}
            ).status_code
            for k in range(30)
        ]
    assert set(codes) == {401, 429}, codes
    assert codes.count(429) >= 15


def test_rate_limit_is_off_by_default() -> None:
    assert Settings().rate_limit_per_s == 0
    app = build_app()
    assert not any(m.cls.__name__ == "RateLimitMiddleware" for m in app.user_middleware)  # type: ignore[attr-defined]
