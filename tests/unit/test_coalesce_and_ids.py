"""Request coalescing, buffered random ids and the fast path's small helpers."""

from __future__ import annotations

import asyncio
import os

import pytest

from service.coalesce import Coalescer
from service.fast_path import is_json, replay
from service.ids import random_hex


def test_concurrent_calls_share_one_batch_and_get_their_own_outputs() -> None:
    seen: list[list[int]] = []

    async def double(values: list[int]) -> list[int]:
        seen.append(list(values))
        await asyncio.sleep(0)
        return [2 * v for v in values]

    async def main() -> list[list[int]]:
        coalescer: Coalescer[int, int] = Coalescer(double)
        return await asyncio.gather(
            coalescer.run([1]), coalescer.run([2, 3]), coalescer.run([]), coalescer.run([4])
        )

    assert asyncio.run(main()) == [[2], [4, 6], [], [8]]
    assert seen == [[1, 2, 3, 4]]


def test_calls_in_later_iterations_form_new_batches() -> None:
    sizes: list[int] = []

    async def echo(values: list[int]) -> list[int]:
        sizes.append(len(values))
        return values

    async def main() -> None:
        coalescer: Coalescer[int, int] = Coalescer(echo)
        assert await coalescer.run([1]) == [1]
        assert await coalescer.run([2]) == [2]
        assert coalescer.batches == 2

    asyncio.run(main())
    assert sizes == [1, 1]


def test_an_error_reaches_every_caller_of_the_batch() -> None:
    async def fail(values: list[int]) -> list[int]:
        raise ValueError("boom")

    async def main() -> list[object]:
        coalescer: Coalescer[int, int] = Coalescer(fail)
        return await asyncio.gather(coalescer.run([1]), coalescer.run([2]), return_exceptions=True)

    outcomes = asyncio.run(main())
    assert all(isinstance(o, ValueError) and str(o) == "boom" for o in outcomes)


def test_a_wrong_length_answer_is_an_error_not_a_misassignment() -> None:
    async def short(values: list[int]) -> list[int]:
        return values[:-1]

    async def main() -> None:
        coalescer: Coalescer[int, int] = Coalescer(short)
        with pytest.raises(RuntimeError, match="returned 1 for 2"):
            await asyncio.gather(coalescer.run([1]), coalescer.run([2]))

    asyncio.run(main())


def test_a_cancelled_caller_does_not_break_the_others() -> None:
    async def main() -> list[int]:
        gate = asyncio.Event()

        async def slow(values: list[int]) -> list[int]:
            await gate.wait()
            return values

        coalescer: Coalescer[int, int] = Coalescer(slow)
        first = asyncio.ensure_future(coalescer.run([1]))
        second = asyncio.ensure_future(coalescer.run([2]))
        await asyncio.sleep(0.01)
        first.cancel()
        gate.set()
        with pytest.raises(asyncio.CancelledError):
            await first
        return await second

    assert asyncio.run(main()) == [2]


def test_random_ids_are_hex_of_the_right_length_and_do_not_repeat() -> None:
    ids = [random_hex(16) for _ in range(20_000)]  # several refills of the 4 KiB pool
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert len(set(ids)) == len(ids)
    assert len(random_hex(5000)) == 10_000  # larger than the pool: read directly


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    random_hex(16)  # the pool now holds bytes the child must not reuse
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.write(write, random_hex(16).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    assert len(child) == 32 and child != random_hex(16)


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        (b"application/json", True),
        (b"Application/JSON; charset=utf-8", True),
        (b"application/problem+json", True),
        (None, False),
        (b"text/plain", False),
        (b"application/x-www-form-urlencoded", False),
        (b"multipart/form-data; boundary=x", False),
    ],
)
def test_is_json_follows_fastapis_rule(content_type: bytes | None, expected: bool) -> None:
    assert is_json(content_type) is expected


def test_replay_yields_what_was_read_then_the_rest() -> None:
    rest = [{"type": "http.request", "body": b"c", "more_body": False}]

    async def receive() -> dict[str, object]:
        return rest.pop(0) if rest else {"type": "http.disconnect"}

    async def main() -> list[tuple[bytes, bool]]:
        replayed = replay([b"a", b"b"], False, receive)
        out = []
        for _ in range(3):
            message = await replayed()
            out.append((message["body"], message["more_body"]))
        assert (await replayed())["type"] == "http.disconnect"
        return out

    assert asyncio.run(main()) == [(b"a", True), (b"b", True), (b"c", False)]

    async def complete() -> tuple[bytes, bool]:
        message = await replay([b"whole"], True, receive)()
        return message["body"], message["more_body"]

    assert asyncio.run(complete()) == (b"whole", False)


def test_the_batch_does_not_run_in_the_first_callers_context() -> None:
    import contextvars

    who: contextvars.ContextVar[str | None] = contextvars.ContextVar("who", default=None)
    seen: list[str | None] = []

    async def record(values: list[int]) -> list[int]:
        seen.append(who.get())
        return values

    async def main() -> None:
        coalescer: Coalescer[int, int] = Coalescer(record)

        async def caller(name: str, value: int) -> list[int]:
            who.set(name)
            return await coalescer.run([value])

        assert await asyncio.gather(caller("A", 1), caller("B", 2)) == [[1], [2]]

    asyncio.run(main())
    assert seen == [None]


def test_calls_left_in_a_stopped_loop_do_not_block_another_loop() -> None:
    async def echo(values: list[int]) -> list[int]:
        return values

    coalescer: Coalescer[int, int] = Coalescer(echo)
    background: list[asyncio.Future[list[int]]] = []

    async def fire_and_forget() -> None:  # e.g. a background write when a test loop ends
        background.append(asyncio.ensure_future(coalescer.run([1])))

    first = asyncio.new_event_loop()
    first.run_until_complete(fire_and_forget())
    first.close()

    async def later() -> list[int]:
        return await asyncio.wait_for(coalescer.run([2]), timeout=2)

    assert asyncio.run(later()) == [2]


def test_isolated_failures_fail_only_the_caller_with_the_bad_input() -> None:
    async def strict(values: list[int]) -> list[int]:
        if any(v < 0 for v in values):
            raise ValueError("negative")
        return [v * 10 for v in values]

    async def main() -> list[object]:
        coalescer: Coalescer[int, int] = Coalescer(strict, isolate_failures=True)
        return await asyncio.gather(
            coalescer.run([1]), coalescer.run([-1]), coalescer.run([2, 3]), return_exceptions=True
        )

    good, bad, more = asyncio.run(main())
    assert good == [10] and more == [20, 30]
    assert isinstance(bad, ValueError)


def test_drain_waits_for_running_batches() -> None:
    finished: list[int] = []

    async def slow(values: list[int]) -> list[int]:
        await asyncio.sleep(0.05)
        finished.extend(values)
        return values

    async def main() -> None:
        coalescer: Coalescer[int, int] = Coalescer(slow)
        pending = asyncio.ensure_future(coalescer.run([7]))
        await asyncio.sleep(0)  # the call is queued
        await asyncio.sleep(0)  # and its batch started
        await coalescer.drain()
        assert finished == [7]
        assert await pending == [7]

    asyncio.run(main())
