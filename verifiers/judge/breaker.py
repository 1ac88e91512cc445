"""A circuit breaker for the judge: stop calling a server that keeps failing.

closed --N consecutive failures--> open --reset time--> half-open
half-open lets exactly one probe call through: success -> closed,
failure -> open again (and the reset time starts over).
"""

from __future__ import annotations

import contextlib
import enum
import time
from collections.abc import Callable


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Consecutive-failure circuit breaker (not thread-safe; one event loop).

    `clock` returns seconds on a monotonic scale (default `time.monotonic`).
    `on_change` is called with the new state on every transition; exceptions
    it raises are swallowed.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_s: float = 30.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        if reset_s < 0:
            raise ValueError("reset_s must be >= 0")
        self.failure_threshold = failure_threshold
        self.reset_s = reset_s
        self._clock = clock
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False

    # ------------------------------------------------------------------ state
    def _set(self, state: BreakerState) -> None:
        if state is self._state:
            return
        self._state = state
        if self._on_change is not None:
            with contextlib.suppress(Exception):  # an observer must never break the judge
                self._on_change(state)

    def _refresh(self) -> None:
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.reset_s:
            self._probe_in_flight = False
            self._set(BreakerState.HALF_OPEN)

    @property
    def state(self) -> BreakerState:
        """Current state; an open breaker whose reset time passed reads half-open."""
        self._refresh()
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    # ---------------------------------------------------------------- protocol
    def allow(self) -> bool:
        """May a call go through now? In half-open, True for one probe only.

        Every True must be followed by `record_success`, `record_failure` or
        `release`.
        """
        self._refresh()
        if self._state is BreakerState.CLOSED:
            return True
        if self._state is BreakerState.HALF_OPEN and not self._probe_in_flight:
            self._probe_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        """A permitted call succeeded: close the breaker."""
        self._failures = 0
        self._probe_in_flight = False
        self._set(BreakerState.CLOSED)

    def record_failure(self) -> None:
        """A permitted call failed: count it; open when the threshold is reached
        or when the half-open probe failed."""
        self._failures += 1
        self._probe_in_flight = False
        if self._state is BreakerState.HALF_OPEN or (
            self._state is BreakerState.CLOSED and self._failures >= self.failure_threshold
        ):
            self._opened_at = self._clock()
            self._set(BreakerState.OPEN)

    def release(self) -> None:
        """A permitted call ended without an outcome (e.g. cancelled): free the
        probe slot without changing the state."""
        self._probe_in_flight = False
