"""Scaling: items/s of POST /v1/verify/batch as the batch grows from 1 to 10,000.

Against a real service process (2 math workers, in-memory cache, judge off),
each size is sent cold (responses no cache has seen, cycling over the 800 real
pairs) and then warm (the same batch again). The cost must grow linearly: the
per-item time of every size is printed as a ratio to the per-item time of the
reference size measured in the same run (default 1,000 items), and a size whose
per-item time exceeds that of the next smaller size by more than 1.25x is
flagged as a cliff (small batches cost more per item: the fixed cost of one
HTTP request is shared by fewer items; that is not a cliff).

    .venv/bin/python bench/scaling.py [--sizes 1,10,100,1000,10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import cores, load_pairs, median, service, unique_items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,100,1000,10000")
    parser.add_argument("--reference", type=int, default=1000, help="size the ratios refer to")
    parser.add_argument("--repeats", type=int, default=3, help="repeats per size (median)")
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    if args.reference not in sizes:
        sizes = sorted({*sizes, args.reference})
    pairs = load_pairs()
    print(f"{len(pairs)} real pairs, {cores()} cores, median of {args.repeats} per size")

    cold: dict[int, float] = {}
    warm: dict[int, float] = {}
    serial = 0
    with service(workers=2) as api, httpx.Client(base_url=api.url, timeout=600) as client:
        client.post("/v1/verify", json={"response": "\\boxed{x+1}", "reference": "1+x"})
        for size in sizes:
            cold_runs, warm_runs = [], []
            for _ in range(args.repeats):
                items = unique_items(pairs, size, start=serial)
                serial += size
                began = time.perf_counter()
                client.post("/v1/verify/batch", json={"items": items}).raise_for_status()
                cold_runs.append(time.perf_counter() - began)
                began = time.perf_counter()
                client.post("/v1/verify/batch", json={"items": items}).raise_for_status()
                warm_runs.append(time.perf_counter() - began)
            cold[size], warm[size] = median(cold_runs), median(warm_runs)

    ref_cold = cold[args.reference] / args.reference
    ref_warm = warm[args.reference] / args.reference
    print(
        f"{'items':>7} {'cold s':>8} {'items/s':>9} {'us/item':>8} {'vs ref':>7}   "
        f"{'warm s':>8} {'items/s':>9} {'us/item':>8} {'vs ref':>7}"
    )
    cliffs = []
    previous: tuple[float, float] | None = None
    for size in sizes:
        c_item, w_item = cold[size] / size, warm[size] / size
        c_ratio, w_ratio = c_item / ref_cold, w_item / ref_warm
        print(
            f"{size:7d} {cold[size]:8.3f} {size / cold[size]:9,.0f} {c_item * 1e6:8.1f} "
            f"{c_ratio:6.2f}x   {warm[size]:8.3f} {size / warm[size]:9,.0f} "
            f"{w_item * 1e6:8.1f} {w_ratio:6.2f}x"
        )
        if previous is not None and (c_item > 1.25 * previous[0] or w_item > 1.25 * previous[1]):
            cliffs.append(size)
        previous = (c_item, w_item)
    print(f"reference: {args.reference} items; per-item cost relative to it (1.00x = linear)")
    print(
        "no per-batch cliffs (per-item cost never grows with the batch)"
        if not cliffs
        else f"CLIFFS: per-item cost grows > 1.25x at sizes {cliffs}"
    )


if __name__ == "__main__":
    main()
