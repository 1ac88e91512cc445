"""A short soak (bench/soak.py): a steady request rate against a real service,
with open file descriptors flat and RSS growth bounded at the end. The long
run (60 s at 100 requests/s) is `bench/soak.py`; its result is in the README."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_short_soak_keeps_memory_and_fds_flat() -> None:
    command = [sys.executable, "bench/soak.py", "--json", "--seconds", "6", "--rate", "80"]
    command += ["--warmup", "2", "--max-rss-growth-mb", "20"]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=90)
    assert run.stdout.strip(), run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["load"]["statuses"] == {"200": report["load"]["requests"]}, report
    assert report["checks"]["fds_flat"], report
    assert report["checks"]["rss_bounded"], report
    assert report["checks"]["workers_alive"], report
    assert report["checks"]["rate_held"], report
    assert run.returncode == 0, report
