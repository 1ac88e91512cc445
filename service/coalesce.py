"""Coalescing of concurrent calls into one batched call.

Single-item traffic arrives as many concurrent requests, each with one item.
Planning them one by one keeps all of that pure-Python work (guards,
extraction) on the event loop's core, and their Redis reads and writes cost a
round trip each; gathering the calls that became ready in the same
event-loop iteration into one batch lets the cascade plan them in the worker
processes, on every core, and Redis serve them in one round trip. A lone
call pays one loop iteration, not a timer.
"""

from __future__ import annotations

import asyncio
import contextvars
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_Waiter = tuple[Sequence[T], "asyncio.Future[list[R]]"]


class Coalescer(Generic[T, R]):
    """Runs `batch_fn` once for all the `run` calls made in one loop iteration.

    `batch_fn` maps a list of inputs to a list of outputs of the same length
    and order. When it raises, every caller of that batch gets the exception;
    with `isolate_failures`, a failed batch of several callers is instead
    retried per caller, so one caller's bad input fails only that caller.
    The batch runs in an empty context: it does not inherit the first
    caller's context variables (request id) for work done on everyone's behalf.
    """

    def __init__(
        self,
        batch_fn: Callable[[list[T]], Awaitable[list[R]]],
        *,
        isolate_failures: bool = False,
    ) -> None:
        self._batch_fn = batch_fn
        self._isolate = isolate_failures
        # Per event loop: calls queued in a loop that stopped before flushing
        # must not keep another loop's calls from being flushed.
        self._waiting: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[_Waiter[T, R]]] = (
            weakref.WeakKeyDictionary()
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0  # how many batched calls were made (for tests and tuning)

    async def run(self, inputs: Sequence[T]) -> list[R]:
        """The outputs for `inputs`, computed together with concurrent callers'."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[R]] = loop.create_future()
        waiting = self._waiting.setdefault(loop, [])
        waiting.append((inputs, future))
        if len(waiting) == 1:
            loop.call_soon(self._flush, loop, context=contextvars.Context())
        return await future

    async def drain(self) -> None:
        """Wait for the batches running now (before closing what they use)."""
        tasks = [task for task in self._tasks if not task.done()]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        waiting = self._waiting.pop(loop, [])
        if not waiting:
            return
        task = loop.create_task(self._run_batch(waiting))
        self._tasks.add(task)  # keep a reference until it finishes
        task.add_done_callback(self._tasks.discard)

    async def _run_batch(self, waiting: list[_Waiter[T, R]]) -> None:
        inputs = [value for values, _ in waiting for value in values]
        self.batches += 1
        try:
            outputs = await self._call(inputs)
        except BaseException as exc:
            if self._isolate and len(waiting) > 1 and isinstance(exc, Exception):
                await self._one_by_one(waiting)
                return
            _fail(waiting, exc)
            if not isinstance(exc, Exception):
                raise
            return
        start = 0
        for values, future in waiting:
            end = start + len(values)
            if not future.done():  # a caller that gave up (cancelled) is skipped
                future.set_result(outputs[start:end])
            start = end

    async def _one_by_one(self, waiting: list[_Waiter[T, R]]) -> None:
        for values, future in waiting:
            if future.done():
                continue
            try:
                outputs = await self._call(list(values))
            except Exception as exc:
                _fail([(values, future)], exc)
            else:
                if not future.done():
                    future.set_result(outputs)

    async def _call(self, inputs: list[T]) -> list[R]:
        outputs = await self._batch_fn(inputs)
        if len(outputs) != len(inputs):
            raise RuntimeError(f"batch function returned {len(outputs)} for {len(inputs)}")
        return outputs


def _fail(waiting: list[_Waiter[T, R]], exc: BaseException) -> None:
    for _, future in waiting:
        if future.done():
            continue
        if isinstance(exc, asyncio.CancelledError):
            future.cancel()
        else:
            future.set_exception(exc)
