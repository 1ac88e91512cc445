"""Circuit breaker transitions, driven by a fake clock."""

from __future__ import annotations

import pytest

from verifiers.judge import BreakerState, CircuitBreaker


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _breaker(clock: FakeClock, changes: list[BreakerState]) -> CircuitBreaker:
    return CircuitBreaker(3, 10.0, clock=clock, on_change=changes.append)


def test_opens_after_consecutive_failures() -> None:
    clock, changes = FakeClock(), list[BreakerState]()
    breaker = _breaker(clock, changes)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    assert changes == [BreakerState.OPEN]


def test_success_resets_the_count() -> None:
    clock, changes = FakeClock(), list[BreakerState]()
    breaker = _breaker(clock, changes)
    for _ in range(2):
        breaker.allow()
        breaker.record_failure()
    breaker.allow()
    breaker.record_success()
    for _ in range(2):
        breaker.allow()
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED


def _open(breaker: CircuitBreaker) -> None:
    for _ in range(3):
        breaker.allow()
        breaker.record_failure()
    assert breaker.state is BreakerState.OPEN


def test_half_open_after_reset_time_allows_one_probe() -> None:
    clock, changes = FakeClock(), list[BreakerState]()
    breaker = _breaker(clock, changes)
    _open(breaker)
    clock.now += 9.9
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # nobody else while it runs
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()
    assert changes == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


def test_failed_probe_reopens_and_restarts_the_timer() -> None:
    clock, changes = FakeClock(), list[BreakerState]()
    breaker = _breaker(clock, changes)
    _open(breaker)
    clock.now += 10
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    clock.now += 5
    assert not breaker.allow()
    clock.now += 5
    assert breaker.allow()
    assert changes == [
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
    ]


def test_release_frees_the_probe_slot() -> None:
    clock, changes = FakeClock(), list[BreakerState]()
    breaker = _breaker(clock, changes)
    _open(breaker)
    clock.now += 10
    assert breaker.allow()
    breaker.release()
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()


def test_observer_errors_are_swallowed() -> None:
    def boom(state: BreakerState) -> None:
        raise RuntimeError("observer bug")

    breaker = CircuitBreaker(1, 1.0, clock=FakeClock(), on_change=boom)
    breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN


def test_invalid_settings() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(0, 1.0)
    with pytest.raises(ValueError):
        CircuitBreaker(1, -1.0)
