"""Coalescing of concurrent calls into one batched call.

Single-item traffic arrives as many concurrent requests, each with one item.
Planning them one by one keeps all of that pure-Python work (guards,
extraction) on the event loop's core; gathering the requests that became
ready in the same event-loop iteration into one batch lets the cascade plan
them in the worker processes, on every core. A lone request pays one loop
iteration, not a timer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    """Runs `batch_fn` once for all the `run` calls made in one loop iteration.

    `batch_fn` maps a list of inputs to a list of outputs of the same length
    and order. An exception from it reaches every caller of that batch.
    """

    def __init__(self, batch_fn: Callable[[list[T]], Awaitable[list[R]]]) -> None:
        self._batch_fn = batch_fn
        self._waiting: list[tuple[Sequence[T], asyncio.Future[list[R]]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0  # how many batched calls were made (for tests and tuning)

    async def run(self, inputs: Sequence[T]) -> list[R]:
        """The outputs for `inputs`, computed together with concurrent callers'."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[R]] = loop.create_future()
        self._waiting.append((inputs, future))
        if len(self._waiting) == 1:
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        waiting, self._waiting = self._waiting, []
        task = asyncio.ensure_future(self._run_batch(waiting))
        self._tasks.add(task)  # keep a reference until it finishes
        task.add_done_callback(self._tasks.discard)

    async def _run_batch(self, waiting: list[tuple[Sequence[T], asyncio.Future[list[R]]]]) -> None:
        inputs = [value for values, _ in waiting for value in values]
        self.batches += 1
        try:
            outputs = await self._batch_fn(inputs)
            if len(outputs) != len(inputs):
                raise RuntimeError(f"batch function returned {len(outputs)} for {len(inputs)}")
        except BaseException as exc:
            for _, future in waiting:
                if future.done():
                    continue
                if isinstance(exc, asyncio.CancelledError):
                    future.cancel()
                else:
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        start = 0
        for values, future in waiting:
            end = start + len(values)
            if not future.done():  # a caller that gave up (cancelled) is skipped
                future.set_result(outputs[start:end])
            start = end
