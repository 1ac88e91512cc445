"""Prometheus metrics: one prefix (``verifier_``), base units, low-cardinality labels.

Under several uvicorn worker processes set ``PROMETHEUS_MULTIPROC_DIR``;
`render` then aggregates across processes.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

# Buckets that reach 60 s: sympy deadlines, sandbox runs and judge calls live there.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
)

HTTP_REQUESTS = Counter(
    "verifier_http_requests_total", "HTTP requests.", ["endpoint", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "verifier_http_request_duration_seconds",
    "HTTP request latency.",
    ["endpoint", "method"],
    buckets=LATENCY_BUCKETS,
)
ITEMS = Counter("verifier_items_total", "Items verified.", ["endpoint"])
VERDICTS = Counter(
    "verifier_verdicts_total",
    "Verdicts by deciding stage and reason.",
    ["stage", "reason", "correct"],
)
STAGE_LATENCY = Histogram(
    "verifier_stage_duration_seconds",
    "Time spent computing a verdict (cache misses only), by stage.",
    ["stage"],
    buckets=LATENCY_BUCKETS,
)
GUARD_FLAGS = Counter("verifier_guard_flags_total", "Guard flags raised.", ["flag"])
CACHE_REQUESTS = Counter(
    "verifier_cache_requests_total", "Cache look-ups by layer and result.", ["layer", "result"]
)
CACHE_BACKEND_UP = Gauge(
    "verifier_cache_backend_up",
    "1 when Redis answers (or is not configured).",
    multiprocess_mode="livemin",
)
CACHE_ERRORS = Counter("verifier_cache_errors_total", "Redis errors.", ["operation"])
INFLIGHT_ITEMS = Gauge(
    "verifier_inflight_items", "Items being verified right now.", multiprocess_mode="livesum"
)
POOL_QUEUE = Gauge(
    "verifier_pool_queue_depth", "Tasks waiting for a math worker.", multiprocess_mode="livesum"
)
POOL_BUSY = Gauge(
    "verifier_pool_busy_workers", "Math workers running a task.", multiprocess_mode="livesum"
)
POOL_WORKERS = Gauge("verifier_pool_workers", "Math worker processes.", multiprocess_mode="livesum")
POOL_RESTARTS = Counter(
    "verifier_pool_worker_restarts_total", "Math workers replaced, by reason.", ["reason"]
)
RATE_LIMITED = Counter(
    "verifier_rate_limited_total", "Requests refused with 429 by the per-key rate limit."
)
BUILD_INFO = Gauge(
    "verifier_build_info",
    "Always 1; labels carry the verifier and judge prompt versions.",
    ["version", "prompt_version"],
    multiprocess_mode="livemax",
)


def render() -> tuple[bytes, str]:
    """The exposition text (multiprocess-aware) and its content type."""
    flush()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


JUDGE_REQUESTS = Counter("verifier_judge_requests_total", "Judge calls by outcome.", ["outcome"])
JUDGE_LATENCY = Histogram(
    "verifier_judge_request_duration_seconds", "Judge call latency.", buckets=LATENCY_BUCKETS
)
JUDGE_TOKENS = Counter("verifier_judge_tokens_total", "Judge token usage.", ["kind"])
JUDGE_BREAKER = Gauge(
    "verifier_judge_breaker_state",
    "Judge circuit breaker: 0 closed, 1 half-open, 2 open.",
    multiprocess_mode="livemax",
)

JOBS_SUBMITTED = Counter("verifier_jobs_submitted_total", "Batch jobs accepted.")
JOB_ITEMS = Counter("verifier_job_items_total", "Items verified by job workers.")
JOB_STORE_UP = Gauge(
    "verifier_job_store_up",
    "1 when job chunks and results can be read and written (Redis), else 0.",
    multiprocess_mode="livemin",
)
JOB_STORE_ERRORS = Counter(
    "verifier_job_store_errors_total",
    "Job store failures (Redis down, out of memory), by operation.",
    ["operation"],
)
JOBS_FAILED = Counter("verifier_jobs_failed_total", "Jobs marked failed, by reason.", ["reason"])
JOB_QUEUE = Gauge(
    "verifier_jobs_queue_depth",
    "Job chunks waiting or in progress (Redis stream lag + pending).",
    multiprocess_mode="livemax",
)

# Online FN/FP estimates (service/estimator.py): source = feedback | appeal | canary.
# Set on every /metrics scrape from the (Redis-shared) counts, so replicas agree.
_RATE_LABELS = ["stage", "source"]
FALSE_NEGATIVE_RATE = Gauge(
    "verifier_false_negative_rate",
    "Estimated P(rejected | correct).",
    _RATE_LABELS,
    multiprocess_mode="livemostrecent",
)
FALSE_NEGATIVE_RATE_LOWER = Gauge(
    "verifier_false_negative_rate_lower",
    "Lower confidence bound of the FN rate.",
    _RATE_LABELS,
    multiprocess_mode="livemostrecent",
)
FALSE_NEGATIVE_RATE_UPPER = Gauge(
    "verifier_false_negative_rate_upper",
    "Upper confidence bound of the FN rate.",
    _RATE_LABELS,
    multiprocess_mode="livemostrecent",
)
FALSE_NEGATIVE_SAMPLES = Gauge(
    "verifier_false_negative_samples",
    "Observations behind the FN estimate.",
    _RATE_LABELS,
    multiprocess_mode="livemostrecent",
)
FALSE_POSITIVE_RATE = Gauge(
    "verifier_false_positive_rate",
    "Estimated P(accepted | wrong).",
    _RATE_LABELS,
    multiprocess_mode="livemostrecent",
)
FALSE_POSITIVE_RATE_LOWER = Gauge(
    "verifier_false_positive_rate_lower",
    "Lower confidence bound of the FP rate.",
    _RATE_LABELS,
    multiprocess_mode="livemostrecent",
)
FALSE_POSITIVE_RATE_UPPER = Gauge(
    "verifier_false_positive_rate_upper",
    "Upper confidence bound of the FP rate.",
    _RATE_LABELS,
    multiprocess_mode="livemostrecent",
)
FALSE_POSITIVE_SAMPLES = Gauge(
    "verifier_false_positive_samples",
    "Observations behind the FP estimate.",
    _RATE_LABELS,
    multiprocess_mode="livemostrecent",
)
YOUDEN_J = Gauge(
    "verifier_youden_j",
    "J = 1 - FP - FN per stage, from the best available estimates.",
    ["stage"],
    multiprocess_mode="livemostrecent",
)
YOUDEN_J_LOWER = Gauge(
    "verifier_youden_j_lower",
    "Conservative lower bound of J (1 - FP upper - FN upper).",
    ["stage"],
    multiprocess_mode="livemostrecent",
)
YOUDEN_J_UPPER = Gauge(
    "verifier_youden_j_upper",
    "Upper bound of J (1 - FP lower - FN lower).",
    ["stage"],
    multiprocess_mode="livemostrecent",
)
ESTIMATOR_PROBES = Counter(
    "verifier_estimator_probes_total",
    "Background appeals and canaries by outcome (overturned, upheld, accepted, rejected, "
    "abstained, dropped).",
    ["source", "outcome"],
)
FEEDBACK_LABELS = Counter(
    "verifier_feedback_labels_total",
    "Feedback labels by result (tp, fp, tn, fn, abstain, unknown, duplicate).",
    ["result"],
)


#: Increments waiting for the end of the event-loop iteration (see `add`).
_pending: dict[Any, float] = {}
_flushing_loop: asyncio.AbstractEventLoop | None = None
_flushing_thread: int | None = None


def add(counter: Any, amount: float = 1) -> None:
    """``counter.inc(amount)`` (a counter or a gauge, labelled or not), made at
    the end of the current event-loop iteration together with the iteration's
    other increments of it. Under load one iteration serves many requests, and
    with several server processes every increment costs a lock and a write to
    shared memory. Outside an event loop the increment is made at once;
    `render` makes the waiting ones first."""
    global _flushing_loop, _flushing_thread
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        counter.inc(amount)
        return
    if _flushing_loop is not loop:
        if _flushing_loop is not None:
            if _flushing_thread != threading.get_ident():
                counter.inc(amount)  # another thread's loop is gathering: not ours to touch
                return
            flush()  # gathered by an earlier loop of this thread (one that may have stopped)
        _flushing_loop, _flushing_thread = loop, threading.get_ident()
        loop.call_soon(flush)
    _pending[counter] = _pending.get(counter, 0) + amount


def flush() -> None:
    """Make the waiting increments."""
    global _flushing_loop
    _flushing_loop = None
    while _pending:
        counter, amount = _pending.popitem()
        if amount:
            counter.inc(amount)


@functools.lru_cache(maxsize=4096)
def child(metric: Any, *values: str) -> Any:
    """`metric.labels(*values)`, looked up once: prometheus-client validates and
    locks on every `labels` call, and the request path makes about ten."""
    return metric.labels(*values)
