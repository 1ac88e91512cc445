"""Large batch jobs: in-process and across replicas on a real Redis."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable

import httpx

from tests.conftest import ServiceProcess, wait_until


def slow_items(n: int, tag: str = "") -> list[dict[str, object]]:
    """Items that need sympy (no fast path), so chunks take real time."""
    return [
        {
            "id": f"{tag}{k}",
            "response": f"\\boxed{{\\sqrt{{{k * k}}} + x - x}}",
            "reference": str(k),
        }
        for k in range(n)
    ]


def wait_for(client: httpx.Client, job_id: str, timeout: float = 60) -> dict[str, object]:
    status: dict[str, object] = {}

    def finished() -> bool:
        nonlocal status
        status = client.get(f"/v1/jobs/{job_id}").json()
        return status["status"] in ("completed", "failed", "cancelled")

    assert wait_until(finished, timeout, interval=0.1), status
    return status


def read_results(client: httpx.Client, job_id: str) -> list[dict[str, object]]:
    response = client.get(f"/v1/jobs/{job_id}/results")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in response.text.splitlines()]


def test_in_process_job_json_and_jsonl(service_factory: Callable[..., ServiceProcess]) -> None:
    api = service_factory(job_chunk_size="7")
    with api.client() as client:
        created = client.post("/v1/jobs", json={"items": slow_items(30, "j")})
        assert created.status_code == 202
        job = created.json()
        assert job["status"] in ("queued", "running") and job["total"] == 30 and job["chunks"] == 5
        status = wait_for(client, job["id"])
        assert status["status"] == "completed" and status["done"] == 30 and status["correct"] == 30
        results = read_results(client, job["id"])
        assert [r["id"] for r in results] == [f"j{k}" for k in range(30)]
        assert all(r["correct"] is True for r in results)

        lines = [
            json.dumps({"response": "\\boxed{3}", "reference": "3", "id": "plain"}),
            json.dumps(
                {"custom_id": "openai-style", "body": {"response": "\\boxed{4}", "reference": "5"}}
            ),
        ]
        jsonl = client.post(
            "/v1/jobs",
            content="\n".join(lines) + "\n",
            headers={"content-type": "application/x-ndjson"},
        ).json()
        wait_for(client, jsonl["id"])
        results = read_results(client, jsonl["id"])
        assert [(r["id"], r["correct"]) for r in results] == [
            ("plain", True),
            ("openai-style", False),
        ]


def test_job_errors_and_idempotency(service_factory: Callable[..., ServiceProcess]) -> None:
    api = service_factory(max_job_items="10")
    with api.client() as client:
        assert client.get("/v1/jobs/nope").status_code == 404
        assert client.get("/v1/jobs/nope/results").status_code == 404
        assert client.delete("/v1/jobs/nope").status_code == 404
        too_big = client.post("/v1/jobs", json={"items": slow_items(11)})
        assert too_big.status_code == 413
        bad = client.post(
            "/v1/jobs",
            content='{"response": "1", "reference": "1"}\n{"reference": 2}\n',
            headers={"content-type": "application/x-ndjson"},
        )
        assert bad.status_code == 422 and "line 2" in bad.json()["message"]
        invalid = client.post("/v1/jobs", json={"items": [{"reference": "1"}]})
        assert invalid.status_code == 422 and "items.0.response" in invalid.json()["message"]
        key = {"Idempotency-Key": "retry-123"}
        first = client.post("/v1/jobs", json={"items": slow_items(3)}, headers=key).json()
        second = client.post("/v1/jobs", json={"items": slow_items(3)}, headers=key).json()
        assert first["id"] == second["id"]


def test_cancel_stops_a_job(service_factory: Callable[..., ServiceProcess]) -> None:
    api = service_factory(job_chunk_size="1", job_workers="1", workers="1")
    with api.client() as client:
        job = client.post("/v1/jobs", json={"items": slow_items(200)}).json()
        cancelled = client.delete(f"/v1/jobs/{job['id']}").json()
        assert cancelled["status"] == "cancelled"
        time.sleep(0.5)
        status = client.get(f"/v1/jobs/{job['id']}").json()
        assert status["status"] == "cancelled" and status["done"] < 200
        assert client.get(f"/v1/jobs/{job['id']}/results").status_code == 409


def test_job_survives_the_replica_that_accepted_it(
    service_factory: Callable[..., ServiceProcess], shared_redis_url: str, unique_prefix: str
) -> None:
    settings = {
        "redis_url": shared_redis_url,
        "redis_prefix": unique_prefix,
        "job_chunk_size": "5",
        "job_claim_idle_s": "1",
        "workers": "1",
    }
    a = service_factory(**settings)
    b = service_factory(**settings)
    n = 120
    with a.client() as ca, b.client() as cb:
        job = ca.post("/v1/jobs", json={"items": slow_items(n, "r")}).json()

        def started() -> bool:
            return int(cb.get(f"/v1/jobs/{job['id']}").json()["done"]) > 0

        assert wait_until(started, 30, interval=0.05)
        a.process.send_signal(signal.SIGKILL)  # dies mid-job, chunks in flight
        a.process.wait(timeout=10)
        status = wait_for(cb, job["id"], timeout=90)
        assert status["status"] == "completed"
        assert status["done"] == n and status["chunks_done"] == status["chunks"]
        results = read_results(cb, job["id"])
        assert [r["id"] for r in results] == [f"r{k}" for k in range(n)]
        assert all(r["correct"] is True for r in results)


def test_jobs_expire(
    service_factory: Callable[..., ServiceProcess], shared_redis_url: str, unique_prefix: str
) -> None:
    api = service_factory(redis_url=shared_redis_url, redis_prefix=unique_prefix, job_ttl_s="2")
    with api.client() as client:
        job = client.post("/v1/jobs", json={"items": slow_items(3)}).json()
        wait_for(client, job["id"])
        assert wait_until(lambda: client.get(f"/v1/jobs/{job['id']}").status_code == 404, 10, 0.2)
