"""WorkerPool start-up: deadlines start when the worker is ready, not when it spawns."""

from __future__ import annotations

import os
import signal
import time

from verifiers.math import compare_task
from verifiers.pool import WorkerPool

# What the service preloads: importing sympy and the LaTeX parser and warming
# them up takes well over a second, far longer than the deadlines below.
PRELOAD = ("verifiers.math.compare", "verifiers.cascade")


def test_start_up_does_not_count_against_the_first_deadline() -> None:
    started = time.monotonic()
    with WorkerPool(1, task_timeout=0.3, preload=PRELOAD) as pool:
        # identical answers: decided without sympy, so only start-up could be slow
        outcome = pool.run_sync(compare_task, "x^2+1", "x^2+1", 1e-6)
        assert outcome.ok, outcome
        assert outcome.value[0] == "equal"
        assert time.monotonic() - started > outcome.seconds  # start-up happened, untimed


def test_a_replaced_worker_starts_before_its_next_task_is_timed() -> None:
    with WorkerPool(1, task_timeout=0.3, preload=PRELOAD) as pool:
        assert pool.run_sync(compare_task, "y", "y", 1e-6).ok
        slot = pool._slots[0]
        assert slot.process is not None
        # Killed while a task runs (killed between tasks, the pool may notice
        # the dead process first and replace it before sending: no crash then).
        running = pool.submit(time.sleep, 2.0, timeout=5)
        deadline = time.monotonic() + 10
        while not slot.busy and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # sent and sleeping in the worker
        os.kill(slot.process.pid, signal.SIGKILL)
        crashed = running.result()
        assert not crashed.ok and crashed.error == "crashed"
        # the replacement imports sympy again; the deadline covers the task alone
        after = pool.run_sync(compare_task, "w+1", "w+1", 1e-6)
        assert after.ok and after.value[0] == "equal", after
        assert pool.restarts.get("crashed") == 1


def test_objects_crossing_to_workers_pickle_positionally_and_round_trip() -> None:
    import pickle

    from verifiers.cascade import VerifyRequest
    from verifiers.math import MathItem
    from verifiers.verdict import Verdict

    objects = [
        VerifyRequest("so $\\boxed{2}$", "2", question="q", tests={"kind": "stdin"}, domain="d"),
        Verdict(True, 1.0, "math", "equal", "2", 1.0, ("injection",), {"method": "exact"}),
        MathItem("2", "boxed", "2", "2", "2"),
    ]
    for obj in objects:
        assert type(obj).__reduce__(obj)[0] is type(obj)
        assert pickle.loads(pickle.dumps(obj, protocol=5)) == obj


def test_settle_heap_freezes_start_up_objects_and_makes_full_collections_rarer() -> None:
    import gc

    from verifiers.heap import THRESHOLDS, settle_heap

    before = gc.get_threshold()
    try:
        settle_heap()
        assert gc.get_threshold() == THRESHOLDS
        assert gc.get_freeze_count() > 1000
        assert THRESHOLDS[2] > 10  # rarer than the default full collection
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_queued_tasks_of_a_lower_priority_number_start_first() -> None:
    with WorkerPool(1, task_timeout=10) as pool:
        assert pool.run_sync(time.sleep, 0).ok  # started and ready
        blocker = pool.submit(time.sleep, 0.5)  # occupies the only worker
        time.sleep(0.1)
        futures = {
            name: pool.submit(time.monotonic, priority=priority)
            for name, priority in [("bulk-1", 1), ("bulk-2", 1), ("urgent", 0), ("bulk-3", 1)]
        }
        assert blocker.result().ok
        started_at = {name: future.result().value for name, future in futures.items()}
    assert sorted(started_at, key=started_at.__getitem__) == [
        "urgent",
        "bulk-1",
        "bulk-2",
        "bulk-3",
    ]
