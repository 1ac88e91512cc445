"""The host side of the sandbox: backstop kill, nonce checks, command line."""

from __future__ import annotations

import os
import shutil
import time
from typing import Any

import pytest

from verifiers.code import CodeVerifier, SandboxLimits, sandbox_available
from verifiers.code.sandbox import GuestRun, _deliver, _privilege_drop, bwrap_argv, run_guest
from verifiers.code.spec import parse_tests

AVAILABLE, WHY = sandbox_available()


def test_bwrap_command_isolates() -> None:
    argv = bwrap_argv(SandboxLimits(), 5, ["/usr/bin/true"])
    for flag in ("--unshare-all", "--die-with-parent", "--new-session", "--as-pid-1"):
        assert flag in argv
    assert argv[argv.index("--info-fd") + 1] == "5"
    assert argv[argv.index("--remount-ro", argv.index("/tmp")) :][:2] == ["--remount-ro", "/"]
    assert argv[argv.index("--tmpfs") - 2 : argv.index("--tmpfs")] == ["--size", str(64 << 20)]
    assert "--clearenv" in argv and "OPENBLAS_NUM_THREADS" in argv
    assert argv[-2:] == ["--", "/usr/bin/true"]
    assert "--bind" not in argv  # nothing writable from the host


def test_events_need_the_nonce() -> None:
    seen: list[dict[str, Any]] = []
    result = GuestRun()
    assert not _deliver(b'{"type": "case", "nonce": "other"}', "n", result, seen.append)
    assert result.tampered and not seen
    result = GuestRun()
    _deliver(b"not json", "n", result, seen.append)
    assert result.tampered
    result = GuestRun()
    _deliver(b'{"type": "done", "nonce": "n"}', "n", result, lambda e: False)
    assert result.done and not result.tampered


@pytest.mark.skipif(not AVAILABLE, reason=f"no sandbox: {WHY}")
def test_host_backstop_kills_a_stuck_sandbox() -> None:
    limits = SandboxLimits(cpu_seconds=60, wall_seconds=60, total_wall_seconds=60)
    cv = CodeVerifier(limits)
    spec = parse_tests({"kind": "stdin", "cases": [{"input": "", "output": ""}]})
    job = cv._job(spec, None, "import time\ntime.sleep(600)\n", "python", True)
    start = time.monotonic()
    run = run_guest(job, limits, confined=True, deadline_seconds=1.0, on_event=lambda e: False)
    assert run.timed_out and not run.done
    assert time.monotonic() - start < 5
    assert run.exit_code is not None  # bwrap was reaped


def test_privilege_drop_keeps_vfork_possible() -> None:
    prefix, kwargs = _privilege_drop()
    if os.geteuid() != 0:
        assert (prefix, kwargs) == ([], {})
    elif shutil.which("setpriv"):
        assert "--reuid=65534" in prefix and "--clear-groups" in prefix and not kwargs
    else:
        assert kwargs["user"] == 65534 and kwargs["extra_groups"] == []
