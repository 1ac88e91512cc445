"""Bounded, killable worker processes for work that may not terminate.

Sympy can hang or exhaust memory on hostile input (``9^{9^{9^{9}}}``, deeply
nested fractions). Signal-based timeouts only work on the main thread, so
every such call runs here instead: in a separate process with an address-space
limit, under a wall-clock deadline enforced from outside. A task that overruns
its deadline gets its worker killed (SIGKILL) and replaced; the caller gets a
`TaskOutcome` saying ``timeout`` rather than an exception or a hang.

Works the same from threads (`submit`, `run_sync`) and from asyncio (`run`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import multiprocessing.connection
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

_STOP = None  # sentinel sent to a worker to make it exit (see verifiers.pool_worker)
READY = "ready"  # what a worker sends once it has started (verifiers.pool_worker.READY)
#: Priority of the stop sentinels: after every task.
_LAST = 1 << 30


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """What happened to one task.

    ok: the function returned; `value` holds its return value.
    error: when not ok - ``timeout`` (killed at the deadline), ``crashed``
        (worker died, e.g. out of memory), ``memory`` (MemoryError raised),
        ``closed`` (pool shut down), or ``exception:<Type>: <message>``.
    """

    ok: bool
    value: Any = None
    error: str | None = None
    seconds: float = 0.0


@dataclass(slots=True)
class _Task:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    timeout: float
    future: concurrent.futures.Future[TaskOutcome]
    enqueued: float


class _Slot:
    """One worker process and the thread that feeds it and enforces deadlines."""

    def __init__(self, pool: WorkerPool, index: int) -> None:
        self.pool = pool
        self.index = index
        self.process: subprocess.Popen[bytes] | None = None
        self.conn: multiprocessing.connection.Connection | None = None
        self.tasks_done = 0
        self.ready = False
        self.busy = False
        self.thread = threading.Thread(target=self._run, name=f"verifier-pool-{index}", daemon=True)

    def spawn(self) -> None:
        # A plain subprocess (not multiprocessing's spawn/forkserver): no
        # re-import of the caller's __main__, safe from threaded servers.
        parent_sock, child_sock = socket.socketpair()
        command = [
            sys.executable,
            "-m",
            "verifiers.pool_worker",
            str(child_sock.fileno()),
            str(self.pool.memory_limit_bytes or 0),
            *self.pool.preload,
        ]
        process = subprocess.Popen(
            command,
            pass_fds=(child_sock.fileno(),),
            stdin=subprocess.DEVNULL,
            close_fds=True,
        )
        child_sock.close()
        conn = multiprocessing.connection.Connection(parent_sock.detach())
        self.process, self.conn, self.tasks_done = process, conn, 0
        self.ready = False

    def kill(self) -> None:
        process, conn = self.process, self.conn
        self.process = self.conn = None
        if conn is not None:
            conn.close()
        if process is not None:
            if process.poll() is None:
                process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)

    def stop(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(OSError, BrokenPipeError):
                self.conn.send(_STOP)
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=2)
        self.kill()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _replace(self, reason: str, *, graceful: bool = False) -> None:
        """Kill (or stop) the current process and start a fresh one."""
        if graceful:
            self.stop()
        else:
            self.kill()
        if not self.pool._closed:
            self.spawn()
        self.pool._note_restart(reason)

    def _run(self) -> None:
        pool = self.pool
        while True:
            _, _, task = pool._queue.get()
            if task is None:
                self.stop()
                return
            if not task.future.set_running_or_notify_cancel():
                continue
            self.busy = True
            try:
                outcome = self._execute(task)
            finally:
                self.busy = False
            task.future.set_result(outcome)

    def _await_ready(self) -> bool:
        """Wait (outside any task deadline) for the worker's start-up signal."""
        assert self.conn is not None
        try:
            if self.conn.poll(self.pool.startup_timeout) and self.conn.recv() == READY:
                self.ready = True
        except (EOFError, OSError):
            return False
        return self.ready

    def _execute(self, task: _Task) -> TaskOutcome:
        pool = self.pool
        if not self.alive:
            self._replace("dead")
        assert self.conn is not None
        if not self.ready and not self._await_ready():
            self._replace("startup")
            return TaskOutcome(False, error="crashed")
        assert self.conn is not None
        started = time.monotonic()
        try:
            self.conn.send((task.fn, task.args))
            ready = self.conn.poll(task.timeout)
            reply = self.conn.recv() if ready else None
        except (EOFError, OSError, BrokenPipeError):
            self._replace("crashed")
            return TaskOutcome(False, error="crashed", seconds=time.monotonic() - started)
        elapsed = time.monotonic() - started
        if reply is None:
            self._replace("timeout")
            return TaskOutcome(False, error="timeout", seconds=elapsed)
        self.tasks_done += 1
        if self.tasks_done >= pool.max_tasks_per_worker:
            # Recycle: sympy's caches only grow.
            self._replace("recycled", graceful=True)
        ok, value = reply
        if ok:
            return TaskOutcome(True, value=value, seconds=elapsed)
        if value == "memory":
            # The worker may be in a bad state after MemoryError; replace it.
            self._replace("memory")
        return TaskOutcome(False, error=value, seconds=elapsed)


