"""Warm spare sandboxes: started ahead of need, used once, refilled, replaced."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest

from verifiers.code import CodeVerifier, SandboxLimits, sandbox, sandbox_available
from verifiers.code.sandbox import spare_pids

AVAILABLE, WHY = sandbox_available()
pytestmark = pytest.mark.skipif(not AVAILABLE, reason=f"no sandbox: {WHY}")

LIMITS = SandboxLimits(cpu_seconds=2, wall_seconds=4, total_wall_seconds=20)
ECHO = {"kind": "stdin", "cases": [{"input": "21\n", "output": "42\n"}]}
DOUBLE = "print(2 * int(input()))\n"


def wait_until(pred: Callable[[], bool], timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


def gone(pid: int) -> bool:
    """Exited and reaped (a zombie still has a /proc entry)."""
    return not os.path.exists(f"/proc/{pid}")


def state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0]
    except OSError:
        return "gone"


def ready_spares(cv: CodeVerifier, n: int) -> set[int]:
    """Run once (which sets the pool's target) and wait for `n` idle spares."""
    assert cv.verify(DOUBLE, ECHO).correct
    assert wait_until(lambda: len(spare_pids()) == n), spare_pids()
    return spare_pids()


def test_spares_are_started_taken_and_refilled() -> None:
    cv = CodeVerifier(LIMITS, spares=2)
    before = ready_spares(cv, 2)
    for pid in before:
        assert state(pid) in "SR"  # bwrap alive, its launcher waiting for a job
    verdict = cv.verify(DOUBLE, ECHO)
    assert verdict.correct and verdict.detail["sandbox"] == "bwrap", verdict
    assert wait_until(lambda: len(spare_pids()) == 2)
    after = spare_pids()
    taken = before - after
    assert len(taken) == 1  # the oldest was used, one new one started
    assert wait_until(lambda: all(gone(pid) for pid in taken))  # and reaped after its run


def test_a_wrong_answer_through_a_spare() -> None:
    cv = CodeVerifier(LIMITS, spares=1)
    ready_spares(cv, 1)
    verdict = cv.verify("print(41)\n", ECHO)
    assert not verdict.correct and verdict.reason == "wrong_answer"


def test_a_dead_spare_is_replaced() -> None:
    cv = CodeVerifier(LIMITS, spares=1)
    (pid,) = ready_spares(cv, 1)
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: state(pid) == "Z")
    assert cv.verify(DOUBLE, ECHO).correct
    assert gone(pid)
    assert wait_until(lambda: len(spare_pids()) == 1)
    assert pid not in spare_pids()


def test_a_spare_that_dies_after_being_taken_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    cv = CodeVerifier(LIMITS, spares=1)
    (pid,) = ready_spares(cv, 1)
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: state(pid) == "Z")
    time.sleep(0.2)  # the launcher inside goes with bwrap (--die-with-parent)
    monkeypatch.setattr(sandbox._Box, "alive", lambda self: True)
    verdict = cv.verify(DOUBLE, ECHO)
    assert verdict.correct, verdict  # the job hit a closed pipe; a fresh sandbox ran it
    assert gone(pid)


def test_a_new_command_line_kills_the_old_spares() -> None:
    (old,) = ready_spares(CodeVerifier(LIMITS, spares=1), 1)
    bigger_tmpfs = SandboxLimits(cpu_seconds=2, wall_seconds=4, max_file_bytes=64 << 20)
    (new,) = ready_spares(CodeVerifier(bigger_tmpfs, spares=1), 1)
    assert new != old
    assert wait_until(lambda: gone(old))
    # limits that do not change the command line share the spares
    same_argv = SandboxLimits(cpu_seconds=3, wall_seconds=5, max_file_bytes=64 << 20)
    assert CodeVerifier(same_argv, spares=1).verify(DOUBLE, ECHO).correct
    assert gone(new)


def test_a_job_bigger_than_the_pipe_buffer_is_delivered() -> None:
    line = "x" * (1 << 20)
    tests = {"kind": "stdin", "cases": [{"input": line, "output": f"{1 << 20}\n"}] * 5}
    code = "print(len(input()))\n"
    for spares in (1, 0):
        cv = CodeVerifier(LIMITS, spares=spares)
        if spares:
            ready_spares(cv, 1)
        verdict = cv.verify(code, tests)
        assert verdict.correct and verdict.detail["passed"] == 5, verdict


def test_a_forked_child_does_not_inherit_the_spares() -> None:
    cv = CodeVerifier(LIMITS, spares=1)
    (pid,) = ready_spares(cv, 1)
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os._exit(0 if spare_pids() == set() else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert spare_pids() == {pid} and state(pid) in "SR"


def test_no_spares_by_default() -> None:
    assert CodeVerifier().spares == 0
    with pytest.raises(ValueError):
        CodeVerifier(spares=-1)
