"""The cascade policy, in one place, readable top to bottom.

    request -> guards -> [tests present] -> code sandbox ------------> verdict
                      -> [else] -> extract answer -> math equivalence
                                      equal        -> correct (final)
                                      not equal    -> incorrect; may be appealed to the judge
                                      unparseable  -> judge fallback
                      -> judge (guarded, one constrained token) -> verdict

Two phases so a caller can put a cache between them:

* `Cascade.plan` is cheap and pure (guards, extraction, normalisation, the
  sympy-free fast path). It either decides (`Plan.verdict`) or names the
  expensive work and its cache key (`Plan.key`).
* `Cascade.execute` does the expensive work: sympy in the worker pool, code
  in the sandbox, the judge over the network. It never raises: failures come
  back as abstain verdicts with a reason.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, cast

from verifiers.guards import GUARDS_VERSION, screen_answer, screen_response
from verifiers.math import (
    DEFAULT_TOLERANCE,
    MathItem,
    compare_task,
    fast_compare,
    prepare_math,
    verdict_from_outcome,
)
from verifiers.pickling import positional_pickle
from verifiers.pool import TaskOutcome, WorkerPool
from verifiers.verdict import VERIFIER_VERSION, Reason, Stage, Verdict

JudgeMode = Literal["off", "fallback", "appeal", "always"]
Task = Literal["auto", "math", "code", "judge"]


class CodeRunner(Protocol):
    """The code stage (`verifiers.code.CodeVerifier`). Synchronous."""

    def verify(
        self,
        response: str,
        tests: dict[str, Any],
        language: str | None = None,
        *,
        all_or_nothing: bool = False,
    ) -> Verdict: ...


#: The judge stage: (reference, extracted answer, question, domain, hardened) -> verdict.
#: `hardened` is True when the guards flagged the response (e.g. injection).
JudgeCall = Callable[[str, str, str | None, str, bool], Awaitable[Verdict]]


@positional_pickle
@dataclass(frozen=True, slots=True)
class VerifyRequest:
    """One (response, reference) pair and how to verify it."""

    response: str
    reference: str = ""
    task: Task = "auto"
    question: str | None = None
    tests: dict[str, Any] | None = None
    language: str | None = None
    judge: JudgeMode | None = None  # None: the cascade's default
    tolerance: float = DEFAULT_TOLERANCE
    timeout_s: float | None = None
    all_or_nothing: bool = False
    domain: str | None = None


@dataclass(slots=True)
class Plan:
    """What `Cascade.plan` found out cheaply.

    route: ``done`` (verdict already known), ``math``, ``code`` or ``judge``.
    key: cache key of the expensive part (None when nothing is to be cached).

    Not frozen (one is built per item on the hot path, and a frozen dataclass
    takes five times as long to build), but never changed once built: use
    `dataclasses.replace`.
    """

    request: VerifyRequest
    route: str
    judge_mode: JudgeMode
    verdict: Verdict | None = None
    key: str | None = None
    math: MathItem | None = None
    flags: tuple[str, ...] = field(default=())


def _digest(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


#: Batches at least this large are planned in the worker processes (all cores).
PARALLEL_PLAN_MIN = 64
#: Bounds of one planning task sent to a worker (fewer, larger tasks for small
#: batches: each task is a pipe round trip and two thread hand-offs).
_CHUNK_MIN_ITEMS = 32
_CHUNK_ITEMS = 256
_CHUNK_CHARS = 4_000_000
#: Deadline of one planning task; planning is linear, so this is only a safety net.
_CHUNK_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class PlanPolicy:
    """Everything `Cascade.plan` depends on besides the request (picklable)."""

    has_judge: bool
    judge_version: str
    default_judge_mode: JudgeMode


#: One planned request without the request itself: (route, judge_mode, verdict, key, math, flags).
PlanRow = tuple[str, JudgeMode, Verdict | None, str | None, MathItem | None, tuple[str, ...]]

_PLANNERS: dict[PlanPolicy, Cascade] = {}


async def _no_judge(*_: Any) -> Verdict:  # pragma: no cover - planning never calls the judge
    raise RuntimeError("a planning cascade has no judge")


def plan_rows(policy: PlanPolicy, requests: Sequence[VerifyRequest]) -> list[PlanRow]:
    """Worker-process entry point: plan a chunk of requests under `policy`.

    Returns compact rows (no request text goes back over the pipe).
    """
    planner = _PLANNERS.get(policy)
    if planner is None:
        planner = Cascade(
            cast(WorkerPool, None),
            judge=_no_judge if policy.has_judge else None,
            judge_version=policy.judge_version,
            default_judge_mode=policy.default_judge_mode,
        )
        _PLANNERS[policy] = planner
    rows: list[PlanRow] = []
    for request in requests:
        plan = planner.plan(request)
        rows.append((plan.route, plan.judge_mode, plan.verdict, plan.key, plan.math, plan.flags))
    return rows


def warm_up() -> None:
    """Run each kind of work once so a fresh worker process pays its lazy
    initialisation (sympy, the LaTeX parser, regex caches) before real tasks."""
    for answer, reference in (("x+1", "1+x"), ("2\\sqrt{3}", "\\sqrt{12}"), ("(1,2)", "(2,1)")):
        compare_task(answer, reference, DEFAULT_TOLERANCE)
    policy = PlanPolicy(False, "", "off")
    plan_rows(policy, [VerifyRequest("so the answer is $\\boxed{\\frac{1}{2}}$.", "0.5")])


def _chunks(requests: Sequence[VerifyRequest], parts: int) -> list[Sequence[VerifyRequest]]:
    """Consecutive chunks, about `parts` of them, each within the item and size bounds."""
    size = max(_CHUNK_MIN_ITEMS, min(_CHUNK_ITEMS, -(-len(requests) // max(1, parts))))
    chunks: list[Sequence[VerifyRequest]] = []
    start = 0
    chars = 0
    for index, request in enumerate(requests):
        chars += len(request.response) + len(request.reference)
        if index + 1 - start >= size or chars >= _CHUNK_CHARS:
            chunks.append(requests[start : index + 1])
            start, chars = index + 1, 0
    if start < len(requests):
        chunks.append(requests[start:])
    return chunks


class Cascade:
    """Guards -> math or code -> judge, with the policy of DESIGN.md."""

    def __init__(
        self,
        pool: WorkerPool,
        *,
        code: CodeRunner | None = None,
        judge: JudgeCall | None = None,
        judge_version: str = "",
        default_judge_mode: JudgeMode | None = None,
        math_timeout_s: float = 5.0,
    ) -> None:
        self.pool = pool
        self.code = code
        self.judge = judge
        self.judge_version = judge_version
        self.default_judge_mode: JudgeMode = default_judge_mode or (
            "fallback" if judge is not None else "off"
        )
        self.math_timeout_s = math_timeout_s

    # ------------------------------------------------------------------ plan
    @functools.cached_property
    def policy(self) -> PlanPolicy:
        """What planning depends on besides the request (fixed at construction)."""
        return PlanPolicy(self.judge is not None, self.judge_version, self.default_judge_mode)

    async def plan_many(
        self,
        requests: Sequence[VerifyRequest],
        *,
        parallel_min: int = PARALLEL_PLAN_MIN,
        on_planned: Callable[[list[Plan]], None] | None = None,
    ) -> list[Plan]:
        """`plan` for every request, in order, without blocking the event loop.

        Batches under `parallel_min` requests are planned inline. Larger ones
        are cut into chunks that the worker processes plan in parallel (guards
        and extraction are pure Python, so this is what uses every core); a
        chunk whose worker fails is planned here in a thread instead.
        `on_planned` sees each chunk's plans as soon as they exist, so the
        caller can start executing them while later chunks are still planned.
        """
        if len(requests) < parallel_min:
            plans = [self.plan(request) for request in requests]
            if on_planned is not None:
                on_planned(plans)
            return plans
        policy = self.policy
        chunks = _chunks(requests, 4 * self.pool.size)
        # Submitted here, not in the tasks below: the workers start on these
        # before the caller's next step (tasks would first wait for the loop).
        # Behind comparisons (priority 1): a comparison of an item planned
        # earlier overtakes the planning still queued instead of waiting for it.
        submitted = [
            self.pool.submit(plan_rows, policy, chunk, timeout=_CHUNK_TIMEOUT_S, priority=1)
            for chunk in chunks
        ]

        async def run(
            chunk: Sequence[VerifyRequest], task: concurrent.futures.Future[TaskOutcome]
        ) -> list[Plan]:
            outcome = await asyncio.wrap_future(task)
            if outcome.ok:
                rows: list[PlanRow] = outcome.value
                plans = [Plan(request, *row) for request, row in zip(chunk, rows, strict=True)]
            else:
                plans = await asyncio.to_thread(lambda: [self.plan(r) for r in chunk])
            if on_planned is not None:
                on_planned(plans)
            return plans

        try:
            planned = await asyncio.gather(*map(run, chunks, submitted))
        except BaseException:
            for task in submitted:
                task.cancel()
            raise
        return [plan for chunk_plans in planned for plan in chunk_plans]

    def plan(self, request: VerifyRequest) -> Plan:
        """Cheap, pure first phase. Never raises on model text."""
        mode: JudgeMode = request.judge or self.default_judge_mode
        if self.judge is None:
            mode = "off"
        task = request.task
        if task == "auto":
            task = "code" if request.tests is not None else "math"

        if task == "code":
            key = _digest(
                Stage.CODE,
                VERIFIER_VERSION,
                request.response,
                request.tests,
                request.language,
                request.all_or_nothing,
            )
            return Plan(request, "code", mode, key=key)

        # Guards first: degenerate and hacking responses never reach a stage.
        screened = screen_response(request.response)
        flags = screened.flags
        if screened.rejection is not None:
            return Plan(request, "done", mode, verdict=screened.rejection.with_flags(*flags))
        item = prepare_math(request.response, request.reference)
        if item.answer is not None:
            answer_screen = screen_answer(item.answer)
            flags = tuple(dict.fromkeys((*flags, *answer_screen.flags)))
            if answer_screen.rejection is not None:
                verdict = replace(answer_screen.rejection, extracted_answer=item.answer)
                return Plan(request, "done", mode, verdict=verdict.with_flags(*flags), math=item)
        plan = self._plan_math(request, task, mode, item, flags)
        return replace(plan, flags=flags) if flags else plan

    def _plan_math(
        self,
        request: VerifyRequest,
        task: str,
        mode: JudgeMode,
        item: MathItem,
        flags: tuple[str, ...],
    ) -> Plan:
        fast = fast_compare(item, request.tolerance)
        if task == "judge" and self.judge is not None:
            # The client asks for the judge; hard negatives and missing answers stay final.
            if fast is not None and fast.correct is False and not self._wants_judge(fast, "always"):
                return Plan(request, "done", mode, verdict=fast, math=item)
            key = self._judge_key(request, item, flags)
            return Plan(request, "judge", mode, key=key, math=item)

        if fast is not None and not self._wants_judge(fast, mode):
            return Plan(request, "done", mode, verdict=fast, math=item)
        key = _digest(
            Stage.MATH,
            VERIFIER_VERSION,
            GUARDS_VERSION,
            item.answer_key,
            item.reference_key,
            request.tolerance,
            mode,
            self.judge_version if mode != "off" else "",
            request.question if mode != "off" and request.domain == "general" else None,
            flags if mode != "off" else (),
        )
        return Plan(request, "math", mode, verdict=fast, key=key, math=item)

    def _judge_key(self, request: VerifyRequest, item: MathItem, flags: tuple[str, ...]) -> str:
        return _digest(
            Stage.JUDGE,
            VERIFIER_VERSION,
            GUARDS_VERSION,
            self.judge_version,
            item.answer,
            item.reference,
            request.question,
            request.domain,
            flags,
        )

    @staticmethod
    def _wants_judge(verdict: Verdict, mode: JudgeMode) -> bool:
        """Should a rule verdict go on to the judge under this mode?

        off: never. fallback: only when the rules abstained. appeal: rule
        negatives too. always: every item. In every mode, a missing answer and
        a hard negative (two numeric constants that differ) are final.
        """
        if mode == "off":
            return False
        if verdict.reason == Reason.NO_ANSWER or verdict.detail.get("hard_negative"):
            return False
        if mode == "always" or verdict.correct is None:
            return True
        return verdict.correct is False and mode == "appeal"

    # ------------------------------------------------------------------ execute
    async def execute(self, plan: Plan) -> Verdict:
        """Expensive second phase. Never raises: failures become abstains."""
        try:
            verdict = await self._execute(plan)
        except Exception as exc:  # a bug must not become a 5xx or a guess
            verdict = Verdict.abstain(
                Stage.NONE, Reason.ERROR, detail={"error": f"{type(exc).__name__}: {exc}"[:300]}
            )
        return verdict.with_flags(*plan.flags) if plan.flags else verdict

    async def _execute(self, plan: Plan) -> Verdict:
        request = plan.request
        if plan.route == "done":
            assert plan.verdict is not None
            return plan.verdict
        if plan.route == "code":
            return await self._run_code(request)
        assert plan.math is not None
        item = plan.math
        if plan.route == "judge":
            return await self._ask_judge(plan, item)

        verdict = plan.verdict
        if verdict is None:
            assert item.answer is not None
            outcome = await self.pool.run(
                compare_task,
                item.answer,
                item.reference,
                request.tolerance,
                timeout=request.timeout_s or self.math_timeout_s,
            )
            verdict = verdict_from_outcome(item, outcome)
        if not self._wants_judge(verdict, plan.judge_mode) or verdict.reason == Reason.TIMEOUT:
            return verdict
        judged = await self._ask_judge(plan, item)
        if judged.correct is None and verdict.correct is not None:
            # An appeal the judge could not hear: the rule's decision stands.
            return replace(
                verdict,
                detail={**verdict.detail, "judge": judged.reason, "judge_detail": judged.detail},
            )
        if judged.correct is None:
            # Rules abstained and the judge is unavailable: say so, never guess.
            return replace(judged, detail={**judged.detail, "rule_verdict": verdict.reason})
        detail = {**judged.detail, "rule_verdict": verdict.reason}
        return replace(judged, detail=detail)

    async def _run_code(self, request: VerifyRequest) -> Verdict:
        if self.code is None:
            return Verdict.abstain(
                Stage.CODE, Reason.SANDBOX_ERROR, detail={"error": "code stage not configured"}
            )
        tests = request.tests or {}
        return await asyncio.to_thread(
            self.code.verify,
            request.response,
            tests,
            request.language,
            all_or_nothing=request.all_or_nothing,
        )

    async def _ask_judge(self, plan: Plan, item: MathItem) -> Verdict:
        if self.judge is None:
            return Verdict.abstain(Stage.JUDGE, Reason.JUDGE_OFF, extracted_answer=item.answer)
        assert item.answer is not None
        request = plan.request
        hardened = any(flag.startswith("injection") for flag in plan.flags)
        return await self.judge(
            item.reference, item.answer, request.question, request.domain or "math", hardened
        )

    async def verify(self, request: VerifyRequest) -> Verdict:
        """Both phases, no cache."""
        plan = self.plan(request)
        return await self.execute(plan)
