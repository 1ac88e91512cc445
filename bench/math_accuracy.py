"""Accuracy of the math stage against labelled data, side by side with Math-Verify.

Usage: ``.venv/bin/python bench/math_accuracy.py [--workers N] [--timeout S]
[--only qwen|mv|own] [--no-math-verify]``

Data (from ``../shared/data`` or ``$VERIFIER_DATA``):

* ``qwen25_math_cot_100.jsonl``: 100 MATH problems x 8 Qwen2.5-Math responses,
  labelled by the Qwen grader (``score``).
* ``math_verify_test_pairs.jsonl``: Math-Verify's own test pairs. Some of its
  expectations are wrong; ``bench/MATH_VERIFY_DISAGREEMENTS.md`` lists them
  (line numbers in a table), and figures are given against both the raw and
  the corrected labels.
* ``tests/unit/math/data/equivalents.jsonl``: our own hard pairs.

Our stage runs as in production: ``prepare_math`` + ``fast_compare`` in
process, then ``compare_task`` through a `WorkerPool` with a per-pair
deadline. Math-Verify runs in process with its default configuration
(``verify(parse(reference), parse(response))``, its own signal timeouts).

Figures per system: agreement (abstain counts as a disagreement), FP
(accepted, label says wrong), FN (rejected, label says right), abstain, time.
Mismatches go to ``bench/results/math_mismatches_<data>.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from verifiers.math import (  # noqa: E402
    compare_task,
    fast_compare,
    prepare_math,
    verdict_from_outcome,
)
from verifiers.pool import WorkerPool  # noqa: E402
from verifiers.verdict import Verdict  # noqa: E402

DATA = Path(os.environ.get("VERIFIER_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "bench" / "results"
DISAGREEMENTS = ROOT / "bench" / "MATH_VERIFY_DISAGREEMENTS.md"
OWN = ROOT / "tests" / "unit" / "math" / "data" / "equivalents.jsonl"


@dataclass
class Pair:
    reference: str
    response: str
    label: bool
    key: str  # where the pair comes from (for the mismatch file)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Tally:
    name: str
    n: int = 0
    agree: int = 0
    fp: int = 0
    fn: int = 0
    abstain: int = 0
    seconds: float = 0.0

    def add(self, label: bool, predicted: bool | None) -> None:
        self.n += 1
        if predicted is None:
            self.abstain += 1
        elif predicted == label:
            self.agree += 1
        elif predicted:
            self.fp += 1
        else:
            self.fn += 1

    def row(self) -> str:
        decided = self.n - self.abstain
        share = 100 * self.agree / max(1, self.n)
        return (
            f"{self.name:<26} n={self.n:<4} agree={self.agree:<4} ({share:5.1f}%)"
            f"  decided-acc={100 * self.agree / max(1, decided):5.1f}%"
            f"  FP={self.fp:<3} ({100 * self.fp / max(1, self.n):4.1f}%)"
            f"  FN={self.fn:<3} abstain={self.abstain:<3} time={self.seconds:6.1f}s"
        )


# ---------------------------------------------------------------- data


def wrong_qwen_labels() -> set[str]:
    """Keys (``idx/sample``) of Qwen labels we judge wrong."""
    if not DISAGREEMENTS.exists():
        return set()
    return set(re.findall(r"^\|\s*qwen:(\d+/\d+)\s*\|", DISAGREEMENTS.read_text(), re.M))


def load_qwen(corrected: bool = False) -> list[Pair]:
    wrong = wrong_qwen_labels() if corrected else set()
    pairs = []
    with open(DATA / "qwen25_math_cot_100.jsonl") as f:
        for line in f:
            row = json.loads(line)
            for k, (response, score) in enumerate(zip(row["code"], row["score"], strict=True)):
                key = f"{row['idx']}/{k}"
                label = bool(score) != (key in wrong)
                pairs.append(Pair(row["gt"], response, label, key, {"pred": row["pred"][k]}))
    return pairs


def wrong_expectations() -> dict[int, str]:
    """Line numbers (1-based) of Math-Verify pairs whose expectation we judge wrong."""
    wrong: dict[int, str] = {}
    if DISAGREEMENTS.exists():
        for line in DISAGREEMENTS.read_text().splitlines():
            match = re.match(r"^\|\s*(\d+)\s*\|", line)
            if match:
                wrong[int(match.group(1))] = line
    return wrong


def load_math_verify(corrected: bool) -> list[Pair]:
    wrong = wrong_expectations() if corrected else {}
    pairs = []
    with open(DATA / "math_verify_test_pairs.jsonl") as f:
        for number, line in enumerate(f, 1):
            row = json.loads(line)
            label = bool(row["expected"])
            if number in wrong:
                label = not label
            pairs.append(
                Pair(
                    row["reference"], row["response"], label, str(number), {"source": row["source"]}
                )
            )
    return pairs


def load_own() -> list[Pair]:
    pairs = []
    if OWN.exists():
        with open(OWN) as f:
            for number, line in enumerate(f, 1):
                if line.strip():
                    row = json.loads(line)
                    pairs.append(
                        Pair(
                            row["reference"],
                            row["response"],
                            bool(row["equal"]),
                            str(number),
                            {"family": row.get("family", "")},
                        )
                    )
    return pairs


# ---------------------------------------------------------------- systems


def run_ours(pairs: list[Pair], pool: WorkerPool, timeout: float) -> tuple[list[Verdict], float]:
    started = time.perf_counter()
    verdicts: list[Verdict | None] = []
    pending = []
    for index, pair in enumerate(pairs):
        item = prepare_math(pair.response, pair.reference)
        fast = fast_compare(item)
        verdicts.append(fast)
        if fast is None:
            assert item.answer is not None
            future = pool.submit(compare_task, item.answer, item.reference, 1e-6, timeout=timeout)
            pending.append((index, item, future))
    for index, item, future in pending:
        verdicts[index] = verdict_from_outcome(item, future.result())
    return [v for v in verdicts if v is not None], time.perf_counter() - started


_DELIMITED = re.compile(r"\$|\\\(|\\\[|\\boxed")


def run_math_verify(pairs: list[Pair], wrap: bool = False) -> tuple[list[bool], float]:
    """Math-Verify, default configuration. `wrap`: put a bare LaTeX reference
    in ``$...$`` first (its LaTeX extractor only looks inside delimiters)."""
    from math_verify import parse, verify

    started = time.perf_counter()
    results = []
    for pair in pairs:
        reference = pair.reference
        if wrap and not _DELIMITED.search(reference):
            reference = f"${reference}$"
        try:
            results.append(bool(verify(parse(reference), parse(pair.response))))
        except Exception:
            results.append(False)
    return results, time.perf_counter() - started


# ---------------------------------------------------------------- report


def evaluate(
    name: str,
    pairs: list[Pair],
    pool: WorkerPool,
    timeout: float,
    with_math_verify: bool,
    relabel: Callable[[list[Pair]], list[Pair]] | None = None,
) -> None:
    verdicts, ours_seconds = run_ours(pairs, pool, timeout)
    mv: list[bool] | None = None
    mv_wrapped: list[bool] | None = None
    mv_seconds = mv_wrapped_seconds = 0.0
    if with_math_verify:
        mv, mv_seconds = run_math_verify(pairs)
        mv_wrapped, mv_wrapped_seconds = run_math_verify(pairs, wrap=True)
    label_sets = [("", pairs)]
    if relabel is not None:
        label_sets.append((" (corrected)", relabel(pairs)))
    print(f"\n== {name}: {len(pairs)} pairs")
    for suffix, labelled in label_sets:
        ours = Tally("ours" + suffix, seconds=ours_seconds)
        theirs = Tally("math-verify" + suffix, seconds=mv_seconds)
        wrapped = Tally("math-verify $ref$" + suffix, seconds=mv_wrapped_seconds)
        for i, pair in enumerate(labelled):
            ours.add(pair.label, verdicts[i].correct)
            if mv is not None and mv_wrapped is not None:
                theirs.add(pair.label, mv[i])
                wrapped.add(pair.label, mv_wrapped[i])
        print(ours.row())
        if mv is not None:
            print(theirs.row())
            print(wrapped.row())
    # mismatches against the last label set
    labelled = label_sets[-1][1]
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"math_mismatches_{name}.jsonl"
    reasons: dict[str, int] = {}
    with open(out, "w") as f:
        for i, pair in enumerate(labelled):
            verdict = verdicts[i]
            if verdict.correct is None:
                reasons[verdict.reason] = reasons.get(verdict.reason, 0) + 1
            if verdict.correct == pair.label:
                continue
            record = {
                "key": pair.key,
                "label": pair.label,
                "ours": verdict.correct,
                "reason": verdict.reason,
                "detail": verdict.detail,
                "math_verify": mv[i] if mv is not None else None,
                "math_verify_wrapped": mv_wrapped[i] if mv_wrapped is not None else None,
                "reference": pair.reference,
                "extracted": verdict.extracted_answer,
                "response_tail": pair.response[-300:],
                **pair.extra,
            }
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    if reasons:
        print(f"abstain reasons: {reasons}")
    print(f"mismatches -> {out.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per pair")
    parser.add_argument("--only", choices=["qwen", "mv", "own"], action="append")
    parser.add_argument("--no-math-verify", action="store_true")
    args = parser.parse_args()
    only = set(args.only or ["qwen", "mv", "own"])
    with_mv = not args.no_math_verify
    with WorkerPool(
        args.workers, task_timeout=args.timeout, preload=["verifiers.math.compare"]
    ) as pool:
        if "qwen" in only:
            evaluate(
                "qwen25_math_cot",
                load_qwen(),
                pool,
                args.timeout,
                with_mv,
                relabel=lambda _: load_qwen(corrected=True),
            )
        if "mv" in only:
            evaluate(
                "math_verify_pairs",
                load_math_verify(corrected=False),
                pool,
                args.timeout,
                with_mv,
                relabel=lambda _: load_math_verify(corrected=True),
            )
        if "own" in only and OWN.exists():
            evaluate("own_equivalents", load_own(), pool, args.timeout, with_mv)


if __name__ == "__main__":
    main()
