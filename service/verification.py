"""Wiring of the library to the network: plan -> cache -> execute -> result.

`VerificationService` owns the worker pool, the cascade, the cache and the
optional judge and sandbox; route handlers call `verify_items` and nothing else.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

from service import metrics
from service.cache import ExactCache, VerdictCache
from service.coalesce import Coalescer
from service.estimator import ErrorRateEstimator, apply_correction, unscreened_probe
from service.ids import random_hex
from service.jobs import JobBackend, MemoryJobs, RedisJobs
from service.schemas import VerifyItem, VerifyResult
from service.settings import Settings
from verifiers.cascade import (
    PARALLEL_PLAN_MIN,
    Cascade,
    CodeRunner,
    JudgeCall,
    Plan,
    VerifyRequest,
)
from verifiers.pool import WorkerPool
from verifiers.verdict import VERIFIER_VERSION, Verdict

log = logging.getLogger("rlvr_verifier.service")

#: `Plan.route` of a request answered from the exact-pair cache (a final verdict).
_EXACT_HIT = "exact"
#: Concurrent single requests gathered into at least this many items are
#: planned in the worker processes (a lone request stays inline: lower latency).
_COALESCED_PARALLEL_MIN = 16
#: A batch of at least four times this many items has its first fifth (at
#: least this many) planned while the exact-pair keys of the rest are computed:
#: keying costs a tenth of planning, so the workers stay busy meanwhile.
_HEAD_ITEMS = 128


class VerificationService:
    """Everything a request needs, created once per process by the lifespan."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool = WorkerPool(
            settings.worker_count,
            task_timeout=settings.math_timeout_s,
            memory_limit_bytes=settings.worker_memory_mb * 1024 * 1024,
            preload=("verifiers.math.compare", "verifiers.cascade", "verifiers.math.warm_up"),
        )
        self.pool.on_restart = lambda reason: metrics.POOL_RESTARTS.labels(reason).inc()
        self.cache = VerdictCache(
            max_entries=settings.cache_max_entries,
            ttl_s=settings.cache_ttl_s,
            redis_url=settings.redis_url,
            prefix=settings.redis_prefix,
            retry_s=settings.redis_retry_s,
        )
        self.exact = ExactCache(max_entries=settings.cache_max_entries, ttl_s=settings.cache_ttl_s)
        self.jobs: JobBackend = (
            RedisJobs(
                settings.redis_url,
                prefix=settings.redis_prefix,
                chunk_size=settings.job_chunk_size,
                workers=settings.job_workers,
                ttl_s=settings.job_ttl_s,
                claim_idle_s=settings.job_claim_idle_s,
            )
            if settings.redis_url
            else MemoryJobs(
                chunk_size=settings.job_chunk_size,
                workers=settings.job_workers,
                ttl_s=settings.job_ttl_s,
            )
        )
        self.code: CodeRunner | None = None
        self.code_status: tuple[bool, str] = (False, "not started")
        self.judge: Any = None
        self.cascade = Cascade(self.pool, math_timeout_s=settings.math_timeout_s)
        self._planner: Coalescer[VerifyRequest, Plan] = Coalescer(
            self._plan_coalesced, isolate_failures=True
        )
        # Online FN/FP estimation (feedback, appeals, canaries): service/estimator.py
        self.estimator = ErrorRateEstimator(settings)

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self.pool.start()
        metrics.POOL_WORKERS.set(self.pool.size)
        await self.cache.start()
        self.code, self.code_status = _make_code_runner(self.settings)
        judge_call, judge_version = await self._make_judge()
        self.cascade = Cascade(
            self.pool,
            code=self.code,
            judge=judge_call,
            judge_version=judge_version,
            default_judge_mode=self.settings.judge_default_mode if judge_call else "off",
            math_timeout_s=self.settings.math_timeout_s,
        )
        metrics.BUILD_INFO.labels(VERIFIER_VERSION, judge_version or "none").set(1)
        probe = None
        if judge_call is not None and not self.settings.canary_screened:
            probe = unscreened_probe(self.judge)
        self.estimator.set_judge(judge_call, probe)
        await self.estimator.start()
        await self.jobs.start(lambda items: self.verify_items(items, "job"))

    async def _make_judge(self) -> tuple[JudgeCall | None, str]:
        """The judge call, when a judge URL is configured (wired in `service.judge`)."""
        if not self.settings.judge_urls:
            return None, ""
        from service.judge import make_judge

        self.judge, call, version = make_judge(self.settings)
        return call, version

    async def close(self) -> None:
        await self.jobs.close()
        await self._planner.drain()
        await self.estimator.close()
        await self.cache.close()
        if self.judge is not None:
            await self.judge.aclose()
        await asyncio.to_thread(self.pool.close)

    # ------------------------------------------------------------ verify
    def to_request(self, item: VerifyItem) -> VerifyRequest:
        options = item.options
        return VerifyRequest(
            response=item.response,
            reference=item.reference,
            task=item.task,
            question=item.question,
            tests=item.tests,
            language=item.language,
            judge=options.judge,
            tolerance=options.tolerance,
            timeout_s=options.timeout_s,
            all_or_nothing=options.all_or_nothing,
            domain=item.domain,
        )

    async def verify_items(self, items: list[VerifyItem], endpoint: str) -> list[VerifyResult]:
        """Verify items; results in input order; identical work computed once."""
        started = time.perf_counter()
        metrics.add(metrics.INFLIGHT_ITEMS, len(items))
        resolving: list[asyncio.Future[_Resolved]] = []
        claimed: set[str] = set()
        failed = False

        def execute(plans: list[Plan]) -> None:
            # Planned items start executing (cache, sympy, sandbox, judge) at once,
            # while the rest of a large batch is still being planned. A key goes
            # to one group only: a duplicate in a later chunk takes its verdict.
            if failed:
                return
            todo = [p for p in plans if p.key is not None and p.key not in claimed]
            claimed.update(p.key for p in todo if p.key is not None)
            if todo:
                resolving.append(asyncio.ensure_future(self._resolve(todo)))

        try:
            try:
                plans, exact_keys = await self._plan(items, execute)
            except BaseException:
                failed = True
                for task in resolving:
                    task.cancel()
                raise
            planned = time.perf_counter()
            groups = await asyncio.gather(*resolving, return_exceptions=True)
        finally:
            metrics.add(metrics.INFLIGHT_ITEMS, -len(items))
        parts: list[_Resolved] = []
        for group in groups:
            if isinstance(group, BaseException):
                raise group  # the first failure; every group has finished
            parts.append(group)
        verdicts: dict[str, Verdict] = {}
        cached_keys: set[str] = set()
        computed: set[str] = set()
        finished: dict[str, float] = {}
        for part in parts:
            verdicts.update(part.verdicts)
            cached_keys |= part.cached
            computed |= part.computed
            finished.update(part.finished)
        cached_keys -= computed  # shared between this batch's own chunks: not a cache hit
        metrics.add(metrics.child(metrics.ITEMS, endpoint), len(items))
        results = []
        new_ids = _new_ids(sum(1 for item in items if not item.id))
        outcomes: dict[tuple[str, str, str], int] = {}
        flag_counts: dict[str, int] = {}
        for item, plan, exact_key in zip(items, plans, exact_keys, strict=True):
            if plan.key is None:
                assert plan.verdict is not None
                verdict = plan.verdict.with_flags(*plan.flags) if plan.flags else plan.verdict
                done = planned
                cached = plan.route == _EXACT_HIT
            else:
                verdict = verdicts[plan.key]
                done = finished.get(plan.key, started)
                cached = plan.key in cached_keys
            if plan.route != _EXACT_HIT:
                self.exact.put(exact_key, verdict)
            correct = "abstain" if verdict.correct is None else str(verdict.correct).lower()
            outcome = (verdict.stage, verdict.reason, correct)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            for flag in verdict.flags:
                flag_counts[flag] = flag_counts.get(flag, 0) + 1
            new_id = "" if item.id else next(new_ids)
            results.append(_result(item, verdict, cached, (done - started) * 1000, new_id))
        for labels, count in outcomes.items():
            metrics.add(metrics.child(metrics.VERDICTS, *labels), count)
        for flag, count in flag_counts.items():
            metrics.add(metrics.child(metrics.GUARD_FLAGS, flag), count)
        await self.estimator.record(items, results, plans)
        if any(item.options.reward == "corrected" for item in items):
            corrections = await self.estimator.corrections()
            for item, result in zip(items, results, strict=True):
                if item.options.reward == "corrected":
                    apply_correction(result, corrections)
        return results

    async def _plan(
        self, items: list[VerifyItem], execute: Callable[[list[Plan]], None]
    ) -> tuple[list[Plan], list[str]]:
        """Plans in input order, and each request's exact-pair cache key.

        A request seen before comes straight from the exact-pair cache (route
        `_EXACT_HIT`, no guards, no extraction); the rest are planned by the
        cascade (in the worker processes when there are many), and each group
        of fresh plans goes to `execute` as soon as it exists. A large batch's
        first items go to the workers before the keys of the rest are
        computed, so the workers start at once.
        """
        if len(items) < 4 * _HEAD_ITEMS:
            planning, keys = self._plan_block(items, execute)
            return await planning, keys
        split = max(_HEAD_ITEMS, len(items) // 5)
        head_planning, keys = self._plan_block(items[:split], execute)
        head = asyncio.ensure_future(head_planning)
        try:
            await asyncio.sleep(0)  # the head's planning starts before the other keys
            planning, rest_keys = self._plan_block(items[split:], execute)
            rest = await planning
            return [*await head, *rest], keys + rest_keys
        except BaseException:
            head.cancel()
            raise

    def _plan_block(
        self, items: list[VerifyItem], execute: Callable[[list[Plan]], None]
    ) -> tuple[Coroutine[Any, Any, list[Plan]], list[str]]:
        """Look the items up in the exact-pair cache: (the planning of the
        rest, which gives the plans in input order; the exact-pair keys)."""
        policy = self.cascade.policy
        requests = [self.to_request(item) for item in items]
        keys = [self.exact.key(request, policy) for request in requests]
        plans: list[Plan | None] = []
        missing: list[VerifyRequest] = []
        for request, key in zip(requests, keys, strict=True):
            verdict = self.exact.get(key)
            if verdict is None:
                plans.append(None)
                missing.append(request)
            else:  # no extracted answer kept: an appeal re-extracts the reference
                plans.append(Plan(request, _EXACT_HIT, "off", verdict=verdict))
        if len(missing) < len(items):
            hits = len(items) - len(missing)
            metrics.add(metrics.child(metrics.CACHE_REQUESTS, "exact", "hit"), hits)
        if missing:
            metrics.add(metrics.child(metrics.CACHE_REQUESTS, "exact", "miss"), len(missing))

        async def planned() -> list[Plan]:
            if len(missing) >= PARALLEL_PLAN_MIN:
                fresh = iter(await self.cascade.plan_many(missing, on_planned=execute))
            elif missing:  # single items and small batches: planned with concurrent ones
                fresh_plans = await self._planner.run(missing)
                execute(fresh_plans)
                fresh = iter(fresh_plans)
            else:
                fresh = iter([])
            return [plan if plan is not None else next(fresh) for plan in plans]

        return planned(), keys

    async def _plan_coalesced(self, requests: list[VerifyRequest]) -> list[Plan]:
        # To the workers only when one is free: behind slow symbolic tasks the
        # requests' planning would wait seconds that inline planning does not.
        pool = self.pool
        idle = pool.queue_depth == 0 and pool.busy_workers < pool.size
        parallel_min = _COALESCED_PARALLEL_MIN if idle else len(requests) + 1
        return await self.cascade.plan_many(requests, parallel_min=parallel_min)

    async def _resolve(self, plans: list[Plan]) -> _Resolved:
        """Verdicts for the plans that still need one: cache, else computed once."""
        unique = {plan.key: plan for plan in plans if plan.key is not None}
        verdicts = await self.cache.get_many(unique)
        cached_keys = set(verdicts)
        now = time.perf_counter()
        finished = dict.fromkeys(cached_keys, now)
        computed: set[str] = set()
        to_compute = [(key, plan) for key, plan in unique.items() if key not in verdicts]
        if to_compute:
            outcomes = await asyncio.gather(*(self._compute(k, p) for k, p in to_compute))
            fresh = {}
            for (key, _), (verdict, shared, done) in zip(to_compute, outcomes, strict=True):
                verdicts[key] = verdict
                finished[key] = done
                if shared:
                    cached_keys.add(key)
                else:
                    fresh[key] = verdict
                    computed.add(key)
            await self.cache.put_many(fresh)
        return _Resolved(verdicts, cached_keys, computed, finished)

    async def _compute(self, key: str, plan: Plan) -> tuple[Verdict, bool, float]:
        async def run() -> Verdict:
            began = time.perf_counter()
            verdict = await self.cascade.execute(plan)
            metrics.child(metrics.STAGE_LATENCY, verdict.stage).observe(time.perf_counter() - began)
            return verdict

        verdict, shared = await self.cache.single_flight(key, run)
        return verdict, shared, time.perf_counter()

    # ------------------------------------------------------------ readiness
    def update_saturation(self) -> None:
        metrics.POOL_QUEUE.set(self.pool.queue_depth)
        metrics.POOL_BUSY.set(self.pool.busy_workers)


@dataclass(slots=True)
class _Resolved:
    """What `_resolve` found for one group of plans."""

    verdicts: dict[str, Verdict]
    cached: set[str]  # served by the cache or by a concurrent computation
    computed: set[str]  # computed here
    finished: dict[str, float]  # perf_counter time each verdict was ready


def _result(
    item: VerifyItem, verdict: Verdict, cached: bool, latency_ms: float, new_id: str
) -> VerifyResult:
    return VerifyResult(
        id=item.id or new_id,
        correct=verdict.correct,
        reward=verdict.reward,
        stage=verdict.stage,
        reason=verdict.reason,
        cached=cached,
        extracted_answer=verdict.extracted_answer,
        confidence=verdict.confidence,
        flags=list(verdict.flags),
        latency_ms=round(latency_ms, 3),
        detail=verdict.detail,
    )


def _new_ids(count: int) -> Iterator[str]:
    """`count` random 128-bit hex ids (one `os.urandom` call for a batch)."""
    if count <= 16:
        return (random_hex(16) for _ in range(count))
    blob = os.urandom(16 * count).hex()
    return (blob[32 * i : 32 * (i + 1)] for i in range(count))


def _make_code_runner(settings: Settings) -> tuple[CodeRunner | None, tuple[bool, str]]:
    """The sandboxed code stage, or None with the reason it is unavailable."""
    try:
        from verifiers.code import CodeVerifier, SandboxLimits, sandbox_available
    except ImportError as exc:  # the code stage is optional at import time
        return None, (False, f"code stage not installed: {exc}")
    available = sandbox_available()
    limits = SandboxLimits(
        cpu_seconds=settings.code_cpu_s,
        wall_seconds=settings.code_wall_s,
        total_wall_seconds=settings.code_total_wall_s,
        memory_bytes=settings.code_memory_mb * 1024 * 1024,
    )
    runner = CodeVerifier(
        limits=limits,
        max_concurrency=settings.code_concurrency or None,
        allow_unconfined=settings.allow_unconfined_code,
        spares=settings.code_spares,
    )
    return runner, available
