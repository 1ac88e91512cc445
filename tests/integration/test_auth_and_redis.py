"""API keys, the shared Redis cache across replicas, and Redis outages."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from tests.conftest import RedisServer, ServiceProcess, wait_until

ITEM = {"response": "\\boxed{\\frac{6}{8}}", "reference": "0.75"}


def test_api_keys_required_except_on_public_endpoints(
    service_factory: Callable[..., ServiceProcess],
) -> None:
    api = service_factory(api_keys="k1,k2")
    with api.client() as client:
        assert client.post("/v1/verify", json=ITEM).status_code == 401
        wrong = client.post("/v1/verify", json=ITEM, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert wrong.json()["error"] == "unauthorized"
        ok = client.post("/v1/verify", json=ITEM, headers={"Authorization": "Bearer k2"})
        assert ok.status_code == 200 and ok.json()["correct"] is True
        batch = client.post("/v1/verify/batch", json={"items": [ITEM]})
        assert batch.status_code == 401
        for path in ("/healthz", "/readyz", "/metrics"):
            assert client.get(path).status_code == 200, path
    assert "k1" not in api.log() and "k2" not in api.log()


def test_two_replicas_share_the_cache(
    service_factory: Callable[..., ServiceProcess], shared_redis_url: str, unique_prefix: str
) -> None:
    a = service_factory(redis_url=shared_redis_url, redis_prefix=unique_prefix)
    b = service_factory(redis_url=shared_redis_url, redis_prefix=unique_prefix)
    item = {"response": "\\boxed{(x-1)(x+1)}", "reference": "x^2-1"}
    with a.client() as ca, b.client() as cb:
        first = ca.post("/v1/verify", json=item).json()
        assert first["correct"] is True and first["cached"] is False
        second = cb.post("/v1/verify", json=item).json()
        assert second["correct"] is True and second["cached"] is True
        assert cb.get("/readyz").json()["components"]["cache"]["status"] == "up"


def test_redis_down_at_start_then_back(
    service_factory: Callable[..., ServiceProcess], own_redis: RedisServer, unique_prefix: str
) -> None:
    own_redis.kill()
    api = service_factory(redis_url=own_redis.url, redis_prefix=unique_prefix, redis_retry_s="0.5")
    with api.client() as client:
        body = client.post("/v1/verify", json=ITEM).json()
        assert body["correct"] is True
        ready = client.get("/readyz").json()
        assert ready["ready"] is True and ready["status"] == "degraded"
        assert ready["components"]["cache"]["status"] == "down"
        assert "verifier_cache_backend_up 0.0" in client.get("/metrics").text
        own_redis.start()

        def recovered() -> bool:
            return client.get("/readyz").json()["components"]["cache"]["status"] == "up"

        assert wait_until(recovered, 15, interval=0.3)
        # and the cache is written to Redis again
        item = {"response": "\\boxed{\\sqrt{49}}", "reference": "7"}
        assert client.post("/v1/verify", json=item).json()["cached"] is False
        import redis

        keys = redis.Redis.from_url(own_redis.url).keys(unique_prefix + "*")
        assert keys
    # logged once per component (cache, estimator), not per request
    log = api.log()
    assert log.count("redis unavailable, serving from the in-process cache") == 1
    assert log.count("redis unavailable") <= 2


def test_redis_killed_during_run_and_restarted(
    service_factory: Callable[..., ServiceProcess], own_redis: RedisServer, unique_prefix: str
) -> None:
    api = service_factory(redis_url=own_redis.url, redis_prefix=unique_prefix, redis_retry_s="0.5")
    items = [{"response": f"\\boxed{{\\sqrt{{{k * k}}}}}", "reference": str(k)} for k in range(40)]
    with api.client() as client:
        first = client.post("/v1/verify/batch", json={"items": items[:20]})
        assert all(r["correct"] for r in first.json()["results"])
        own_redis.kill()
        during = client.post("/v1/verify/batch", json={"items": items})
        assert during.status_code == 200
        assert all(r["correct"] for r in during.json()["results"])
        assert client.get("/readyz").json()["components"]["cache"]["status"] == "down"
        own_redis.start()

        def recovered() -> bool:
            r = client.post("/v1/verify/batch", json={"items": items[20:]})
            assert r.status_code == 200
            return client.get("/readyz").json()["components"]["cache"]["status"] == "up"

        assert wait_until(recovered, 15, interval=0.3)


def test_redis_url_unreachable_host_does_not_hang(
    service_factory: Callable[..., ServiceProcess], unique_prefix: str
) -> None:
    from tests.conftest import free_port

    api = service_factory(
        redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_prefix=unique_prefix
    )
    with httpx.Client(base_url=api.url, timeout=10) as client:
        started = time.monotonic()
        assert client.post("/v1/verify", json=ITEM).json()["correct"] is True
        assert time.monotonic() - started < 5
