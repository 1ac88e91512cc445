"""WorkerPool start-up: deadlines start when the worker is ready, not when it spawns."""

from __future__ import annotations

import os
import signal

from verifiers.math import compare_task
from verifiers.pool import WorkerPool


def test_start_up_does_not_count_against_the_first_deadline() -> None:
    # importing sympy and latex2sympy takes far longer than 0.3 s on this machine
    with WorkerPool(1, task_timeout=0.3, preload=("verifiers.math.compare",)) as pool:
        outcome = pool.run_sync(compare_task, "\\frac{x^2-1}{x-1}", "x+1", 1e-6)
        assert outcome.ok, outcome
        assert outcome.value[0] == "equal"
        assert outcome.seconds < 0.3


def test_a_replaced_worker_starts_before_its_next_task_is_timed() -> None:
    with WorkerPool(1, task_timeout=0.5, preload=("verifiers.math.compare",)) as pool:
        assert pool.run_sync(compare_task, "x+1", "1+x", 1e-6).ok
        slot = pool._slots[0]
        assert slot.process is not None
        os.kill(slot.process.pid, signal.SIGKILL)
        crashed = pool.run_sync(compare_task, "x+2", "2+x", 1e-6)
        assert not crashed.ok and crashed.error == "crashed"
        # the replacement imports sympy again: the deadline still holds for the task alone
        after = pool.run_sync(compare_task, "(x+1)^2", "x^2+2x+1", 1e-6)
        assert after.ok and after.value[0] == "equal"
        assert pool.restarts.get("crashed") == 1
