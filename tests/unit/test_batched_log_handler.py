"""`service.logs.BatchedStreamHandler`: one write per event-loop iteration,
nothing held while idle, warnings and loop-less threads written at once."""

from __future__ import annotations

import asyncio
import io
import logging
import threading
from collections.abc import Iterator

import pytest

from service.logs import BatchedStreamHandler


class _Stream(io.StringIO):
    """A text stream that also records each `write` call."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, _Stream]]:
    stream = _Stream()
    handler = BatchedStreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("rlvr_verifier.test_batched")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)


def test_lines_of_one_loop_iteration_are_written_together(
    logged: tuple[logging.Logger, _Stream],
) -> None:
    logger, stream = logged

    async def main() -> tuple[str, list[str]]:
        for n in range(3):
            logger.info("request %d", n)
        before = stream.getvalue()  # nothing yet: the loop has not moved on
        await asyncio.sleep(0)
        return before, list(stream.writes)

    before, writes = asyncio.run(main())
    assert before == ""
    assert writes == ["INFO request 0\nINFO request 1\nINFO request 2\n"]


def test_a_warning_is_written_at_once_after_what_was_gathered(
    logged: tuple[logging.Logger, _Stream],
) -> None:
    logger, stream = logged

    async def main() -> str:
        logger.info("first")
        logger.warning("second")
        return stream.getvalue()

    assert asyncio.run(main()) == "INFO first\nWARNING second\n"


def test_without_a_running_loop_lines_are_written_at_once(
    logged: tuple[logging.Logger, _Stream],
) -> None:
    logger, stream = logged
    logger.info("from main")
    thread = threading.Thread(target=logger.info, args=("from a thread",))
    thread.start()
    thread.join()
    assert stream.getvalue() == "INFO from main\nINFO from a thread\n"


def test_flush_writes_what_a_stopped_loop_left(logged: tuple[logging.Logger, _Stream]) -> None:
    logger, stream = logged
    loop = asyncio.new_event_loop()

    async def log_only() -> None:
        logger.info("late")

    task = loop.create_task(log_only())
    loop.run_until_complete(asyncio.wait([task]))  # stops before the flush callback runs
    loop.close()
    logging.getLogger("rlvr_verifier.test_batched").handlers[0].flush()  # as logging does at exit
    assert stream.getvalue() == "INFO late\n"
