"""The math stage through a real `verifiers.pool.WorkerPool`: LaTeX bombs
abstain within the limit while other work completes; the pool works from
threads and asyncio and recovers from a killed worker."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from verifiers.math import compare_task, prepare_math, verdict_from_outcome, verify_math
from verifiers.pool import WorkerPool
from verifiers.verdict import Reason

LIMIT = 1.5

BOMBS = [
    "9^{9^{9^{9}}}",
    "\\frac{1}{" * 400 + "2" + "}" * 400,
    "100000!",
    "(10^{10^{10}})!",
    "\\sqrt{" * 300 + "2" + "}" * 300,
]


@pytest.fixture(scope="module")
def pool() -> Iterator[WorkerPool]:
    with WorkerPool(2, task_timeout=LIMIT, preload=["verifiers.math.compare"]) as started:
        started.run_sync(compare_task, "1", "1", 1e-6, timeout=30)  # warm up imports
        yield started


@pytest.mark.parametrize("bomb", BOMBS, ids=lambda b: b[:16])
def test_bomb_abstains_in_time_while_other_work_completes(pool: WorkerPool, bomb: str) -> None:
    item = prepare_math(f"The answer is $\\boxed{{{bomb}}}$", "1")
    assert item.answer is not None
    started = time.monotonic()
    bomb_future = pool.submit(compare_task, item.answer, item.reference, 1e-6)
    other = pool.submit(compare_task, "\\frac{2}{4}", "0.5", 1e-6)
    other_outcome = other.result(timeout=LIMIT + 10)
    verdict = verdict_from_outcome(item, bomb_future.result(timeout=LIMIT + 10))
    assert time.monotonic() - started < LIMIT + 5
    assert verdict.correct is None
    assert verdict.reason in (Reason.TIMEOUT, Reason.UNPARSEABLE)
    assert other_outcome.ok and other_outcome.value[0] == "equal"


def test_runaway_task_is_killed_at_the_deadline(pool: WorkerPool) -> None:
    started = time.monotonic()
    outcome = pool.run_sync(time.sleep, 30, timeout=0.5)
    assert outcome.error == "timeout"
    assert time.monotonic() - started < 5
    assert pool.run_sync(compare_task, "2", "2", 1e-6).ok


def test_from_threads(pool: WorkerPool) -> None:
    pairs = [(f"{n}/2", f"{n / 2}") for n in range(12)]
    with ThreadPoolExecutor(4) as threads:
        outcomes = list(threads.map(lambda p: pool.run_sync(compare_task, p[0], p[1], 1e-6), pairs))
    assert all(o.ok and o.value[0] == "equal" for o in outcomes)


def test_from_asyncio(pool: WorkerPool) -> None:
    async def main() -> list[object]:
        return await asyncio.gather(
            verify_math(pool, "So $\\boxed{\\sqrt{8}}$.", "2\\sqrt{2}"),
            verify_math(pool, "So $\\boxed{x \\le 2}$.", "(-\\infty, 2]"),
            verify_math(pool, "So $\\boxed{4}$.", "4\\sqrt{2}"),
            verify_math(pool, f"$\\boxed{{{BOMBS[0]}}}$", "1"),
        )

    results = asyncio.run(main())
    assert [getattr(v, "correct", "?") for v in results] == [True, True, False, None]


def test_killed_worker_gives_an_error_and_the_pool_recovers(pool: WorkerPool) -> None:
    future = pool.submit(time.sleep, 20, timeout=30)
    deadline = time.monotonic() + 10
    victim = None
    while victim is None and time.monotonic() < deadline:
        busy = [slot for slot in pool._slots if slot.busy and slot.process is not None]
        if busy:
            assert busy[0].process is not None
            victim = busy[0].process.pid
        else:
            time.sleep(0.02)
    assert victim is not None
    time.sleep(0.2)  # let the worker start the task
    os.kill(victim, signal.SIGKILL)
    outcome = future.result(timeout=10)
    assert not outcome.ok
    assert outcome.error == "crashed"
    for _ in range(4):  # both slots answer again
        assert pool.run_sync(compare_task, "3", "3.0", 1e-6).ok
