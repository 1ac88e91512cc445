"""Entry point of one `verifiers.pool.WorkerPool` worker process.

Run as ``python -m verifiers.pool_worker FD MEMORY_LIMIT [MODULE ...]``: FD is
one end of a socket pair speaking `multiprocessing.connection` framing.
Sends ``"ready"`` once imports and warm-up are done, then receives
``(fn, args)`` and replies ``(ok, value_or_error)``; ``None`` stops it.
A preloaded module's ``warm_up()`` function, when it has one, runs once at start.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing.connection
import resource
import sys
from collections.abc import Sequence
from typing import Any

from verifiers.heap import settle_heap

READY = "ready"


def _worker_main(
    conn: multiprocessing.connection.Connection, memory_limit: int | None, preload: Sequence[str]
) -> None:
    """Loop of one worker process: receive (fn, args), send back an outcome."""
    if memory_limit:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    for name in preload:
        module = importlib.import_module(name)
        warm_up = getattr(module, "warm_up", None)
        if callable(warm_up):
            # Lazy initialisation (parsers, caches) happens here, not in the first task.
            with contextlib.suppress(Exception):
                warm_up()
    settle_heap()  # imported modules and warm caches are never collected again
    # Tell the pool we are ready: task deadlines start after start-up, so a
    # freshly spawned worker's imports never count against a task.
    conn.send(READY)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        fn, args = message
        try:
            reply: tuple[bool, Any] = (True, fn(*args))
        except MemoryError:
            reply = (False, "memory")
        except RecursionError:
            reply = (False, "exception:RecursionError")
        except Exception as exc:
            reply = (False, f"exception:{type(exc).__name__}: {str(exc)[:200]}")
        try:
            conn.send(reply)
        except Exception as exc:  # unpicklable result
            conn.send((False, f"exception:{type(exc).__name__}: {str(exc)[:200]}"))


def main(argv: list[str]) -> None:
    fd, memory_limit, *preload = argv
    conn = multiprocessing.connection.Connection(int(fd))
    _worker_main(conn, int(memory_limit) or None, preload)


if __name__ == "__main__":
    main(sys.argv[1:])
