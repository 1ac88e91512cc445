"""Faults through a real service process: a math worker killed mid-task, a
judge that is slow or answers garbage, and a job store (Redis) out of memory.

In each case the service keeps answering, marks what it could not decide,
reports the state in `/readyz` and `/metrics`, and recovers by itself.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import RedisServer, ServiceProcess, metric, wait_until
from tests.judge_double.server import FakeVLLMJudge

# A product sympy evaluates term by term: seconds of CPU in one worker.
SLOW = "\\prod_{k=1}^{3000000} (1+\\frac{1}{k})"


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        if ppid == pid and b"verifiers.pool_worker" in cmdline:
            found.append(int(entry.name))
    return found


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def math_item(k: int) -> dict[str, object]:
    return {"response": f"\\boxed{{\\sqrt{{{k * k}}} + x - x}}", "reference": str(k)}


def math_ok(client: httpx.Client, k: int) -> None:
    body = client.post("/v1/verify", json=math_item(k)).json()
    assert body["correct"] is True, body


def settle(client: httpx.Client, start: int, needed: int = 6, timeout: float = 30) -> list[str]:
    """Send sympy items until `needed` in a row are correct; the reasons of
    the ones that were not (a worker dying or still importing may abstain)."""
    misses: list[str] = []
    streak, k = 0, start
    deadline = time.monotonic() + timeout
    while streak < needed:
        assert time.monotonic() < deadline, misses
        body = client.post("/v1/verify", json=math_item(k)).json()
        k += 1
        if body["correct"] is True:
            streak += 1
        else:
            assert body["correct"] is None, body  # an abstain, never a wrong verdict
            misses.append(str(body["reason"]))
            streak = 0
    return misses


# ------------------------------------------------------------------ hostile math

BOMBS = [
    "\\sum_{k=1}^{10^{9}} k^{k}",  # a giant sum
    "\\sum_{n=1}^{10^{6}}\\sum_{m=1}^{10^{6}} nm",
    "\\sum_{k=1}^{1000000} \\frac{1}{k^2}",
    "2^{2^{2^{2^{2^{2}}}}}",  # towers of powers
    "10^{10^{10^{10}}}",
    "\\left(" * 200 + "1" + "\\right)" * 200,  # deep nesting
    "((((((x+1)^2+1)^2+1)^2+1)^2+1)^2+1)^{2}",
    "\\binom{10^{9}}{10^{5}}",  # huge factorials
    "(10^{10^{10}})!",
]


def test_latex_bombs_answered_within_the_limit_others_unaffected(
    service_factory: Callable[..., ServiceProcess],
) -> None:
    limit = 1.0
    api = service_factory(workers="2", math_timeout_s=str(limit))
    with api.client() as client, concurrent.futures.ThreadPoolExecutor(2) as pool:
        settle(client, 100, needed=2)  # workers done importing
        for bomb in BOMBS:
            started = time.monotonic()
            pending = pool.submit(
                client.post, "/v1/verify", json={"response": f"\\boxed{{{bomb}}}", "reference": "3"}
            )
            fast = time.monotonic()
            plain = client.post(
                "/v1/verify", json={"response": "\\boxed{6/8}", "reference": "0.75"}
            )
            assert plain.json()["correct"] is True and time.monotonic() - fast < 0.5
            body = pending.result(timeout=30).json()
            assert time.monotonic() - started < limit + 4, bomb
            assert body["correct"] is not True, (bomb, body)
            assert body["reason"] in ("timeout", "unparseable", "not_equal", "no_answer"), body
        # the pool is whole afterwards (a replaced worker may still be importing)
        settle(client, 200)


# ------------------------------------------------------------------ worker killed


def test_worker_killed_mid_task(service_factory: Callable[..., ServiceProcess]) -> None:
    api = service_factory(workers="2", math_timeout_s="60")
    with api.client() as client, concurrent.futures.ThreadPoolExecutor(1) as pool:
        settle(client, 3, needed=2)  # workers done importing
        workers = children(api.process.pid)
        assert len(workers) == 2, workers
        before = metric(client, "verifier_pool_worker_restarts_total", reason="crashed")
        item = {"response": f"\\boxed{{{SLOW}}}", "reference": "3", "options": {"timeout_s": 60}}
        pending = pool.submit(client.post, "/v1/verify", json=item)

        def busy() -> bool:
            return client.get("/readyz").json()["components"]["workers"]["detail"]["busy"] == 1

        assert wait_until(busy, 10)
        ticks = {pid: cpu_ticks(pid) for pid in workers}
        time.sleep(0.5)
        victim = max(workers, key=lambda pid: cpu_ticks(pid) - ticks[pid])
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        body = pending.result(timeout=30).json()
        assert time.monotonic() - killed_at < 5
        # abstain, never a guess, never cached
        assert body["correct"] is None and body["reason"] == "error", body
        assert body["detail"]["error"] == "crashed"
        # the pool replaced the worker and says so
        assert metric(client, "verifier_pool_worker_restarts_total", reason="crashed") == before + 1
        assert wait_until(lambda: len(children(api.process.pid)) == 2, 10)
        assert victim not in children(api.process.pid)
        ready = client.get("/readyz").json()
        assert ready["ready"] is True and ready["components"]["workers"]["status"] == "up"
        assert ready["components"]["workers"]["detail"]["restarts"]["crashed"] >= 1
        assert settle(client, 300) == []

        # idle workers killed between requests: replaced on their next task;
        # an item handed to a worker as it dies abstains (`error`), no more
        for pid in children(api.process.pid):
            os.kill(pid, signal.SIGKILL)
        misses = settle(client, 400)
        assert set(misses) <= {"error"} and len(misses) <= 2, misses
        restarts = client.get("/readyz").json()["components"]["workers"]["detail"]["restarts"]
        assert restarts.get("dead", 0) + restarts.get("crashed", 0) >= 3, restarts


# ------------------------------------------------------------------ judge faults


def judge_item(k: int) -> dict[str, object]:
    """An item only the judge decides; distinct per k (verdicts are cached)."""
    word = ["mitochondrion", "ribosome", "nucleus", "chloroplast", "vacuole", "lysosome"][k % 6]
    return {
        "response": f"The organelle is the **{word}** (case {k}).",
        "reference": f"the {word}, case {k}",
        "options": {"judge": "always"},
    }


def test_judge_slow_garbage_and_recovery(
    service_factory: Callable[..., ServiceProcess], fake_judge: FakeVLLMJudge
) -> None:
    api = service_factory(
        judge_url=fake_judge.url,
        judge_model=fake_judge.model,
        judge_timeout_s="0.5",
        judge_retries="0",
        judge_breaker_failures="2",
        judge_breaker_reset_s="1",
    )
    with api.client() as client:
        k = 0

        def judged() -> dict[str, object]:
            nonlocal k
            k += 1
            body: dict[str, object] = client.post("/v1/verify", json=judge_item(k)).json()
            return body

        def judge_state() -> tuple[str, float]:
            ready = client.get("/readyz").json()
            return (
                ready["components"]["judge"]["status"],
                metric(client, "verifier_judge_breaker_state"),
            )

        assert judged()["reason"] == "judge_correct"
        assert judge_state() == ("up", 0.0)

        for fault in ("garbage", "slow"):
            if fault == "garbage":
                fake_judge.garbage("wrong_shape")
            else:
                fake_judge.slow(3.0)
            started = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                bad = pool.submit(judged)
                math_ok(client, 7)  # other work is not held up by the judge
                assert time.monotonic() - started < 1.0
                first = bad.result()
            assert first["correct"] is None and first["reason"] == "judge_unavailable", first
            second = judged()
            assert second["reason"] == "judge_unavailable" and second["cached"] is False
            # two failures in a row: the breaker is open, calls fail fast
            fast = time.monotonic()
            third = judged()
            assert third["reason"] == "judge_unavailable"
            assert "breaker" in str(third["detail"]), third
            assert time.monotonic() - fast < 0.4
            status, breaker = judge_state()
            assert status == "down" and breaker == 2.0
            ready = client.get("/readyz").json()
            assert ready["ready"] is True and ready["status"] == "degraded"
            outcome = "bad_reply" if fault == "garbage" else "timeout"
            assert metric(client, "verifier_judge_requests_total", outcome=outcome) >= 1

            # healthy again: after the reset time a probe closes the breaker
            fake_judge.reset()

            def recovered() -> bool:
                return judged()["reason"] == "judge_correct"

            assert wait_until(recovered, 10, interval=0.3)
            assert judge_state() == ("up", 0.0)


# ------------------------------------------------------------------ job store full

SLEEPY_CODE = {
    # slow once (the sandbox), then cached: lets the test fill Redis after the
    # job is accepted but before its results are stored
    "response": "```python\nimport time\ntime.sleep(1.0)\nprint(int(input()) + 1)\n```",
    "tests": {"kind": "stdin", "cases": [{"input": "1\n", "output": "2\n"}]},
}


def job_items(tag: str) -> list[dict[str, object]]:
    items: list[dict[str, object]] = [{"id": f"{tag}-code", **SLEEPY_CODE}]
    for k in range(2, 5):
        items.append(
            {"id": f"{tag}-{k}", "response": f"\\boxed{{\\sqrt{{{k * k}}}}}", "reference": str(k)}
        )
    return items


def out_of_memory(text: str) -> bool:
    return re.search(r"OOM|OutOfMemory|maxmemory", text) is not None


def job_status(client: httpx.Client, job_id: str) -> dict[str, object]:
    body: dict[str, object] = client.get(f"/v1/jobs/{job_id}").json()
    return body


def test_job_store_out_of_memory(
    service_factory: Callable[..., ServiceProcess], own_redis: RedisServer, unique_prefix: str
) -> None:
    from verifiers.code import sandbox_available

    if not sandbox_available()[0]:
        pytest.skip("needs the code sandbox for a slow-once item")
    store = redis.Redis.from_url(own_redis.url)
    store.config_set("maxmemory-policy", "noeviction")
    api = service_factory(
        redis_url=own_redis.url,
        redis_prefix=unique_prefix,
        redis_retry_s="0.5",
        job_chunk_size="8",
        job_workers="1",
        job_claim_idle_s="0.5",
    )

    def full() -> None:
        store.config_set("maxmemory", 1)  # every write that may grow memory fails (OOM)

    def roomy() -> None:
        store.config_set("maxmemory", 0)

    def jobs_component(client: httpx.Client) -> dict[str, object]:
        component: dict[str, object] = client.get("/readyz").json()["components"]["jobs"]
        return component

    with api.client() as client:
        # 1. full at submission: a clean 503, and verification goes on
        full()
        refused = client.post("/v1/jobs", json={"items": job_items("a")})
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"] == "store_unavailable" and out_of_memory(refused.text)
        assert "retry-after" in refused.headers
        math_ok(client, 5)
        roomy()

        # 2. full while the job runs, freed again: nothing lost, the job completes
        accepted = client.post("/v1/jobs", json={"items": job_items("b")})
        assert accepted.status_code == 202, accepted.text
        job_b = accepted.json()["id"]
        full()
        assert wait_until(lambda: jobs_component(client)["status"] == "down", 15, interval=0.2)
        assert out_of_memory(str(jobs_component(client)["detail"]))
        assert metric(client, "verifier_job_store_up") == 0.0
        assert metric(client, "verifier_job_store_errors_total") >= 1
        status = job_status(client, job_b)
        assert status["status"] in ("queued", "running") and status["done"] == 0, status
        math_ok(client, 6)  # the service keeps answering
        assert client.get("/readyz").json()["ready"] is True
        roomy()
        assert wait_until(lambda: job_status(client, job_b)["status"] == "completed", 20)
        lines = client.get(f"/v1/jobs/{job_b}/results").text.splitlines()
        assert [re.search(r'"id":"([^"]+)"', line).group(1) for line in lines] == [  # type: ignore[union-attr]
            f"b-{suffix}" for suffix in ("code", "2", "3", "4")
        ]
        assert wait_until(lambda: jobs_component(client)["status"] == "up", 10, interval=0.2)
        assert metric(client, "verifier_job_store_up") == 1.0

        # 3. full for good: after repeated deliveries the job fails with a reason
        accepted = client.post("/v1/jobs", json={"items": job_items("c")})
        job_c = accepted.json()["id"]
        full()
        assert wait_until(lambda: job_status(client, job_c)["status"] == "failed", 30)
        failed = job_status(client, job_c)
        assert "could not be stored" in str(failed["error"]) and out_of_memory(str(failed["error"]))
        assert metric(client, "verifier_jobs_failed_total", reason="store") == 1
        assert client.get(f"/v1/jobs/{job_c}/results").status_code == 409
        math_ok(client, 8)
        # room again: a resubmission completes
        roomy()
        again = client.post("/v1/jobs", json={"items": job_items("c")}).json()["id"]
        assert wait_until(lambda: job_status(client, again)["status"] == "completed", 20)
        assert len(client.get(f"/v1/jobs/{again}/results").text.splitlines()) == 4
