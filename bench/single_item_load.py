"""Single-item traffic under load: one sample per POST /v1/verify, many in flight.

This is how most trainers call a reward service (OpenRLHF, slime, verl's
reward loop: one request per rollout). Against a real service (in-memory cache,
judge off), once per `--http-workers` setting (uvicorn processes, i.e.
`rlvr-verifier serve --workers N`, each with 2 math workers), it measures:

1. closed-loop throughput and p50/p99 latency at increasing concurrency
   (connections in flight), with `wrk` as the load generator:
   * uncached - every request a response no cache has seen (full guards,
     extraction and comparison);
   * cached - the 800 real pairs, verified once beforehand;
2. the baseline from the same run: the same kind of items sent as one
   POST /v1/verify/batch (items/s), and the ratio single / batch;
3. open-loop latency of cached single items at a fixed rate (default 200
   requests/s) with an asyncio httpx client; latency counts from the
   scheduled send time, so a stalled server cannot hide its queue.

Targets (2 cores): cached p99 < 20 ms at 200 requests/s; uncached at 500 in
flight >= half the batch endpoint's items/s.

    .venv/bin/python bench/single_item_load.py [--duration 5] [--concurrency 50,200,500,1000]
        [--http-workers 1,2]

`wrk` is not installed by this script (Debian/Ubuntu: `apt-get install wrk`);
without it the closed-loop part falls back to the asyncio client, which is
itself CPU-bound on a small machine and then says so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, cores, load_pairs, median, percentile, service, unique_items

# wrk script: bodies come from a file of "head<TAB>tail" lines; uncached runs put
# a number unique to the run, thread and request between head and tail.
WRK_LUA = r"""
local threads = {}
local next_id = 0
function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end
local heads, tails = {}, {}
counter, cached, non2xx = 0, 0, 0  -- globals: done() reads them per thread
function init(args)
  local path, nthreads, mode, tag = args[1], tonumber(args[2]), args[3], args[4]
  local i = 0
  for line in io.lines(path) do
    if i % nthreads == tid then
      local tab = string.find(line, "\t", 1, true)
      heads[#heads + 1] = string.sub(line, 1, tab - 1)
      tails[#tails + 1] = string.sub(line, tab + 1)
    end
    i = i + 1
  end
  unique = (mode == "uncached")
  prefix = tag .. "-" .. tid .. "-"
end
function request()
  counter = counter + 1
  local k = (counter % #heads) + 1
  local body
  if unique then
    body = heads[k] .. prefix .. counter .. tails[k]
  else
    body = heads[k] .. tails[k]
  end
  return wrk.format("POST", "/v1/verify", {["Content-Type"] = "application/json"}, body)
end
function response(status, headers, body)
  if status ~= 200 then non2xx = non2xx + 1 end
  if string.find(body, '"cached":true', 1, true) then cached = cached + 1 end
end
function done(summary, latency, requests)
  local hits, bad = 0, 0
  for _, t in ipairs(threads) do
    hits = hits + t:get("cached")
    bad = bad + t:get("non2xx")
  end
  io.write(string.format(
    'WRKJSON {"requests": %d, "seconds": %f, "p50_ms": %f, "p99_ms": %f, "errors": %d, ' ..
    '"non2xx": %d, "cached": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout, bad, hits))
end
"""


def write_bodies(path: Path, items: list[dict[str, Any]], unique: bool) -> None:
    """One request body per line as "head<TAB>tail" (tab never occurs in JSON text)."""
    lines = []
    for item in items:
        body = json.dumps(item)
        if unique:
            marker = '"response": "'
            cut = body.index(marker) + len(marker)
            head, tail = body[:cut] + "(sample ", ")\\n" + body[cut:]
        else:
            head, tail = body, ""
        lines.append(f"{head}\t{tail}")
    path.write_text("\n".join(lines) + "\n")


def run_wrk(
    url: str, bodies: Path, script: Path, mode: str, tag: str, connections: int, duration: float
) -> dict[str, float]:
    threads = max(1, min(cores(), connections))
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "60s",
        "-s",
        str(script),
        url + "/v1/verify",
        "--",
        str(bodies),
        str(threads),
        mode,
        tag,
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    out = done.stdout
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    stats: dict[str, float] = json.loads(line.removeprefix("WRKJSON "))
    stats["items_s"] = stats["requests"] / stats["seconds"]
    return stats


async def closed_loop_httpx(
    url: str, items: list[dict[str, Any]], connections: int, duration: float, unique: bool, tag: str
) -> dict[str, float]:
    """Fallback load generator: `connections` asyncio workers, one request at a time each."""
    latencies: list[float] = []
    errors = 0
    cached = 0
    stop = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def worker(index: int) -> None:
            nonlocal errors, cached
            k = 0
            while time.perf_counter() < stop:
                item = dict(items[(index + k * connections) % len(items)])
                if unique:
                    item["response"] = f"(sample {tag}-{index}-{k})\n{item['response']}"
                k += 1
                began = time.perf_counter()
                try:
                    reply = await client.post("/v1/verify", json=item)
                    cached += bool(reply.json().get("cached"))
                    errors += reply.status_code != 200
                except httpx.HTTPError:
                    errors += 1
                latencies.append(time.perf_counter() - began)

        began = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(connections)))
        seconds = time.perf_counter() - began
    return {
        "requests": len(latencies),
        "seconds": seconds,
        "items_s": len(latencies) / seconds,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "errors": errors,
        "non2xx": 0,
        "cached": cached,
    }


async def open_loop(
    url: str, items: list[dict[str, Any]], rate: float, duration: float
) -> tuple[list[float], int]:
    """Send at a fixed rate regardless of replies; latency from the scheduled time."""
    total = int(rate * duration)
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        start = time.perf_counter() + 0.2

        async def one(i: int) -> None:
            nonlocal errors
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                reply = await client.post("/v1/verify", json=items[i % len(items)])
                errors += reply.status_code != 200
            except httpx.HTTPError:
                errors += 1
            latencies.append(time.perf_counter() - scheduled)

        await asyncio.gather(*(one(i) for i in range(total)))
    return latencies, errors


def batch_rate(client: httpx.Client, items: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    client.post("/v1/verify/batch", json={"items": items}).raise_for_status()
    return len(items) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per load level")
    parser.add_argument("--concurrency", default="50,200,500,1000", help="requests in flight")
    parser.add_argument("--rate", type=float, default=200.0, help="open-loop requests/s")
    parser.add_argument("--batch-items", type=int, default=4000, help="uncached batch size")
    parser.add_argument(
        "--http-workers",
        default="1,2",
        help="uvicorn processes to measure (`serve --workers N`), each with 2 math workers",
    )
    args = parser.parse_args()
    levels = [int(x) for x in args.concurrency.split(",") if x.strip()]

    pairs = load_pairs()
    real = [{"response": r, "reference": g} for r, g, _ in pairs]
    wrk = shutil.which("wrk")
    print(f"{len(real)} real pairs, {cores()} cores; load generator: ", end="")
    print("wrk" if wrk else "asyncio httpx (wrk not found: apt-get install wrk)")
    if not wrk:
        print("  note: the Python client shares the cores and is likely the bottleneck")

    RESULTS.mkdir(parents=True, exist_ok=True)
    script = RESULTS / "single_item.lua"
    script.write_text(WRK_LUA)
    unique_file = RESULTS / "single_item_unique.txt"
    cached_file = RESULTS / "single_item_cached.txt"
    write_bodies(unique_file, real, unique=True)
    write_bodies(cached_file, real, unique=False)
    for http_workers in [int(x) for x in args.http_workers.split(",") if x.strip()]:
        print(f"\n== serve --workers {http_workers} (uvicorn processes), 2 math workers each ==")
        measure(args, levels, pairs, real, wrk, script, unique_file, cached_file, http_workers)


def measure(
    args: argparse.Namespace,
    levels: list[int],
    pairs: list[tuple[str, str, bool]],
    real: list[dict[str, Any]],
    wrk: str | None,
    script: Path,
    unique_file: Path,
    cached_file: Path,
    http_workers: int,
) -> None:
    with (
        service(workers=2, http_workers=http_workers) as api,
        httpx.Client(base_url=api.url, timeout=600) as client,
    ):
        for _ in range(2 * http_workers):  # reach every process's workers
            client.post("/v1/verify", json={"response": "\\boxed{x+1}", "reference": "1+x"})
        # Baselines from this run: the same kind of items as one batch.
        batch_uncached = median(
            [
                batch_rate(client, unique_items(pairs, args.batch_items, start=k * 10**9))
                for k in (1, 2, 3)
            ]
        )
        for _ in range(http_workers):  # fills every process's cache with the real pairs
            batch_rate(client, real)
        batch_cached = batch_rate(client, real)
        print(
            f"batch endpoint: uncached {batch_uncached:,.0f} items/s "
            f"(median of 3 x {args.batch_items} items), cached {batch_cached:,.0f} items/s "
            "(800 items)"
        )

        rows = []
        for mode in ("uncached", "cached"):
            for level in levels:
                tag = f"{mode[0]}{level}-{http_workers}-{time.time_ns()}"
                if wrk:
                    bodies = unique_file if mode == "uncached" else cached_file
                    stats = run_wrk(api.url, bodies, script, mode, tag, level, args.duration)
                else:
                    stats = asyncio.run(
                        closed_loop_httpx(
                            api.url, real, level, args.duration, mode == "uncached", tag
                        )
                    )
                baseline = batch_uncached if mode == "uncached" else batch_cached
                rows.append((mode, level, stats, stats["items_s"] / baseline))

        print(
            f"{'mode':9} {'in flight':>9} {'items/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'vs batch':>8} {'cached':>7} {'errors':>6}"
        )
        for mode, level, stats, ratio in rows:
            print(
                f"{mode:9} {level:9d} {stats['items_s']:9,.0f} {stats['p50_ms']:8.1f} "
                f"{stats['p99_ms']:8.1f} {ratio:7.2f}x {int(stats['cached']):7d} "
                f"{int(stats['errors'] + stats['non2xx']):6d}"
            )
        at_500 = [r for r in rows if r[0] == "uncached" and r[1] == 500]
        if at_500:
            ratio = at_500[0][3]
            print(f"uncached at 500 in flight: {ratio:.2f}x the batch endpoint (target >= 0.5x)")

        latencies, errors = asyncio.run(open_loop(api.url, real, args.rate, args.duration))
        p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
        print(
            f"cached, open loop at {args.rate:.0f} requests/s for {args.duration:.0f} s: "
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms (target p99 < 20 ms), {errors} errors"
        )


if __name__ == "__main__":
    main()
