"""The command line, run as a user would run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import start_service

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


def _batch_input(tmp_path: Path, n: int) -> Path:
    rows = [
        {"id": f"b{k}", "response": f"\\boxed{{{k}}}", "reference": str(k if k % 3 else k + 1)}
        for k in range(n)
    ]
    rows[1] = {"custom_id": "openai-1", "body": {"response": "\\boxed{1}", "reference": "1"}}
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def _expected(n: int) -> list[tuple[str, bool]]:
    return [("openai-1" if k == 1 else f"b{k}", bool(k % 3)) for k in range(n)]


def test_batch_in_process_resumes_without_redoing_lines(tmp_path: Path) -> None:
    source = _batch_input(tmp_path, 25)
    out = tmp_path / "out.jsonl"
    # an interrupted earlier run: 10 finished lines and a torn one
    first = run_cli("batch", str(source), "-o", str(out), "--chunk", "10", "--no-judge")
    assert first.returncode == 0, first.stderr
    lines = out.read_text().splitlines()
    out.write_text("\n".join(lines[:10]) + "\n" + lines[10][:15])
    marker = json.loads(lines[3])
    marker["detail"]["resumed"] = "kept"
    rewritten = out.read_text().splitlines()
    rewritten[3] = json.dumps(marker)
    out.write_text("\n".join(rewritten))
    second = run_cli("batch", str(source), "-o", str(out), "--chunk", "10", "--no-judge")
    assert second.returncode == 0, second.stderr
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["id"], r["correct"]) for r in results] == _expected(25)
    assert results[3]["detail"].get("resumed") == "kept"  # finished lines were not redone


def test_batch_through_a_running_service(tmp_path: Path, service_factory) -> None:  # type: ignore[no-untyped-def]
    api = service_factory(api_keys="secret")
    source = _batch_input(tmp_path, 12)
    out = tmp_path / "out.jsonl"
    done = run_cli(
        "batch",
        str(source),
        "-o",
        str(out),
        "--url",
        api.url,
        "--api-key",
        "secret",
        "--chunk",
        "5",
    )
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["id"], r["correct"]) for r in results] == _expected(12)
    refused = run_cli("batch", str(source), "-o", str(tmp_path / "x.jsonl"), "--url", api.url)
    assert refused.returncode != 0 and "401" in refused.stderr


def test_serve_with_two_processes_works_and_warns_without_redis(tmp_path: Path) -> None:
    service = start_service({}, tmp_path, http_workers=2)
    try:
        with service.client() as client:
            for _ in range(4):  # likely to reach both processes
                reply = client.post("/v1/verify", json={"response": "\\boxed{2}", "reference": "2"})
                assert reply.status_code == 200 and reply.json()["correct"] is True
    finally:
        service.stop()
    assert "2 worker processes without VERIFIER_REDIS_URL" in service.log()
