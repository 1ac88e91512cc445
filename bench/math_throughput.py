"""Math throughput: the service's batch endpoint vs Math-Verify on the same pairs.

Uses ../shared/data/qwen25_math_cot_100.jsonl (100 MATH problems x 8 sampled
chain-of-thought responses = 800 pairs, the shape of GRPO traffic). Starts a
real service process (2 math workers, in-memory cache), sends the 800 pairs as
one POST /v1/verify/batch cold (empty cache) and again warm, and times
Math-Verify's parse+verify on the same pairs with 1 process and with a
2-process pool. Prints items/s, ratios, and agreement with the Qwen labels.

    .venv/bin/python bench/math_throughput.py [--data PATH]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "qwen25_math_cot_100.jsonl"


def load_pairs(path: Path) -> list[tuple[str, str, bool]]:
    pairs = []
    for line in path.read_text().splitlines():
        row = json.loads(line)
        for response, label in zip(row["code"], row["score"], strict=True):
            pairs.append((response, str(row["gt"]), bool(label)))
    return pairs


def math_verify_one(pair: tuple[str, str]) -> bool:
    from math_verify import parse, verify

    response, reference = pair
    try:
        return bool(verify(parse(f"${reference}$"), parse(response)))
    except Exception:
        return False


def bench_math_verify(pairs: list[tuple[str, str]], processes: int) -> tuple[float, list[bool]]:
    if processes == 1:
        math_verify_one(pairs[0])  # import and warm up outside the timing
        started = time.perf_counter()
        results = [math_verify_one(p) for p in pairs]
        return time.perf_counter() - started, results
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        pool.map(math_verify_one, pairs[:processes])  # warm up workers
        started = time.perf_counter()
        results = pool.map(math_verify_one, pairs, chunksize=8)
        return time.perf_counter() - started, results


def bench_service(pairs: list[tuple[str, str]]) -> tuple[float, float, list[bool | None]]:
    from tests.conftest import start_service

    log_dir = ROOT / "bench" / "results"
    log_dir.mkdir(parents=True, exist_ok=True)
    service = start_service({"VERIFIER_WORKERS": "2"}, log_dir)
    try:
        items = [{"response": r, "reference": g} for r, g in pairs]
        with httpx.Client(base_url=service.url, timeout=600) as client:
            # let the workers finish importing sympy before timing
            client.post("/v1/verify", json={"response": "\\boxed{x+1}", "reference": "1+x"})
            started = time.perf_counter()
            cold = client.post("/v1/verify/batch", json={"items": items}).json()["results"]
            cold_s = time.perf_counter() - started
            started = time.perf_counter()
            client.post("/v1/verify/batch", json={"items": items}).raise_for_status()
            warm_s = time.perf_counter() - started
    finally:
        service.stop()
    return cold_s, warm_s, [r["correct"] for r in cold]


def agreement(results: list[bool | None], labels: list[bool]) -> float:
    return sum(1 for r, y in zip(results, labels, strict=True) if (r is True) == y) / len(labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    triples = load_pairs(args.data)
    pairs = [(r, g) for r, g, _ in triples]
    labels = [y for _, _, y in triples]
    n = len(pairs)
    print(f"{n} pairs from {args.data.name}, {os.cpu_count()} cores")

    mv1_s, mv1 = bench_math_verify(pairs, 1)
    mv2_s, _ = bench_math_verify(pairs, 2)
    cold_s, warm_s, ours = bench_service(pairs)

    rows = [
        ("math-verify, 1 process", mv1_s),
        ("math-verify, 2-process pool", mv2_s),
        ("rlvr-verifier batch, cold", cold_s),
        ("rlvr-verifier batch, warm", warm_s),
    ]
    print(f"{'':32} {'seconds':>9} {'items/s':>10}")
    for name, seconds in rows:
        print(f"{name:32} {seconds:9.3f} {n / seconds:10.1f}")
    print(f"cold vs math-verify 2-process pool: {mv2_s / cold_s:.1f}x faster")
    print(f"warm vs math-verify 2-process pool: {mv2_s / warm_s:.1f}x faster")
    print(
        f"agreement with Qwen labels: rlvr-verifier {agreement(ours, labels):.2%}, "
        f"math-verify {agreement(list(mv1), labels):.2%}"
    )
    print(f"rlvr-verifier abstained on {sum(1 for r in ours if r is None)} items")


if __name__ == "__main__":
    main()
