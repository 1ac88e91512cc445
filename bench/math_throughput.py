"""Math throughput: the service's batch endpoint vs Math-Verify on the same pairs.

Uses ../shared/data/qwen25_math_cot_100.jsonl (100 MATH problems x 8 sampled
chain-of-thought responses = 800 pairs, the shape of GRPO traffic). Each round
starts a fresh service process (2 math workers, in-memory cache, judge off),
sends the 800 pairs as one POST /v1/verify/batch cold (empty cache) and again
warm (the same batch), and times Math-Verify's parse+verify on the same pairs
with 1 process and with a 2-process pool. Prints the median of the rounds,
items/s, ratios, and agreement with the Qwen labels. The garbage collector of
every timed Python process on the client side (this one, Math-Verify's pool
workers) is paused while it is timed, as `timeit` does; the service's is not.

    .venv/bin/python bench/math_throughput.py [--rounds 3] [--data PATH]
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    DEFAULT_DATA,
    RESULTS,
    cores,
    free_port,
    gc_paused,
    load_pairs,
    median,
    service,
)


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
        with gc_paused():
            started = time.perf_counter()
            results = [math_verify_one(p) for p in pairs]
            return time.perf_counter() - started, results
    with multiprocessing.get_context("fork").Pool(processes, initializer=gc.disable) as pool:
        pool.map(math_verify_one, pairs[:processes])  # warm up workers
        started = time.perf_counter()
        results = pool.map(math_verify_one, pairs, chunksize=8)
        return time.perf_counter() - started, results


def bench_service(
    pairs: list[tuple[str, str]], warm_runs: int
) -> tuple[float, float, list[bool | None], bytes]:
    """(cold seconds, median warm seconds, verdicts, warm answer) from a fresh
    service process. Client timings include decoding the JSON answer."""
    with service(workers=2) as api:
        items = [{"response": r, "reference": g} for r, g in pairs]
        with httpx.Client(base_url=api.url, timeout=600) as client:
            # Readiness: the workers warm up (sympy, parser) when they start.
            client.post("/v1/verify", json={"response": "\\boxed{x+1}", "reference": "1+x"})
            with gc_paused():
                started = time.perf_counter()
                reply = client.post("/v1/verify/batch", json={"items": items})
                cold = reply.json()["results"]
                cold_s = time.perf_counter() - started
            reply.raise_for_status()
            warm = []
            for _ in range(warm_runs):
                with gc_paused():
                    started = time.perf_counter()
                    answer = client.post("/v1/verify/batch", json={"items": items})
                    answer.json()
                    warm.append(time.perf_counter() - started)
                answer.raise_for_status()
    return cold_s, median(warm), [r["correct"] for r in cold], answer.content


FLOOR_APP = """
from pathlib import Path

BODY = Path(__file__).with_suffix(".json").read_bytes()
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
"""


def transport_floor(items: list[dict[str, str]], answer: bytes, runs: int) -> float:
    """Median seconds of the same POST (same client code, same body) to a
    do-nothing uvicorn app that returns the service's own warm answer: what
    JSON encoding, HTTP and decoding cost before any verification."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "floor_app.py").write_text(FLOOR_APP)
    (RESULTS / "floor_app.json").write_bytes(answer)
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "floor_app:app", "--app-dir", str(RESULTS)]
    command += ["--port", str(port), "--log-level", "error"]
    server = subprocess.Popen(command)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            for _ in range(100):
                try:
                    client.get("/")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            times = []
            for _ in range(runs + 1):
                with gc_paused():
                    started = time.perf_counter()
                    client.post("/v1/verify/batch", json={"items": items}).json()
                    times.append(time.perf_counter() - started)
        return median(times[1:])
    finally:
        server.terminate()
        server.wait()


def agreement(results: list[bool | None], labels: list[bool]) -> float:
    return sum(1 for r, y in zip(results, labels, strict=True) if (r is True) == y) / len(labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rounds", type=int, default=3, help="rounds; medians are reported")
    parser.add_argument("--warm-runs", type=int, default=5, help="warm repeats per round")
    args = parser.parse_args()
    try:
        import math_verify  # noqa: F401
    except ImportError:
        sys.exit("math-verify is not installed (it is a dev extra: pip install -e '.[dev]')")
    triples = load_pairs(args.data)
    pairs = [(r, g) for r, g, _ in triples]
    labels = [y for _, _, y in triples]
    n = len(pairs)
    print(f"{n} pairs from {args.data.name}, {cores()} cores, {args.rounds} rounds (medians)")

    mv1_t, mv2_t, cold_t, warm_t, floor_t = [], [], [], [], []
    mv1: list[bool] = []
    ours: list[bool | None] = []
    for round_no in range(args.rounds):
        seconds, mv1 = bench_math_verify(pairs, 1)
        mv1_t.append(seconds)
        mv2_t.append(bench_math_verify(pairs, 2)[0])
        cold_s, warm_s, ours, answer = bench_service(pairs, args.warm_runs)
        cold_t.append(cold_s)
        warm_t.append(warm_s)
        items = [{"response": r, "reference": g} for r, g in pairs]
        floor_t.append(transport_floor(items, answer, args.warm_runs))
        print(
            f"  round {round_no + 1}: math-verify 1p {mv1_t[-1]:.3f} s, 2p {mv2_t[-1]:.3f} s; "
            f"service cold {cold_s:.3f} s, warm {warm_s * 1000:.1f} ms; "
            f"transport floor {floor_t[-1] * 1000:.1f} ms"
        )

    mv1_s, mv2_s, cold_s, warm_s, floor_s = (
        median(t) for t in (mv1_t, mv2_t, cold_t, warm_t, floor_t)
    )
    rows = [
        ("math-verify, 1 process", mv1_s),
        ("math-verify, 2-process pool", mv2_s),
        ("rlvr-verifier batch, cold", cold_s),
        ("rlvr-verifier batch, warm", warm_s),
        ("transport floor (no-op server)", floor_s),
    ]
    print(f"{'':32} {'seconds':>9} {'items/s':>10}")
    for name, seconds in rows:
        print(f"{name:32} {seconds:9.3f} {n / seconds:10.1f}")
    print(f"cold vs math-verify 2-process pool: {mv2_s / cold_s:.1f}x faster (target >= 3x)")
    print(f"warm vs math-verify 2-process pool: {mv2_s / warm_s:.1f}x faster (target >= 50x)")
    print(
        f"  the same request to a server that does nothing takes {floor_s * 1000:.1f} ms "
        f"({mv2_s / floor_s:.1f}x math-verify's time): the client's JSON encoding, HTTP and "
        f"decoding; the service adds {max(warm_s - floor_s, 0) * 1000:.1f} ms"
    )
    print(f"cold vs math-verify 1 process: {mv1_s / cold_s:.1f}x faster")
    print(
        f"agreement with Qwen labels: rlvr-verifier {agreement(ours, labels):.2%}, "
        f"math-verify {agreement(list(mv1), labels):.2%}"
    )
    print(f"rlvr-verifier abstained on {sum(1 for r in ours if r is None)} items")


if __name__ == "__main__":
    main()
