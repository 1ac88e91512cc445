"""Service configuration, read from ``VERIFIER_*`` environment variables."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the service. Empty strings mean "off"."""

    model_config = SettingsConfigDict(env_prefix="VERIFIER_", extra="ignore")

    # cache
    redis_url: str = Field("", description="Redis URL; empty = in-process cache only.")
    redis_prefix: str = Field("rlvr:", description="Prefix of every Redis key.")
    cache_ttl_s: int = Field(7 * 24 * 3600, ge=1, description="TTL of cached verdicts.")
    cache_max_entries: int = Field(200_000, ge=0, description="In-process LRU size.")
    redis_retry_s: float = Field(5.0, gt=0, description="Reconnect interval when Redis is down.")

    # judge
    judge_url: str = Field("", description="OpenAI-compatible judge base URL(s), comma-separated.")
    judge_model: str = Field("", description="Model name served by the judge.")
    judge_api_key: str = Field("", description="Bearer token for the judge server.")
    judge_timeout_s: float = Field(30.0, gt=0)
    judge_max_concurrency: int = Field(64, ge=1)
    judge_retries: int = Field(2, ge=0)
    judge_choice_field: Literal["structured_outputs", "guided_choice"] = "structured_outputs"
    judge_default_mode: Literal["off", "fallback", "appeal", "always"] = "fallback"
    judge_breaker_failures: int = Field(
        5, ge=1, description="Consecutive failed judge calls that open the circuit breaker."
    )
    judge_breaker_reset_s: float = Field(
        30.0, gt=0, description="Seconds an open breaker waits before a probe call."
    )

    # access
    api_keys: str = Field("", description="Comma-separated API keys; empty = open.")
    rate_limit_per_s: float = Field(
        0.0, ge=0, description="Requests per second per API key (or client address); 0 = off."
    )
    rate_limit_burst: int = Field(
        0, ge=0, description="Requests a key may send at once; 0 = max(1, 2 x the rate)."
    )
    body_timeout_s: float = Field(
        30.0,
        gt=0,
        description="A request's headers, and then its body, must arrive within this (408).",
    )

    # workers and limits
    workers: int = Field(0, ge=0, description="Math worker processes; 0 = number of cores.")
    math_timeout_s: float = Field(5.0, gt=0, le=120, description="Per-item sympy deadline.")
    worker_memory_mb: int = Field(2048, ge=128, description="Address-space limit per worker.")
    max_response_bytes: int = Field(1_000_000, ge=1, description="Largest response/reference.")
    max_batch_items: int = Field(10_000, ge=1)
    max_body_bytes: int = Field(256 * 1024 * 1024, ge=1, description="Largest request body.")
    fast_path: bool = Field(
        True,
        description=(
            "Serve ordinary POST /v1/verify and /v1/verify/batch requests on a lean ASGI path "
            "(errors still come from the FastAPI routes); false = everything through FastAPI."
        ),
    )
    code_concurrency: int = Field(0, ge=0, description="Parallel sandboxes; 0 = cores.")
    code_cpu_s: float = Field(4.0, gt=0, le=300, description="CPU seconds per test case.")
    code_wall_s: float = Field(12.0, gt=0, le=600, description="Wall-clock backstop per case.")
    code_total_wall_s: float = Field(60.0, gt=0, le=3600, description="Cap per submission.")
    code_memory_mb: int = Field(1024, ge=16, description="Address space per sandboxed process.")
    code_spares: int = Field(
        2,
        ge=0,
        le=64,
        description="Sandboxes kept started ahead of need (idle: memory, no CPU); 0 = none.",
    )
    allow_unconfined_code: bool = Field(
        False, description="DANGEROUS development setting: run code without bubblewrap."
    )

    # jobs
    job_chunk_size: int = Field(64, ge=1, le=10_000, description="Items per job chunk.")
    job_workers: int = Field(2, ge=1, description="Chunks verified concurrently per replica.")
    job_ttl_s: int = Field(24 * 3600, ge=1, description="Jobs and their results expire after this.")
    job_claim_idle_s: float = Field(
        60.0, gt=0, description="A chunk pending this long on a silent replica is taken over."
    )
    max_job_items: int = Field(1_000_000, ge=1, description="Largest job.")

    # online FN/FP estimation (service/estimator.py)
    verdict_ttl_s: int = Field(
        3600, ge=0, description="Verdicts stay addressable by id for feedback this long; 0 = off."
    )
    verdict_store_max_entries: int = Field(
        100_000, ge=0, description="In-process verdict store size (no Redis, or Redis down)."
    )
    appeal_fraction: float = Field(
        0.1, ge=0, le=1, description="Share of rule negatives rechecked by the judge (background)."
    )
    canary_rate: float = Field(
        0.02, ge=0, le=1, description="Known-wrong probes sent per real judge call (background)."
    )
    canary_screened: bool = Field(
        True,
        description="Canaries pass the answer guards like real traffic (false: bare model FP).",
    )
    judge_calibration_fp: float = Field(
        0.0, ge=0, lt=0.5, description="Judge FP rate known from calibration (appeal correction)."
    )
    judge_calibration_fn: float = Field(
        0.0, ge=0, lt=0.5, description="Judge FN rate known from calibration (appeal correction)."
    )
    estimator_confidence: float = Field(0.95, gt=0, lt=1, description="Interval confidence.")
    estimator_interval: Literal["wilson", "clopper-pearson"] = "wilson"
    correction_min_samples: int = Field(
        30, ge=1, description="Samples a rate needs before `reward: corrected` uses it."
    )
    estimator_concurrency: int = Field(4, ge=1, description="Background judge probes at once.")
    estimator_max_pending: int = Field(
        1000, ge=0, description="Queued background probes; beyond this new ones are dropped."
    )
    estimator_window_s: int = Field(
        24 * 3600, ge=60, description="Estimates cover this much recent time (24 buckets)."
    )
    estimator_refresh_s: float = Field(
        2.0, ge=0, description="Max age of the shared counts used for corrected rewards."
    )

    # logging
    log_level: str = Field("info", description="Level of the service's JSON logs.")
    log_format: Literal["json", "text"] = "json"
    access_log: bool = Field(True, description="One JSON line per request, with its request id.")

    @property
    def api_key_set(self) -> frozenset[str]:
        return frozenset(k.strip() for k in self.api_keys.split(",") if k.strip())

    @property
    def judge_urls(self) -> tuple[str, ...]:
        return tuple(u.strip() for u in self.judge_url.split(",") if u.strip())

    @property
    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1
