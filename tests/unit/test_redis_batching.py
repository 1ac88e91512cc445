"""Concurrent requests share Redis round trips (cache reads and writes, estimator flushes).

Against the real Redis server; the round trips are counted with Redis's own
command statistics, so the test sees what the server saw.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import redis

from service.cache import VerdictCache
from service.estimator import ErrorRateEstimator, StoredVerdict
from service.settings import Settings
from tests.conftest import DEFAULT_REDIS
from verifiers.verdict import Verdict


def _calls(client: redis.Redis, command: str) -> int:
    stats: dict[str, Any] = client.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


@pytest.fixture
def sync_redis() -> redis.Redis:
    client = redis.Redis.from_url(DEFAULT_REDIS)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip("no Redis server")
    return client


def test_concurrent_cache_reads_and_writes_share_round_trips(sync_redis: redis.Redis) -> None:
    prefix = f"test-batching-{uuid.uuid4().hex}:"

    async def main() -> tuple[int, int, list[dict[str, Verdict]]]:
        cache = VerdictCache(redis_url=DEFAULT_REDIS, prefix=prefix, max_entries=0)
        await cache.start()
        try:
            verdicts = {f"k{i}": Verdict.accept("math", "equal") for i in range(20)}
            sets_before = _calls(sync_redis, "set")
            await asyncio.gather(*(cache.put_many({k: v}) for k, v in verdicts.items()))
            sets = _calls(sync_redis, "set") - sets_before
            mgets_before = _calls(sync_redis, "mget")
            found = await asyncio.gather(*(cache.get_many([k]) for k in verdicts))
            mgets = _calls(sync_redis, "mget") - mgets_before
            return sets, mgets, found
        finally:
            await cache.close()

    try:
        sets, mgets, found = asyncio.run(main())
    finally:
        for key in sync_redis.scan_iter(prefix + "*"):
            sync_redis.delete(key)
    assert sets == 20  # every value written ...
    assert mgets == 1  # ... and the 20 concurrent reads were one MGET
    assert all(len(f) == 1 and next(iter(f.values())).correct is True for f in found)


def test_concurrent_estimator_flushes_share_one_pipeline(sync_redis: redis.Redis) -> None:
    prefix = f"test-batching-{uuid.uuid4().hex}:"
    settings = Settings(redis_url=DEFAULT_REDIS, redis_prefix=prefix)

    async def main() -> tuple[int, str]:
        estimator = ErrorRateEstimator(settings)
        await estimator.start()
        try:
            before = _calls(sync_redis, "hset")
            records = [{f"id-{i}": StoredVerdict("math", "", True)} for i in range(15)]
            await asyncio.gather(*(estimator._flush(r) for r in records))
            hsets = _calls(sync_redis, "hset") - before
            return hsets, estimator._verdict_key(estimator._record_bucket())
        finally:
            await estimator.close()

    try:
        hsets, key = asyncio.run(main())
        stored = sync_redis.hmget(key, [f"id-{i}" for i in range(15)])
    finally:
        for redis_key in sync_redis.scan_iter(prefix + "*"):
            sync_redis.delete(redis_key)
    assert hsets == 1  # 15 concurrent flushes, one pipeline
    assert all(value is not None for value in stored)  # and every record is in Redis
