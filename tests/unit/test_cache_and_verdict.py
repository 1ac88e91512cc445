"""The in-process LRU, single-flight, and the Verdict type."""

from __future__ import annotations

import asyncio
import gc
import time

import pytest

from service.cache import LRU, ExactCache, VerdictCache
from service.estimator import StoredVerdict, _LocalVerdicts
from verifiers.verdict import Reason, Stage, Verdict


def test_lru_evicts_least_recently_used() -> None:
    lru = LRU(2, ttl_s=60)
    a, b, c = (Verdict.accept(Stage.MATH, Reason.EQUAL, extracted_answer=x) for x in "abc")
    lru.put("a", a)
    lru.put("b", b)
    assert lru.get("a") == a  # a is now the most recent
    lru.put("c", c)
    assert lru.get("b") is None
    assert lru.get("a") == a and lru.get("c") == c


def test_lru_expires_entries() -> None:
    lru = LRU(10, ttl_s=0.05)
    lru.put("k", Verdict.reject(Stage.MATH, Reason.NOT_EQUAL))
    assert lru.get("k") is not None
    time.sleep(0.1)
    assert lru.get("k") is None


def test_verdict_round_trip_and_cacheability() -> None:
    v = Verdict.accept(
        Stage.MATH, Reason.EQUAL, extracted_answer="1/2", flags=("x",), detail={"m": 1}
    )
    assert Verdict.from_dict(v.to_dict()) == v
    assert v.cacheable
    assert not Verdict.abstain(Stage.MATH, Reason.TIMEOUT).cacheable
    assert not Verdict.abstain(Stage.JUDGE, Reason.JUDGE_UNAVAILABLE).cacheable
    assert not Verdict.abstain(Stage.CODE, Reason.SANDBOX_ERROR).cacheable
    assert v.with_flags("x", "y").flags == ("x", "y")


async def test_uncacheable_verdicts_are_not_stored() -> None:
    cache = VerdictCache()
    await cache.start()
    await cache.put_many(
        {
            "t": Verdict.abstain(Stage.MATH, Reason.TIMEOUT),
            "e": Verdict.accept(Stage.MATH, Reason.EQUAL),
        }
    )
    found = await cache.get_many(["t", "e"])
    assert list(found) == ["e"]


async def test_single_flight_computes_once() -> None:
    cache = VerdictCache()
    calls = 0

    async def compute() -> Verdict:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return Verdict.accept(Stage.MATH, Reason.EQUAL)

    results = await asyncio.gather(*(cache.single_flight("k", compute) for _ in range(10)))
    assert calls == 1
    assert sum(1 for _, shared in results if shared) == 9


async def test_single_flight_propagates_errors_to_all_waiters() -> None:
    cache = VerdictCache()

    async def boom() -> Verdict:
        await asyncio.sleep(0.01)
        raise RuntimeError("x")

    results = await asyncio.gather(
        *(cache.single_flight("k", boom) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, RuntimeError) for r in results)
    with pytest.raises(RuntimeError):
        await cache.single_flight("k", boom)  # not stuck after a failure


def _verdicts() -> list[Verdict]:
    return [
        Verdict(
            True,
            1.0,
            Stage.MATH,
            Reason.EQUAL,
            "\\frac{1}{2}",
            1.0,
            ("injection",),
            {"method": "num", "hard_negative": False},
        ),
        Verdict(False, 0.0, Stage.GUARD, "guard:empty", detail={"guard": "empty"}),
        Verdict(None, 0.0, Stage.JUDGE, Reason.JUDGE_OFF, confidence=None),
    ]


def test_exact_cache_gives_back_equal_verdicts() -> None:
    cache = ExactCache(max_entries=10)
    for n, verdict in enumerate(_verdicts()):
        cache.put(f"k{n}", verdict)
    assert [cache.get(f"k{n}") for n in range(3)] == _verdicts()


def test_long_lived_cache_entries_leave_the_garbage_collectors_view() -> None:
    # A full collection visits every tracked object: entries that stayed
    # tracked made its pauses grow with the caches (60 ms at 80,000 items).
    cache = ExactCache(max_entries=100)
    for n, verdict in enumerate(_verdicts()):
        cache.put(f"k{n}", verdict)
    records = _LocalVerdicts(max_entries=100, ttl_s=60)
    records.put_many({"id-1": StoredVerdict("math", "", True)})
    records.mark_labelled("id-1")
    for _ in range(8):  # nested tuples are untracked at most one level per collection
        gc.collect()
    rows = [*cache._lru._data.values(), *records._data.values()]
    assert rows and not any(gc.is_tracked(row) for row in rows)
    assert records.get("id-1") == (StoredVerdict("math", "", True), True)
