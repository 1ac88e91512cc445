"""Verdict cache: an in-process LRU in front of Redis, with single-flight.

Redis is optional (empty URL = in-process only). When it is configured but
down, the cache degrades to the LRU, logs once, reports ``down`` (metric and
`/readyz`), and retries every `retry_s` seconds until Redis answers again.
Timeouts and infrastructure errors are never cached (`Verdict.cacheable`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, TypeVar

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from service import metrics
from service.coalesce import Coalescer
from verifiers.cascade import PlanPolicy, VerifyRequest
from verifiers.guards import GUARDS_VERSION
from verifiers.verdict import VERIFIER_VERSION, Verdict

V = TypeVar("V")

log = logging.getLogger("rlvr_verifier.cache")


class LRU(Generic[V]):
    """A size- and age-bounded mapping (not thread-safe; used from one event loop)."""

    def __init__(self, max_entries: int, ttl_s: float) -> None:
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._data: OrderedDict[str, tuple[float, V]] = OrderedDict()

    def get(self, key: str) -> V | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        expires, verdict = entry
        if expires < time.monotonic():
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return verdict

    def put(self, key: str, verdict: V) -> None:
        if self.max_entries <= 0:
            return
        self._data[key] = (time.monotonic() + self.ttl_s, verdict)
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


#: How the caches hold a verdict: its fields, the detail dict as a tuple of
#: pairs. Tuples of strings and numbers are not tracked by the garbage
#: collector (a tuple holding a dict always is), objects are: holding them, a
#: full collection rescanned every entry - about 60 ms per 80,000 cached items,
#: a pause for every request of the moment.
_VerdictRow = tuple[
    bool | None, float, str, str, str | None, float | None, tuple[str, ...], tuple[Any, ...]
]


def _verdict_row(v: Verdict) -> _VerdictRow:
    detail = tuple(v.detail.items())
    return (
        v.correct,
        v.reward,
        v.stage,
        v.reason,
        v.extracted_answer,
        v.confidence,
        v.flags,
        detail,
    )


def _verdict_of(row: _VerdictRow) -> Verdict:
    correct, reward, stage, reason, answer, confidence, flags, detail = row
    return Verdict(correct, reward, stage, reason, answer, confidence, flags, dict(detail))


class ExactCache:
    """In-process cache of final verdicts keyed by the whole request.

    Sits in front of planning: a request seen before (same response, reference,
    question, tests and options, same cascade policy) skips guards, extraction
    and the answer-level cache entirely. Its keys hash the full text, so it
    holds only what the process itself computed; the answer-level
    `VerdictCache` (shared through Redis) stays the cache that pays off across
    different responses with the same answer.
    """

    def __init__(self, *, max_entries: int = 200_000, ttl_s: float = 7 * 24 * 3600) -> None:
        self._lru: LRU[_VerdictRow] = LRU(max_entries, ttl_s)

    @staticmethod
    def key(request: VerifyRequest, policy: PlanPolicy) -> str:
        parts = (
            VERIFIER_VERSION,
            GUARDS_VERSION,
            policy.has_judge,
            policy.judge_version,
            policy.default_judge_mode,
            request.task,
            request.response,
            request.reference,
            request.question,
            request.tests,
            request.language,
            request.judge,
            request.tolerance,
            request.timeout_s,
            request.all_or_nothing,
            request.domain,
        )
        try:
            blob = orjson.dumps(
                parts, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str
            )
        except (orjson.JSONEncodeError, TypeError):  # e.g. integers beyond 64 bits in tests
            blob = json.dumps(parts, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()  # with SHA extensions, faster than blake2b

    def get(self, key: str) -> Verdict | None:
        row = self._lru.get(key)
        return None if row is None else _verdict_of(row)

    def put(self, key: str, verdict: Verdict) -> None:
        if verdict.cacheable:
            self._lru.put(key, _verdict_row(verdict))

    def __len__(self) -> int:
        return len(self._lru)


class VerdictCache:
    """Two-level verdict cache keyed by `verifiers.cascade.Plan.key`."""

    def __init__(
        self,
        *,
        max_entries: int = 200_000,
        ttl_s: int = 7 * 24 * 3600,
        redis_url: str = "",
        prefix: str = "rlvr:",
        retry_s: float = 5.0,
    ) -> None:
        self.lru: LRU[_VerdictRow] = LRU(max_entries, ttl_s)
        self.ttl_s = ttl_s
        self.redis_url = redis_url
        self.prefix = prefix + "verdict:"
        self.retry_s = retry_s
        self._redis: aioredis.Redis | None = None
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._last_error = ""
        self._inflight: dict[str, asyncio.Future[Verdict]] = {}
        # Concurrent requests' Redis reads and writes share round trips.
        self._reader: Coalescer[str, bytes | None] = Coalescer(self._mget_together)
        self._writer: Coalescer[tuple[str, bytes], None] = Coalescer(self._set_together)

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if not self.redis_url:
            metrics.CACHE_BACKEND_UP.set(1)
            return
        self._redis = aioredis.Redis.from_url(
            self.redis_url,
            socket_timeout=1.0,
            socket_connect_timeout=1.0,
            health_check_interval=10,
        )
        try:
            await self._redis.ping()
            self._mark_up()
        except (RedisError, OSError) as exc:
            self._mark_down("connect", exc)

    async def close(self) -> None:
        await self._reader.drain()
        await self._writer.drain()
        if self._redis is not None:
            await self._redis.aclose()

    # ------------------------------------------------------------ state
    @property
    def state(self) -> str:
        """``disabled`` (no Redis configured), ``up`` or ``down``."""
        if not self.redis_url:
            return "disabled"
        return "down" if self._down_since is not None else "up"

    async def refresh(self) -> str:
        """Ping Redis if it is marked down and the retry interval has passed."""
        client = self._redis_usable()
        if client is not None and self._down_since is not None:
            try:
                await client.ping()
                self._mark_up()
            except (RedisError, OSError) as exc:
                self._mark_down("ping", exc)
        return self.state

    def describe(self) -> dict[str, object]:
        info: dict[str, object] = {"backend": "redis" if self.redis_url else "memory"}
        info["lru_entries"] = len(self.lru)
        if self._down_since is not None:
            info["down_for_s"] = round(time.monotonic() - self._down_since, 1)
            info["last_error"] = self._last_error
        return info

    def _mark_down(self, operation: str, exc: BaseException) -> None:
        metrics.CACHE_ERRORS.labels(operation).inc()
        self._retry_at = time.monotonic() + self.retry_s
        self._last_error = f"{type(exc).__name__}: {exc}"[:200]
        if self._down_since is None:
            self._down_since = time.monotonic()
            metrics.CACHE_BACKEND_UP.set(0)
            log.warning(
                "redis unavailable, serving from the in-process cache: %s", self._last_error
            )

    def _mark_up(self) -> None:
        if self._down_since is not None:
            log.warning("redis is back after %.1f s", time.monotonic() - self._down_since)
        self._down_since = None
        metrics.CACHE_BACKEND_UP.set(1)

    def _redis_usable(self) -> aioredis.Redis | None:
        if self._redis is None:
            return None
        if self._down_since is not None and time.monotonic() < self._retry_at:
            return None
        return self._redis

    # ------------------------------------------------------------ get / put
    async def get_many(self, keys: Iterable[str]) -> dict[str, Verdict]:
        """Cached verdicts for the keys that have one (LRU, then one Redis MGET)."""
        found: dict[str, Verdict] = {}
        missing: list[str] = []
        for key in dict.fromkeys(keys):
            row = self.lru.get(key)
            if row is not None:
                found[key] = _verdict_of(row)
            else:
                missing.append(key)
        if found:
            metrics.add(metrics.child(metrics.CACHE_REQUESTS, "memory", "hit"), len(found))
        if missing:
            metrics.add(metrics.child(metrics.CACHE_REQUESTS, "memory", "miss"), len(missing))
        client = self._redis_usable()
        if not missing or client is None:
            return found
        try:
            values = await self._reader.run([self.prefix + k for k in missing])
            self._mark_up()
        except (RedisError, OSError) as exc:
            self._mark_down("get", exc)
            return found
        hits = 0
        for key, raw in zip(missing, values, strict=True):
            if raw is None:
                continue
            try:
                verdict = Verdict.from_dict(orjson.loads(raw))
            except (ValueError, KeyError, TypeError):
                continue
            found[key] = verdict
            self.lru.put(key, _verdict_row(verdict))
            hits += 1
        metrics.CACHE_REQUESTS.labels("redis", "hit").inc(hits)
        metrics.CACHE_REQUESTS.labels("redis", "miss").inc(len(missing) - hits)
        return found

    async def put_many(self, entries: dict[str, Verdict]) -> None:
        """Store cacheable verdicts (LRU, then one pipelined Redis write)."""
        storable = {k: v for k, v in entries.items() if v.cacheable}
        for key, verdict in storable.items():
            self.lru.put(key, _verdict_row(verdict))
        client = self._redis_usable()
        if not storable or client is None:
            return
        try:
            payloads = [(self.prefix + k, orjson.dumps(v.to_dict())) for k, v in storable.items()]
            await self._writer.run(payloads)
            self._mark_up()
        except (RedisError, OSError) as exc:
            self._mark_down("set", exc)

    async def _mget_together(self, keys: list[str]) -> list[bytes | None]:
        """One MGET for the Redis reads of concurrent requests."""
        if self._redis is None:
            raise RedisError("the cache has no Redis client")
        values = await self._redis.mget(keys) if keys else []
        return [v.encode() if isinstance(v, str) else v for v in values]

    async def _set_together(self, entries: list[tuple[str, bytes]]) -> list[None]:
        """One pipeline for the Redis writes of concurrent requests."""
        if self._redis is None:
            raise RedisError("the cache has no Redis client")
        async with self._redis.pipeline(transaction=False) as pipe:
            for key, value in entries:
                pipe.set(key, value, ex=self.ttl_s)
            await pipe.execute()
        return [None] * len(entries)

    async def single_flight(
        self, key: str, compute: Callable[[], Awaitable[Verdict]]
    ) -> tuple[Verdict, bool]:
        """Run `compute` once per key at a time; concurrent callers share it.

        Returns (verdict, shared) where `shared` says another caller computed it.
        """
        running = self._inflight.get(key)
        if running is not None:
            return await asyncio.shield(running), True
        future: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            verdict = await compute()
            future.set_result(verdict)
            return verdict, False
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved
            raise
        finally:
            del self._inflight[key]
