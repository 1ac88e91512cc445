"""Large batch jobs, split into chunks that every replica's workers drain.

With Redis, chunks travel on a Stream with a consumer group (at-least-once):
a worker reads a chunk (``XREADGROUP``), verifies it, stores the chunk's results
with ``HSETNX`` (so a re-delivered chunk is idempotent) and acknowledges it
(``XACK``). Chunks left pending by a replica that died are taken over by the
others with ``XAUTOCLAIM`` once idle for `claim_idle_s`. A job finishes even
when the replica that accepted it is gone. Without Redis (the embedded
default) the same happens in-process.

A chunk whose results cannot be stored (Redis out of memory, unreachable)
is not acknowledged: it stays pending and is delivered again after
`claim_idle_s`. After `MAX_DELIVERIES` deliveries the job is marked
``failed`` with an ``error`` saying why (its partial results are dropped to
make room for that), never left silently short of items. `/readyz` and
``verifier_job_store_up`` report the store's state meanwhile.

Every key expires after the job TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from service import metrics
from service.schemas import VerifyItem, VerifyResult

log = logging.getLogger("rlvr_verifier.jobs")

VerifyChunk = Callable[[list[VerifyItem]], Awaitable[list[VerifyResult]]]

QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED = (
    "queued",
    "running",
    "completed",
    "failed",
    "cancelled",
)
FINAL = frozenset({COMPLETED, FAILED, CANCELLED})


@dataclass(slots=True)
class JobInfo:
    """Status and progress of one job."""

    id: str
    status: str
    total: int
    done: int
    chunks: int
    chunks_done: int
    created_at: float
    finished_at: float | None = None
    error: str | None = None
    correct: int = 0
    abstained: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "total": self.total,
            "done": self.done,
            "chunks": self.chunks,
            "chunks_done": self.chunks_done,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "error": self.error,
            "correct": self.correct,
            "abstained": self.abstained,
        }


#: Deliveries of one chunk (first one included) before its job is marked failed.
MAX_DELIVERIES = 5


class JobBackend(Protocol):
    async def start(self, verify: VerifyChunk) -> None: ...
    def describe(self) -> tuple[str, dict[str, Any]]: ...
    async def close(self) -> None: ...
    async def submit(self, items: list[dict[str, Any]], idempotency_key: str | None) -> JobInfo: ...
    async def get(self, job_id: str) -> JobInfo | None: ...
    async def cancel(self, job_id: str) -> JobInfo | None: ...
    def results(self, job_id: str) -> AsyncIterator[bytes]: ...
    def queue_depth(self) -> int: ...


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _chunks(items: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [items[i : i + size] for i in range(0, len(items), size)] or [[]]


def _summarise(results: list[VerifyResult]) -> tuple[int, int]:
    correct = sum(1 for r in results if r.correct is True)
    abstained = sum(1 for r in results if r.correct is None)
    return correct, abstained


def _ndjson(results: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in results)


# ---------------------------------------------------------------- in-process


@dataclass
class _MemoryJob:
    info: JobInfo
    chunks: list[list[dict[str, Any]]]
    results: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    expires_at: float = 0.0


class MemoryJobs:
    """Jobs run by this process's workers (no Redis configured)."""

    def __init__(self, *, chunk_size: int, workers: int, ttl_s: int) -> None:
        self.chunk_size = chunk_size
        self.worker_count = workers
        self.ttl_s = ttl_s
        self._jobs: dict[str, _MemoryJob] = {}
        self._idempotency: dict[str, str] = {}
        self._queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, verify: VerifyChunk) -> None:
        self._verify = verify
        metrics.JOB_STORE_UP.set(1)
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self.worker_count)]

    async def close(self) -> None:
        await _stop(self._tasks)

    def _expire(self) -> None:
        now = time.time()
        for job_id in [j for j, job in self._jobs.items() if job.expires_at < now]:
            del self._jobs[job_id]
        self._idempotency = {k: v for k, v in self._idempotency.items() if v in self._jobs}

    async def submit(self, items: list[dict[str, Any]], idempotency_key: str | None) -> JobInfo:
        self._expire()
        if idempotency_key and idempotency_key in self._idempotency:
            return self._jobs[self._idempotency[idempotency_key]].info
        job_id = uuid.uuid4().hex
        chunks = _chunks(items, self.chunk_size)
        info = JobInfo(job_id, QUEUED, len(items), 0, len(chunks), 0, time.time())
        self._jobs[job_id] = _MemoryJob(info, chunks, expires_at=time.time() + self.ttl_s)
        if idempotency_key:
            self._idempotency[idempotency_key] = job_id
        for index in range(len(chunks)):
            self._queue.put_nowait((job_id, index))
        return info

    async def get(self, job_id: str) -> JobInfo | None:
        self._expire()
        job = self._jobs.get(job_id)
        return job.info if job else None

    async def cancel(self, job_id: str) -> JobInfo | None:
        job = self._jobs.get(job_id)
        if job is None:
            return None
        if job.info.status not in FINAL:
            job.info.status = CANCELLED
            job.info.finished_at = time.time()
        return job.info

    async def results(self, job_id: str) -> AsyncIterator[bytes]:
        job = self._jobs.get(job_id)
        if job is None:
            return
        for index in range(job.info.chunks):
            yield _ndjson(job.results.get(index, []))

    def queue_depth(self) -> int:
        return self._queue.qsize()

    def describe(self) -> tuple[str, dict[str, Any]]:
        return "up", {"backend": "memory", "queue_depth": self.queue_depth()}

    async def _work(self) -> None:
        while True:
            job_id, index = await self._queue.get()
            job = self._jobs.get(job_id)
            if job is None or job.info.status in FINAL or index in job.results:
                continue
            if job.info.status == QUEUED:
                job.info.status = RUNNING
            try:
                items = [VerifyItem.model_validate(i) for i in job.chunks[index]]
                results = await self._verify(items)
            except Exception as exc:  # a bug must not kill the worker or hang the job
                log.exception("job worker: unexpected error")
                job.info.status = FAILED
                job.info.error = f"{type(exc).__name__}: {exc}"[:300]
                job.info.finished_at = time.time()
                continue
            if job.info.status == CANCELLED:
                continue
            job.results[index] = [r.model_dump() for r in results]
            correct, abstained = _summarise(results)
            job.info.done += len(results)
            job.info.chunks_done += 1
            job.info.correct += correct
            job.info.abstained += abstained
            metrics.JOB_ITEMS.inc(len(results))
            if job.info.chunks_done == job.info.chunks:
                job.info.status = COMPLETED
                job.info.finished_at = time.time()


