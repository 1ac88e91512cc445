"""Soak: a steady request rate for a bounded time; memory and open files must stay flat.

Starts a real service process (2 math workers, in-memory cache, access log
off) unless `--url`/`--pid` name a running one, warms it up, then sends
`--rate` single-item POST /v1/verify requests per second for `--seconds`
(open loop: the schedule does not slow down when the server does). The mix
is GRPO-like: a third repeats a small set of items (cache hits), a third are
new rational answers (fast path), a third are new symbolic answers (sympy in
the workers). The server's RSS (and its workers') and open file descriptors
are sampled from /proc after the warm-up and after the run.

    .venv/bin/python bench/soak.py [--seconds 60] [--rate 100] [--json]

Exit status 0 when every request got a 200, the achieved rate is within 10%
of the target, the open fds are flat (at most 2 more) and RSS grew by less
than `--max-rss-growth-mb`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def worker_pids(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def sample(pid: int) -> dict[str, Any]:
    workers = worker_pids(pid)
    return {
        "rss_mb": round(rss_kb(pid) / 1024, 1),
        "workers_rss_mb": round(sum(rss_kb(w) for w in workers) / 1024, 1),
        "workers": len(workers),
        "fds": open_fds(pid),
    }


def make_item(k: int, rng: random.Random) -> dict[str, Any]:
    kind = k % 3
    if kind == 0:  # repeated: cache hits after the first round
        n = rng.randrange(20)
        return {"response": f"so $\\boxed{{\\frac{{{n}}}{{{2 * n + 2}}}}}$", "reference": str(n)}
    if kind == 1:  # new, rational fast path
        return {"response": f"The answer is $\\boxed{{{k}/{2 * k}}}$.", "reference": "1/2"}
    return {  # new, symbolic: sympy in a worker
        "response": f"so $\\boxed{{\\sqrt{{{k * k}}} + x - x}}$",
        "reference": str(k),
    }


async def drive(url: str, rate: float, seconds: float, seed: int) -> dict[str, Any]:
    """Send `rate` requests/s for `seconds`; latencies and outcome counts."""
    rng = random.Random(seed)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

        async def one(item: dict[str, Any]) -> None:
            began = time.perf_counter()
            try:
                response = await client.post("/v1/verify", json=item)
                key = str(response.status_code)
            except httpx.HTTPError as exc:
                key = type(exc).__name__
            latencies.append(time.perf_counter() - began)
            statuses[key] = statuses.get(key, 0) + 1

        tasks = []
        started = time.perf_counter()
        total = int(rate * seconds)
        for k in range(total):
            delay = started + k / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(make_item(seed * 10_000_000 + k, rng))))
        sent_in = time.perf_counter() - started
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": total,
        "statuses": statuses,
        "send_seconds": round(sent_in, 2),
        "seconds": round(elapsed, 2),
        "achieved_rate": round(total / max(elapsed, 1e-9), 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1) if latencies else None,
        "max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
    }


def start_service(workers: int) -> tuple[subprocess.Popen[bytes], str, Path]:
    from tests.conftest import free_port

    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="soak-")) / "service.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERIFIER_")}
    env.update(
        {
            "VERIFIER_WORKERS": str(workers),
            "VERIFIER_ACCESS_LOG": "false",
            "VERIFIER_APPEAL_FRACTION": "0",
            "VERIFIER_CANARY_RATE": "0",
        }
    )
    command = [sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"service exited:\n{log.read_text()}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return process, url, log
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit("service did not become ready")


def soak(
    url: str, pid: int, *, seconds: float, rate: float, warmup: float, max_rss_growth_mb: float
) -> dict[str, Any]:
    asyncio.run(drive(url, rate, warmup, seed=1))  # imports, pools, first cache entries
    time.sleep(1.0)
    before = sample(pid)
    load = asyncio.run(drive(url, rate, seconds, seed=2))
    time.sleep(1.0)  # keep-alive connections of the run close; workers settle
    after = sample(pid)
    ok = load["statuses"].get("200", 0)
    growth = round(after["rss_mb"] - before["rss_mb"], 1)
    checks = {
        "all_200": ok == load["requests"],
        "rate_held": load["achieved_rate"] >= 0.9 * rate,
        "fds_flat": after["fds"] <= before["fds"] + 2,
        "rss_bounded": growth < max_rss_growth_mb,
        "workers_alive": after["workers"] == before["workers"],
    }
    return {
        "target_rate": rate,
        "seconds": seconds,
        "load": load,
        "before": before,
        "after": after,
        "rss_growth_mb": growth,
        "checks": checks,
        "held": all(checks.values()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load before")
    parser.add_argument("--workers", type=int, default=2, help="math workers of the service")
    parser.add_argument("--max-rss-growth-mb", type=float, default=30.0)
    parser.add_argument("--url", help="a running service (needs --pid)")
    parser.add_argument("--pid", type=int, help="its process id, for /proc sampling")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    process = None
    if args.url:
        if not args.pid:
            parser.error("--url needs --pid")
        url, pid = args.url, args.pid
    else:
        process, url, _ = start_service(args.workers)
        pid = process.pid
    try:
        report = soak(
            url,
            pid,
            seconds=args.seconds,
            rate=args.rate,
            warmup=args.warmup,
            max_rss_growth_mb=args.max_rss_growth_mb,
        )
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=20)
    if args.json:
        print(json.dumps(report))
    else:
        load, before, after = report["load"], report["before"], report["after"]
        print(f"{load['requests']} requests at {report['target_rate']:g}/s for {args.seconds:g} s")
        print(
            f"  achieved {load['achieved_rate']}/s, statuses {load['statuses']}, "
            f"p50 {load['p50_ms']} ms, p99 {load['p99_ms']} ms, max {load['max_ms']} ms"
        )
        print(
            f"  server RSS {before['rss_mb']} -> {after['rss_mb']} MB "
            f"(growth {report['rss_growth_mb']} MB), workers RSS {before['workers_rss_mb']} -> "
            f"{after['workers_rss_mb']} MB, open fds {before['fds']} -> {after['fds']}"
        )
        for name, passed in report["checks"].items():
            print(f"  {'ok ' if passed else 'FAIL'} {name}")
        print("held" if report["held"] else "DID NOT HOLD")
    return 0 if report["held"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
