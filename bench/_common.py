"""Shared helpers of the benchmarks: the data set, service processes, statistics.

Every benchmark measures its baseline in the same run and prints the ratio,
so figures from a busy machine still compare like with like.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "qwen25_math_cot_100.jsonl"
RESULTS = ROOT / "bench" / "results"


def load_pairs(path: Path = DEFAULT_DATA) -> list[tuple[str, str, bool]]:
    """(response, reference, Qwen label) for every sampled response of the file."""
    if not path.exists():
        sys.exit(f"data set not found: {path} (pass --data PATH)")
    pairs = []
    for line in path.read_text().splitlines():
        row = json.loads(line)
        for response, label in zip(row["code"], row["score"], strict=True):
            pairs.append((response, str(row["gt"]), bool(label)))
    return pairs


def variant(response: str, n: int) -> str:
    """A response no cache has seen (a neutral first line), verified like the original."""
    return f"(sample {n})\n{response}"


def unique_items(
    pairs: list[tuple[str, str, bool]], count: int, start: int = 0
) -> list[dict[str, Any]]:
    """`count` distinct items cycling over the real pairs (numbered from `start`)."""
    items = []
    for k in range(count):
        response, reference, _ = pairs[k % len(pairs)]
        items.append({"response": variant(response, start + k), "reference": reference})
    return items


@contextmanager
def service(workers: int = 2, http_workers: int = 1, **env: str) -> Iterator[Any]:
    """A real service (uvicorn, in-memory cache, judge off) for the block:
    `http_workers` uvicorn processes, each with `workers` math workers."""
    from tests.conftest import start_service

    RESULTS.mkdir(parents=True, exist_ok=True)
    settings = {
        "VERIFIER_WORKERS": str(workers),
        **{f"VERIFIER_{k.upper()}": v for k, v in env.items()},
    }
    process = start_service(settings, RESULTS, http_workers)
    try:
        yield process
    finally:
        process.stop()


@contextmanager
def gc_paused() -> Iterator[None]:
    """This process's garbage collector collected, then paused for the block
    (as `timeit` does): a collection of the benchmark's own heap - the data
    set, earlier answers - is not a cost of what is being measured."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: list[float]) -> float:
    return statistics.median(values)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    from tests.conftest import free_port as pick

    return pick()


def cores() -> int:
    return os.cpu_count() or 1
