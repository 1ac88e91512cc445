"""`CodeVerifier`: run a response's code against tests and return a `Verdict`."""

from __future__ import annotations

import os
import secrets
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from verifiers.code.compare import stdout_matches, values_equal
from verifiers.code.extract import extract_code
from verifiers.code.guest import script_command
from verifiers.code.guest.codec import CodecError, decode_value, encode_value
from verifiers.code.harness import AssertPlan, plan_assert_tests
from verifiers.code.languages import SANDBOX_PYTHON, get_language, supported_languages
from verifiers.code.limits import SandboxLimits
from verifiers.code.sandbox import SANDBOX_ENV, GuestRun, run_guest, sandbox_available
from verifiers.code.spec import TestSpec, TestSpecError, parse_tests
from verifiers.verdict import Reason, Stage, Verdict

MAX_CODE_CHARS = 1 << 20
_SHOW = 2000
_SHOW_IO = 500
_STATUS = {
    "ok": Reason.PASSED,
    "passed": Reason.PASSED,
    "wrong_answer": Reason.WRONG_ANSWER,
    "runtime_error": Reason.RUNTIME_ERROR,
    "timeout": Reason.TIMEOUT,
    "memory_limit": Reason.MEMORY_LIMIT,
    "output_limit": Reason.OUTPUT_LIMIT,
    "compile_error": Reason.COMPILE_ERROR,
}


def _clip(value: Any, n: int = _SHOW_IO) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= n else text[:n] + f"... [{len(text) - n} more chars]"


@dataclass(slots=True)
class CaseResult:
    reason: str
    expected: str | None = None
    got: str | None = None
    stderr: str | None = None


class _Collector:
    """Judges each case event as it arrives (expected outputs never leave the host)."""

    def __init__(self, spec: TestSpec, total: int, stop_on_failure: bool) -> None:
        self.spec = spec
        self.stop_on_failure = stop_on_failure
        self.total: int | None = total
        self.results: dict[int, CaseResult] = {}
        self.compile_error: str | None = None
        self.spec_error: str | None = None
        self.error: str | None = None

    def __call__(self, event: dict[str, Any]) -> bool:
        kind = event.get("type")
        if kind == "case":
            i = event.get("i")
            if not isinstance(i, int) or i < 0 or (self.total is not None and i >= self.total):
                self.error = f"sandbox reported an unknown case {i!r}"
                return True
            result = self._judge(i, event)
            self.results[i] = result
            return self.stop_on_failure and result.reason != Reason.PASSED
        if kind == "plan" and event.get("total") != self.total:
            self.error = f"sandbox planned {event.get('total')!r} cases, expected {self.total}"
            return True
        elif kind == "compile" and not event.get("ok", True):
            self.compile_error = str(event.get("msg", ""))
            return True
        elif kind == "spec_error":
            self.spec_error = str(event.get("msg", "malformed tests"))
            return True
        elif kind == "error":
            self.error = str(event.get("msg", "sandbox error"))
            return True
        return False

    def _judge(self, i: int, ev: dict[str, Any]) -> CaseResult:
        status = str(ev.get("status"))
        reason = _STATUS.get(status, Reason.RUNTIME_ERROR)
        stderr = _clip(ev.get("stderr") or ev.get("msg") or None)
        spec = self.spec
        if spec.kind == "stdin":
            expected = spec.cases[i].output
            if reason != Reason.PASSED:
                return CaseResult(reason, _clip(expected), None, stderr)
            got = str(ev.get("stdout", ""))
            ok = stdout_matches(expected, got, spec.float_tolerance, spec.case_sensitive)
            reason = Reason.PASSED if ok else Reason.WRONG_ANSWER
            return CaseResult(reason, _clip(expected), _clip(got), stderr)
        if spec.kind == "functional":
            expected = spec.cases[i].output
            if reason != Reason.PASSED:
                return CaseResult(reason, _clip(expected), None, stderr)
            try:
                value = decode_value(str(ev.get("value")))
            except CodecError as exc:
                return CaseResult(Reason.WRONG_ANSWER, _clip(expected), f"<{exc}>", stderr)
            ok = values_equal(expected, value, spec.float_tolerance)
            reason = Reason.PASSED if ok else Reason.WRONG_ANSWER
            return CaseResult(reason, _clip(expected), _clip(value), stderr)
        test = _clip(ev.get("test"))
        return CaseResult(reason, test, _clip(ev.get("msg")), stderr)


