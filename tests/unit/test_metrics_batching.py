"""`service.metrics.add`: increments of one event-loop iteration are made together."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Counter, Gauge

from service import metrics


def _counter() -> Counter:
    return Counter("test_batched_total", "Test counter.", registry=CollectorRegistry())


def test_increments_of_one_iteration_are_made_together_at_its_end() -> None:
    counter = _counter()
    writes: list[float] = []
    real_inc = counter.inc

    def inc(amount: float = 1) -> None:
        writes.append(amount)
        real_inc(amount)

    counter.inc = inc  # type: ignore[method-assign,assignment]

    async def main() -> tuple[float, float]:
        for _ in range(5):
            metrics.add(counter)
        metrics.add(counter, 2)
        during = counter._value.get()
        await asyncio.sleep(0)
        return during, counter._value.get()

    during, after = asyncio.run(main())
    assert (during, after) == (0, 7)
    assert writes == [7]  # one write for the iteration


def test_gauge_increments_and_decrements_of_one_iteration_cancel_out() -> None:
    gauge = Gauge("test_batched_inflight", "Test gauge.", registry=CollectorRegistry())

    async def main() -> list[float]:
        seen = []
        metrics.add(gauge, 3)
        await asyncio.sleep(0)
        seen.append(gauge._value.get())
        metrics.add(gauge, 2)
        metrics.add(gauge, -2)
        await asyncio.sleep(0)
        seen.append(gauge._value.get())
        metrics.add(gauge, -3)
        await asyncio.sleep(0)
        seen.append(gauge._value.get())
        return seen

    assert asyncio.run(main()) == [3, 3, 0]


def test_outside_a_loop_increments_are_made_at_once_and_render_makes_waiting_ones() -> None:
    counter = _counter()
    metrics.add(counter, 4)
    assert counter._value.get() == 4

    async def main() -> float:
        metrics.add(counter, 1)
        metrics.render()  # a scrape in this iteration sees it
        return counter._value.get()

    assert asyncio.run(main()) == 5


def test_increments_left_by_a_stopped_loop_are_made_by_the_next_one() -> None:
    counter = _counter()
    loop = asyncio.new_event_loop()

    async def only_add() -> None:
        metrics.add(counter, 1)

    loop.run_until_complete(only_add())
    loop.close()  # its end-of-iteration callback may never have run

    async def main() -> float:
        metrics.add(counter, 1)
        await asyncio.sleep(0)
        return counter._value.get()

    assert asyncio.run(main()) == 2


def test_a_loop_in_another_thread_increments_directly_while_one_gathers() -> None:
    import threading

    counter = _counter()
    other: list[float] = []

    def in_thread() -> None:
        async def main() -> None:
            metrics.add(counter, 10)
            other.append(counter._value.get())

        asyncio.run(main())

    async def main() -> float:
        metrics.add(counter, 1)  # this loop gathers
        thread = threading.Thread(target=in_thread)
        thread.start()
        thread.join()
        await asyncio.sleep(0)
        return counter._value.get()

    assert asyncio.run(main()) == 11
    assert other == [10]  # made at once, not left in this loop's batch
