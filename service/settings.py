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

    # access
    api_keys: str = Field("", description="Comma-separated API keys; empty = open.")

    # workers and limits
    workers: int = Field(0, ge=0, description="Math worker processes; 0 = number of cores.")
    math_timeout_s: float = Field(5.0, gt=0, le=120, description="Per-item sympy deadline.")
    worker_memory_mb: int = Field(2048, ge=128, description="Address-space limit per worker.")
    max_response_bytes: int = Field(1_000_000, ge=1, description="Largest response/reference.")
    max_batch_items: int = Field(10_000, ge=1)
    max_body_bytes: int = Field(256 * 1024 * 1024, ge=1, description="Largest request body.")
    code_concurrency: int = Field(0, ge=0, description="Parallel sandboxes; 0 = cores.")
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

    @property
    def api_key_set(self) -> frozenset[str]:
        return frozenset(k.strip() for k in self.api_keys.split(",") if k.strip())

    @property
    def judge_urls(self) -> tuple[str, ...]:
        return tuple(u.strip() for u in self.judge_url.split(",") if u.strip())

    @property
    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1