class WorkerPool:
    """A fixed number of worker processes with per-task wall-clock deadlines.

    Tasks are a top-level (picklable) function and its arguments. A task
    never raises into the caller and never outlives its deadline: on
    overrun the worker is killed and replaced and the outcome is
    ``TaskOutcome(ok=False, error="timeout")``.
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        task_timeout: float = 5.0,
        memory_limit_bytes: int | None = 2 << 30,
        max_tasks_per_worker: int = 20_000,
        preload: Sequence[str] = (),
        startup_timeout: float = 120.0,
    ) -> None:
        self.size = max(1, workers or os.cpu_count() or 1)
        self.task_timeout = task_timeout
        self.memory_limit_bytes = memory_limit_bytes
        self.max_tasks_per_worker = max_tasks_per_worker
        self.preload = list(preload)
        self.startup_timeout = startup_timeout
        # (priority, submission number, task): lower priorities first, FIFO within one.
        self._queue: queue.PriorityQueue[tuple[int, int, _Task | None]] = queue.PriorityQueue()
        self._submitted = itertools.count()
        self._slots: list[_Slot] = []
        self._lock = threading.Lock()
        self._started = False
        self._closed = False
        self.restarts: dict[str, int] = {}
        self.on_restart: Callable[[str], None] | None = None

    # lifecycle -----------------------------------------------------------
    def start(self) -> WorkerPool:
        """Spawn the workers (idempotent). Blocks until they are started."""
        with self._lock:
            if self._started:
                return self
            self._slots = [_Slot(self, i) for i in range(self.size)]
            for slot in self._slots:
                slot.spawn()
                slot.thread.start()
            self._started = True
        return self

    def close(self) -> None:
        """Stop the workers; pending tasks resolve with error ``closed``."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        while True:
            try:
                _, _, task = self._queue.get_nowait()
            except queue.Empty:
                break
            if task is not None and task.future.set_running_or_notify_cancel():
                task.future.set_result(TaskOutcome(False, error="closed"))
        for _ in self._slots:
            self._queue.put((_LAST, next(self._submitted), None))
        for slot in self._slots:
            slot.thread.join(timeout=10)

    def __enter__(self) -> WorkerPool:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # submitting ----------------------------------------------------------
    def submit(
        self,
        fn: Callable[..., Any],
        *args: Any,
        timeout: float | None = None,
        priority: int = 0,
    ) -> concurrent.futures.Future[TaskOutcome]:
        """Queue one task; the future always resolves to a `TaskOutcome`.

        Queued tasks of a lower `priority` start first, in submission order
        among equals (a running task is never interrupted)."""
        future: concurrent.futures.Future[TaskOutcome] = concurrent.futures.Future()
        if self._closed:
            future.set_result(TaskOutcome(False, error="closed"))
            return future
        if not self._started:
            self.start()
        deadline = self.task_timeout if timeout is None else timeout
        task = _Task(fn, args, deadline, future, time.monotonic())
        self._queue.put((priority, next(self._submitted), task))
        return future

    def run_sync(
        self, fn: Callable[..., Any], *args: Any, timeout: float | None = None, priority: int = 0
    ) -> TaskOutcome:
        """Run one task and wait for its outcome (from any thread)."""
        return self.submit(fn, *args, timeout=timeout, priority=priority).result()

    async def run(
        self, fn: Callable[..., Any], *args: Any, timeout: float | None = None, priority: int = 0
    ) -> TaskOutcome:
        """Run one task from asyncio without blocking the event loop."""
        future = self.submit(fn, *args, timeout=timeout, priority=priority)
        return await asyncio.wrap_future(future)

    # introspection ---------------------------------------------------------
    def _note_restart(self, reason: str) -> None:
        with self._lock:
            self.restarts[reason] = self.restarts.get(reason, 0) + 1
        if self.on_restart is not None:
            with contextlib.suppress(Exception):
                self.on_restart(reason)

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    @property
    def busy_workers(self) -> int:
        return sum(1 for slot in self._slots if slot.busy)

    @property
    def alive(self) -> bool:
        """True when started, not closed, and every feeding thread runs."""
        return (
            self._started
            and not self._closed
            and all(slot.thread.is_alive() for slot in self._slots)
        )