class CodeVerifier:
    """Runs code from model responses against tests in a bubblewrap sandbox.

    Thread-safe: `verify` may be called from many threads at once; at most
    `max_concurrency` sandboxes (default: one per CPU core) run at a time,
    the rest wait, so load does not turn into false timeouts.

    `spares` > 0 keeps that many sandboxes started ahead of need (bwrap and the
    launcher up, waiting for their job; idle, they cost memory, not CPU), which
    takes their ~12 ms start-up off each run's latency. The default 0 starts
    no background processes.
    """

    def __init__(
        self,
        limits: SandboxLimits | None = None,
        max_concurrency: int | None = None,
        allow_unconfined: bool = False,
        spares: int = 0,
    ) -> None:
        self.limits = limits or SandboxLimits()
        n = max_concurrency if max_concurrency is not None else (os.cpu_count() or 1)
        if n < 1:
            raise ValueError("max_concurrency must be at least 1")
        if spares < 0:
            raise ValueError("spares must not be negative")
        self.max_concurrency = n
        self.allow_unconfined = allow_unconfined
        self.spares = spares
        self._slots = threading.BoundedSemaphore(n)

    def verify(
        self,
        response: str,
        tests: dict[str, Any],
        language: str | None = None,
        *,
        all_or_nothing: bool = False,
    ) -> Verdict:
        """Run the code in `response` against `tests` and judge it.

        Returns a `Verdict` with stage "code": reward = fraction of cases
        passed (0/1 with `all_or_nothing`, which also stops at the first
        failure), correct = all passed, reason = "passed" or the first failing
        case's reason. Infrastructure failures (no sandbox, launcher crash)
        abstain with reason "sandbox_error"; nothing the code does raises.

        Raises `TestSpecError` for a malformed `tests` spec or an unsupported
        `language`.
        """
        spec = parse_tests(tests)
        plan = plan_assert_tests(spec.code, spec.entry_point) if spec.kind == "assert" else None
        if language is not None and (not isinstance(language, str) or not get_language(language)):
            raise TestSpecError(
                f"unsupported language {language!r}; supported: {', '.join(supported_languages())}"
            )
        extracted = extract_code(response if isinstance(response, str) else str(response), language)
        code, lang_name = extracted.code, extracted.language
        total = plan.total if plan is not None else len(spec.cases)
        base = {"language": lang_name, "passed": 0, "total": total}
        lang = get_language(lang_name)

        def reject(reason: str, msg: str) -> Verdict:
            detail = {**base, "first_failure": {"case": 0, "reason": reason, "stderr": msg}}
            return Verdict.reject(
                Stage.CODE, reason, extracted_answer=_clip(code, _SHOW), detail=detail
            )

        if lang is None:
            return reject(Reason.COMPILE_ERROR, f"language {lang_name!r} is not supported")
        if lang.name != "python" and spec.kind != "stdin":
            msg = f"{spec.kind} tests need a Python solution, not {lang.name}"
            if language is not None:
                raise TestSpecError(msg)
            return reject(Reason.COMPILE_ERROR, msg)
        if not code.strip():
            return reject(Reason.COMPILE_ERROR, "no code found in the response")
        if len(code) > MAX_CODE_CHARS:
            return reject(Reason.COMPILE_ERROR, f"code longer than {MAX_CODE_CHARS} characters")

        confined, why = sandbox_available()
        if not confined and not self.allow_unconfined:
            return Verdict.abstain(
                Stage.CODE,
                Reason.SANDBOX_ERROR,
                extracted_answer=_clip(code, _SHOW),
                detail={**base, "error": f"code sandbox unavailable: {why}"},
            )
        job = self._job(spec, plan, code, lang.name, confined)
        collector = _Collector(spec, total, stop_on_failure=all_or_nothing)
        limits = self.limits
        deadline = limits.total_wall_seconds + 15.0
        if lang.compile:
            deadline += limits.compile_seconds
        with self._slots:
            try:
                run = run_guest(
                    job,
                    limits,
                    confined=confined,
                    deadline_seconds=deadline,
                    on_event=collector,
                    spares=self.spares,
                )
            except Exception as exc:  # infrastructure (fds, disk, ...), never the model's code
                run = GuestRun(error=f"sandbox failure: {type(exc).__name__}: {exc}")
        return self._verdict(spec, collector, run, code, lang.name, confined, all_or_nothing)

    def _job(
        self, spec: TestSpec, plan: AssertPlan | None, code: str, lang_name: str, confined: bool
    ) -> dict[str, Any]:
        lang = get_language(lang_name)
        assert lang is not None
        cases: list[str] = []
        if spec.kind == "stdin":
            cases = [c.input for c in spec.cases]
        elif spec.kind == "functional":
            try:
                cases = [encode_value(c.args, 1 << 30) for c in spec.cases]
            except (CodecError, RecursionError) as exc:
                raise TestSpecError(f"invalid tests spec: case input: {exc}") from None
        return {
            "nonce": secrets.token_hex(16),
            "mode": spec.kind,
            "confined": confined,
            "env": SANDBOX_ENV,
            "limits": self.limits.guest(),
            "compile_limits": self.limits.guest_compile(),
            "source": code,
            "source_name": lang.source_name,
            "syntax_check": lang.name == "python",
            "compile": list(lang.compile) if lang.compile else None,
            "run": list(lang.run),
            "runner_cmd": script_command(SANDBOX_PYTHON, "runner", confined),
            "plan": plan.guest() if plan else None,
            "cases": cases,
            "fn_name": spec.fn_name,
            "test_code": spec.code,
            "entry_point": spec.entry_point,
        }

    def _verdict(
        self,
        spec: TestSpec,
        col: _Collector,
        run: GuestRun,
        code: str,
        lang: str,
        confined: bool,
        all_or_nothing: bool,
    ) -> Verdict:
        if col.spec_error is not None:
            raise TestSpecError(f"invalid tests spec: {col.spec_error}")
        shown = _clip(code, _SHOW)
        detail: dict[str, Any] = {
            "language": lang,
            "sandbox": "bwrap" if confined else "unconfined",
            "seconds": round(run.seconds, 3),
        }
        if col.compile_error is not None:
            detail.update(passed=0, total=col.total or 0)
            detail["first_failure"] = {
                "case": 0,
                "reason": Reason.COMPILE_ERROR,
                "stderr": _clip(col.compile_error, _SHOW),
            }
            return Verdict.reject(
                Stage.CODE, Reason.COMPILE_ERROR, extracted_answer=shown, detail=detail
            )
        broken = col.error or run.error
        if not broken and not (run.done or run.timed_out or run.stopped):
            broken = f"sandbox exited early (exit {run.exit_code}): {run.stderr[-500:]}"
        if broken and confined:
            detail["error"] = _clip(broken, _SHOW)
            return Verdict.abstain(
                Stage.CODE, Reason.SANDBOX_ERROR, extracted_answer=shown, detail=detail
            )
        total = col.total if col.total is not None else 0
        if total == 0:
            detail["error"] = _clip(broken or "sandbox reported no test cases", _SHOW)
            return Verdict.abstain(
                Stage.CODE, Reason.SANDBOX_ERROR, extracted_answer=shown, detail=detail
            )
        results = dict(col.results)
        missing = Reason.TIMEOUT if run.timed_out else Reason.RUNTIME_ERROR
        for i in range(total):
            if i not in results and not run.stopped:
                results[i] = CaseResult(missing, stderr=_clip(broken) if broken else None)
        if run.tampered:
            results[min(results, default=0)] = CaseResult(
                Reason.RUNTIME_ERROR, stderr="forged output on the result channel"
            )
        passed = sum(1 for r in results.values() if r.reason == Reason.PASSED)
        failures = sorted(i for i, r in results.items() if r.reason != Reason.PASSED)
        correct = passed == total and not failures
        reward = (1.0 if correct else 0.0) if all_or_nothing else passed / total
        detail.update(passed=passed, total=total)
        detail["reason_counts"] = dict(Counter(r.reason for r in results.values()))
        reason = Reason.PASSED
        detail["first_failure"] = None
        if failures:
            first = results[failures[0]]
            reason = first.reason
            detail["first_failure"] = {
                "case": failures[0],
                "reason": first.reason,
                "expected": first.expected,
                "got": first.got,
                "stderr": first.stderr,
            }
        return Verdict(
            correct=correct,
            reward=reward,
            stage=Stage.CODE,
            reason=reason,
            extracted_answer=shown,
            confidence=1.0,
            detail=detail,
        )
