"""The command line, run as a user would run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "VERIFIER_WORKERS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_verify_prints_the_verdict_as_json() -> None:
    done = run_cli("verify", "--response", "so $\\boxed{\\dfrac{2}{4}}$", "--reference", "0.5")
    assert done.returncode == 0, done.stderr
    verdict = json.loads(done.stdout)
    assert verdict["correct"] is True
    assert verdict["reason"] == "equal"
    assert verdict["extracted_answer"] == "\\dfrac{2}{4}"


def test_eval_json_prints_exactly_one_object(tmp_path: Path) -> None:
    rows = [
        {"response": "\\boxed{4}", "reference": "4", "expected": True},
        {"response": "The answer is $\\frac{1}{2}$", "reference": "0.5", "expected": True},
        {"response": "\\boxed{5}", "reference": "4", "expected": False},
        {"response": "\\boxed{3}", "reference": "4", "expected": True},  # a label we disagree with
        {"response": "<think>unfinished", "reference": "4", "expected": False},
    ]
    data = tmp_path / "pairs.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "results.jsonl"
    done = run_cli("eval", str(data), "--json", "--no-judge", "--out", str(out))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # exactly one JSON document
    assert report["n"] == 5
    assert report["accuracy"] == 4 / 5
    assert report["false_negative_rate"] == 1 / 3
    assert report["false_positive_rate"] == 0.0
    assert report["abstain_rate"] == 0.0
    assert report["seconds"] >= 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["correct"] for line in lines] == [True, True, False, False, False]


def test_eval_reports_the_bad_line(tmp_path: Path) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text('{"response": "1", "reference": "1"}\n{"reference": "2"}\n')
    done = run_cli("eval", str(data), "--json")
    assert done.returncode != 0
    assert "bad.jsonl:2" in done.stderr