# ---------------------------------------------------------------- Redis

# Status changes that must not overwrite a cancellation (atomic in Redis).
_SET_RUNNING = """
if redis.call('HGET', KEYS[1], 'status') == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'running')
end
"""
_SET_COMPLETED = """
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'queued' or status == 'running' then
  redis.call('HSET', KEYS[1], 'status', 'completed', 'finished_at', ARGV[1])
end
"""
# Fail a job that is still running: its partial results and chunks go first
# (room for the status even when Redis is out of memory); 1 when it was failed.
_SET_FAILED = """
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'queued' or status == 'running' then
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('HSET', KEYS[1], 'status', 'failed', 'error', ARGV[1], 'finished_at', ARGV[2])
  return 1
end
return 0
"""


class RedisJobs:
    """Jobs on a Redis Stream shared by every replica."""

    GROUP = "verifiers"

    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        chunk_size: int,
        workers: int,
        ttl_s: int,
        claim_idle_s: float,
    ) -> None:
        self.url = url
        self.prefix = prefix + "job:"
        self.stream = prefix + "jobs:stream"
        self.chunk_size = chunk_size
        self.worker_count = workers
        self.ttl_s = ttl_s
        self.claim_idle_ms = int(claim_idle_s * 1000)
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._redis = aioredis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        self._tasks: list[asyncio.Task[None]] = []
        self._depth = 0
        self._down = False  # log an outage once, not once per worker per retry
        self._store_error: str | None = None  # the last store failure, until a store works

    def _key(self, job_id: str, *parts: str) -> str:
        return ":".join((self.prefix + job_id, *parts))

    async def start(self, verify: VerifyChunk) -> None:
        self._verify = verify
        metrics.JOB_STORE_UP.set(1)
        with contextlib.suppress(ResponseError, RedisError, OSError):
            await self._redis.xgroup_create(self.stream, self.GROUP, id="0", mkstream=True)
        self._tasks = [
            asyncio.create_task(self._work(f"{self.consumer}-{k}"))
            for k in range(self.worker_count)
        ]
        self._tasks.append(asyncio.create_task(self._watch_depth()))

    async def close(self) -> None:
        await _stop(self._tasks)
        await self._redis.aclose()

    async def submit(self, items: list[dict[str, Any]], idempotency_key: str | None) -> JobInfo:
        job_id = uuid.uuid4().hex
        if idempotency_key:
            claimed = await self._redis.set(
                self.prefix + "idem:" + idempotency_key, job_id, nx=True, ex=self.ttl_s
            )
            if not claimed:
                existing = await self._redis.get(self.prefix + "idem:" + idempotency_key)
                if existing is not None:
                    info = await self.get(_text(existing))
                    if info is not None:
                        return info
        chunks = _chunks(items, self.chunk_size)
        now = time.time()
        info = JobInfo(job_id, QUEUED, len(items), 0, len(chunks), 0, now)
        meta: dict[bytes | bytearray | memoryview[int] | str | int | float, str | int | float] = {
            "status": QUEUED,
            "total": len(items),
            "done": 0,
            "chunks": len(chunks),
            "chunks_done": 0,
            "created_at": now,
            "correct": 0,
            "abstained": 0,
        }
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._key(job_id, "meta"), mapping=meta)
            pipe.expire(self._key(job_id, "meta"), self.ttl_s)
            pipe.hset(
                self._key(job_id, "chunks"),
                mapping={str(i): orjson.dumps(chunk) for i, chunk in enumerate(chunks)},
            )
            pipe.expire(self._key(job_id, "chunks"), self.ttl_s)
            for index in range(len(chunks)):
                pipe.xadd(self.stream, {"job": job_id, "chunk": str(index)})
            await pipe.execute()
        return info

    async def get(self, job_id: str) -> JobInfo | None:
        raw = await self._redis.hgetall(self._key(job_id, "meta"))
        if not raw:
            return None
        meta = {_text(k): _text(v) for k, v in raw.items()}
        finished = meta.get("finished_at")
        return JobInfo(
            id=job_id,
            status=meta["status"],
            total=int(meta["total"]),
            done=int(meta["done"]),
            chunks=int(meta["chunks"]),
            chunks_done=int(meta["chunks_done"]),
            created_at=float(meta["created_at"]),
            finished_at=float(finished) if finished else None,
            error=meta.get("error"),
            correct=int(meta.get("correct", 0)),
            abstained=int(meta.get("abstained", 0)),
        )

    async def cancel(self, job_id: str) -> JobInfo | None:
        info = await self.get(job_id)
        if info is None:
            return None
        if info.status not in FINAL:
            await self._redis.hset(
                self._key(job_id, "meta"), mapping={"status": CANCELLED, "finished_at": time.time()}
            )
            info.status = CANCELLED
        return info

    async def results(self, job_id: str) -> AsyncIterator[bytes]:
        info = await self.get(job_id)
        if info is None:
            return
        for index in range(info.chunks):
            raw = await self._redis.hget(self._key(job_id, "results"), str(index))
            yield _ndjson(orjson.loads(raw)) if raw else b""

    def queue_depth(self) -> int:
        return self._depth

    def describe(self) -> tuple[str, dict[str, Any]]:
        detail: dict[str, Any] = {"backend": "redis", "queue_depth": self._depth}
        if self._store_error is not None:
            detail["last_error"] = self._store_error
        down = self._down or self._store_error is not None
        return ("down" if down else "up"), detail

    def _store_failed(self, operation: str, exc: BaseException) -> None:
        metrics.JOB_STORE_ERRORS.labels(operation).inc()
        metrics.JOB_STORE_UP.set(0)
        message = f"{type(exc).__name__}: {exc}"[:300]
        if self._store_error is None:
            log.warning("job store: %s failed, chunk left for redelivery: %s", operation, message)
        self._store_error = message

    def _store_ok(self) -> None:
        if self._store_error is not None:
            log.warning("job store: writes work again")
        self._store_error = None
        metrics.JOB_STORE_UP.set(0 if self._down else 1)

    async def _watch_depth(self) -> None:
        while True:
            with contextlib.suppress(RedisError, OSError, ResponseError):
                groups = await self._redis.xinfo_groups(self.stream)
                for group in groups:
                    if group.get("name") in (self.GROUP, self.GROUP.encode()):
                        lag = group.get("lag") or 0
                        self._depth = int(lag) + int(group.get("pending") or 0)
                metrics.JOB_QUEUE.set(self._depth)
            await asyncio.sleep(1.0)

    async def _next(self, consumer: str) -> tuple[bytes, dict[bytes, bytes], int] | None:
        """(id, fields, deliveries so far) of a chunk: one left pending (by a dead
        consumer, or because its results could not be stored) first, else a new one."""
        claimed: Any = await self._redis.xautoclaim(
            self.stream, self.GROUP, consumer, self.claim_idle_ms, start_id="0-0", count=1
        )
        entries = claimed[1] if claimed else []
        entries = [e for e in entries if e and e[1]]
        if entries:
            message_id = entries[0][0]
            pending: Any = await self._redis.xpending_range(
                self.stream, self.GROUP, min=message_id, max=message_id, count=1
            )
            deliveries = int(pending[0]["times_delivered"]) if pending else 1
            return message_id, entries[0][1], deliveries
        read: Any = await self._redis.xreadgroup(
            self.GROUP, consumer, {self.stream: ">"}, count=1, block=1000
        )
        if not read:
            return None
        _, messages = read[0]
        return (messages[0][0], messages[0][1], 1) if messages else None

    async def _handle(self, message_id: bytes, fields: dict[bytes, bytes], deliveries: int) -> None:
        """Process one chunk; acknowledge it only once its results are stored
        (or its job is finished one way or another)."""
        job_id, index = fields[b"job"].decode(), int(fields[b"chunk"])
        try:
            await self._process(job_id, index)
        except (RedisError, OSError) as exc:  # out of memory, or gone mid-chunk
            if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):
                raise
            self._store_failed("store_results", exc)
            if deliveries < MAX_DELIVERIES:
                return  # stays pending: delivered again after claim_idle_s
            error = (
                f"results of chunk {index} could not be stored after {deliveries} attempts: "
                f"{type(exc).__name__}: {exc}"
            )[:500]
            try:
                failed = await self._redis.eval(
                    _SET_FAILED,
                    3,
                    self._key(job_id, "meta"),
                    self._key(job_id, "results"),
                    self._key(job_id, "chunks"),
                    error,
                    str(time.time()),
                )
            except (RedisError, OSError) as again:
                self._store_failed("fail_job", again)
                return  # not even that: stays pending, tried again later
            if failed:
                metrics.JOBS_FAILED.labels("store").inc()
                log.error("job %s failed: %s", job_id, error)
        await self._redis.xack(self.stream, self.GROUP, message_id)
        await self._redis.xdel(self.stream, message_id)
        self._store_ok()

    async def _work(self, consumer: str) -> None:
        backoff = 0.5
        while True:
            try:
                entry = await self._next(consumer)
                backoff = 0.5
                if self._down:
                    self._down = False
                    metrics.JOB_STORE_UP.set(0 if self._store_error else 1)
                    log.warning("job workers: redis is back")
                if entry is None:
                    continue
                await self._handle(*entry)
            except asyncio.CancelledError:
                raise
            except ResponseError as exc:
                if "NOGROUP" in str(exc):
                    with contextlib.suppress(ResponseError):
                        await self._redis.xgroup_create(
                            self.stream, self.GROUP, id="0", mkstream=True
                        )
                else:
                    log.warning("job worker: %s", exc)
                    await asyncio.sleep(backoff)
            except (RedisError, OSError) as exc:
                if not self._down:
                    self._down = True
                    metrics.JOB_STORE_UP.set(0)
                    log.warning("job workers: cannot reach redis, retrying: %s", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            except Exception:
                # A bug must not kill the worker: the chunk stays pending, is
                # redelivered, and fails its job after the delivery limit.
                log.exception("job worker: unexpected error")
                await asyncio.sleep(backoff)

    async def _process(self, job_id: str, index: int) -> None:
        meta_key = self._key(job_id, "meta")
        status = await self._redis.hget(meta_key, "status")
        if status is None or _text(status) in FINAL:
            return  # expired, cancelled or already finished: drop the chunk
        if await self._redis.hexists(self._key(job_id, "results"), str(index)):
            return  # a re-delivered chunk that was already stored
        raw = await self._redis.hget(self._key(job_id, "chunks"), str(index))
        if raw is None:
            return
        await self._redis.eval(_SET_RUNNING, 1, meta_key)
        items = [VerifyItem.model_validate(i) for i in orjson.loads(raw)]
        results = await self._verify(items)
        stored = await self._redis.hsetnx(
            self._key(job_id, "results"),
            str(index),
            orjson.dumps([r.model_dump() for r in results]),
        )
        if not stored:
            return  # another worker got there first: count once
        correct, abstained = _summarise(results)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.expire(self._key(job_id, "results"), self.ttl_s)
            pipe.hincrby(meta_key, "done", len(results))
            pipe.hincrby(meta_key, "correct", correct)
            pipe.hincrby(meta_key, "abstained", abstained)
            pipe.hincrby(meta_key, "chunks_done", 1)
            pipe.hget(meta_key, "chunks")
            replies = await pipe.execute()
        metrics.JOB_ITEMS.inc(len(results))
        chunks_done, chunks = int(replies[4]), int(replies[5])
        if chunks_done >= chunks:
            await self._redis.eval(_SET_COMPLETED, 1, meta_key, str(time.time()))


async def _stop(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel the workers and wait until they have stopped."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
