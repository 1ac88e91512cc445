"""Regressions found in review of the verify fast path and batch execution.

In-process (the app's own lifespan, real worker processes) so that a failure
can be injected exactly once and executions can be counted.
"""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import MutableMapping
from typing import Any

from service.app import create_app
from service.schemas import VerifyItem
from service.settings import Settings
from service.verification import VerificationService
from verifiers.cascade import Plan
from verifiers.verdict import Verdict

Message = MutableMapping[str, Any]


async def _post(app: Any, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[Message] = []

    async def receive() -> Message:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
    }
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    body_out = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], headers, body_out


def test_a_failure_after_verification_started_is_a_500_not_a_second_run() -> None:
    app = create_app(Settings(workers=1, access_log=False))
    service: VerificationService = app.state.service

    async def main() -> tuple[int, bytes, int]:
        async with app.router.lifespan_context(app):
            executions = 0
            real_execute = service.cascade.execute

            async def execute(plan: Plan) -> Verdict:
                nonlocal executions
                executions += 1
                return await real_execute(plan)

            service.cascade.execute = execute  # type: ignore[method-assign]
            real_record = service.estimator.record
            failed = False

            async def record(*args: Any) -> None:  # one transient failure
                nonlocal failed
                if not failed:
                    failed = True
                    raise RuntimeError("transient")
                await real_record(*args)

            service.estimator.record = record  # type: ignore[method-assign,assignment]
            item = {"response": "so $\\boxed{\\sqrt{8}}$", "reference": "2\\sqrt{2}"}
            status, _, body = await _post(app, "/v1/verify", json.dumps(item).encode())
            return status, body, executions

    status, body, executions = asyncio.run(main())
    assert status == 500
    assert json.loads(body)["error"] == "internal_error"
    assert executions == 1  # not handed to the route to be verified again


def test_a_duplicate_in_a_large_batch_is_executed_once() -> None:
    service = VerificationService(Settings(workers=2))

    async def main() -> tuple[int, bool, bool]:
        await service.start()
        try:
            calls: collections.Counter[str] = collections.Counter()
            real_execute = service.cascade.execute
            dup = VerifyItem(response="\\boxed{(x+1)^2}", reference="x^2+2x+1")

            async def execute(plan: Plan) -> Verdict:
                calls[plan.request.response] += 1
                if plan.request.response.startswith("slow"):
                    await asyncio.sleep(0.5)  # a sandbox run or a judge call in the first chunk
                if plan.request.response == dup.response:  # stands for a judge call
                    await asyncio.sleep(0.01)
                    return Verdict(True, 1.0, "judge", "judge_correct")
                return await real_execute(plan)

            service.cascade.execute = execute  # type: ignore[method-assign]
            items = [VerifyItem(response=f"\\boxed{{{i}}}", reference=f"{i}") for i in range(2000)]
            items[0] = VerifyItem(response="slow \\boxed{(y+1)^2}", reference="y^2+2y+1")
            items[1] = dup
            items[1999] = dup  # in another planning chunk
            results = await service.verify_items(items, "batch")
            return calls[dup.response], results[1].cached, results[1999].cached
        finally:
            await service.close()

    executions, first_cached, last_cached = asyncio.run(main())
    assert executions == 1
    assert (first_cached, last_cached) == (False, False)


def test_a_large_batch_mixes_exact_hits_and_fresh_items_in_input_order() -> None:
    # The first items of a large batch are planned while the exact-pair keys of
    # the rest are computed: hits and misses on both sides of that split.
    service = VerificationService(Settings(workers=2))

    def item(i: int) -> VerifyItem:  # every third answer is wrong
        return VerifyItem(response=f"so $\\boxed{{{i}}}$", reference=str(i + (i % 3 == 0)))

    async def main() -> list[tuple[bool | None, bool]]:
        await service.start()
        try:
            await service.verify_items([item(i) for i in range(0, 600, 7)], "batch")
            results = await service.verify_items([item(i) for i in range(600)], "batch")
            return [(r.correct, r.cached) for r in results]
        finally:
            await service.close()

    results = asyncio.run(main())
    assert results == [(i % 3 != 0, i % 7 == 0) for i in range(600)]


def test_a_failure_while_keying_the_rest_of_a_batch_cancels_the_started_part() -> None:
    service = VerificationService(Settings(workers=2))
    real_key = service.exact.key

    def key(request: Any, policy: Any) -> str:
        if request.response == "poison":
            raise RuntimeError("key failed")
        return real_key(request, policy)

    service.exact.key = key  # type: ignore[method-assign]

    async def main() -> tuple[str, set[asyncio.Task[Any]]]:
        await service.start()
        real_plan_many = service.cascade.plan_many

        async def plan_many(*args: Any, **kwargs: Any) -> list[Plan]:
            await asyncio.sleep(5)  # still planning when the failure comes
            return await real_plan_many(*args, **kwargs)

        service.cascade.plan_many = plan_many  # type: ignore[method-assign]
        try:
            background = asyncio.all_tasks()  # the service's own (estimator, jobs)
            items = [VerifyItem(response=f"\\boxed{{{i}}}", reference=str(i)) for i in range(600)]
            items[500] = VerifyItem(response="poison", reference="1")
            try:
                await service.verify_items(items, "batch")
            except RuntimeError as exc:
                error = str(exc)
            else:
                error = ""
            await asyncio.sleep(0.3)  # anything left running would still be here
            return error, asyncio.all_tasks() - background
        finally:
            await service.close()

    error, leftover = asyncio.run(main())
    assert error == "key failed"
    assert leftover == set()
