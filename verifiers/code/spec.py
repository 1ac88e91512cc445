"""Validate the `tests` dict of a code verification request."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from verifiers.code.compare import DEFAULT_TOLERANCE

MAX_CASES = 10_000


class TestSpecError(ValueError):
    """The `tests` spec (or the requested language) is malformed or unsupported.

    Raised before any code runs; the message says what is wrong. Never raised
    because of the model's response.
    """

    __test__ = False  # not a pytest test class


@dataclass(frozen=True, slots=True)
class StdinCase:
    input: str
    output: str


@dataclass(frozen=True, slots=True)
class FunctionalCase:
    args: list[Any]
    output: Any


@dataclass(frozen=True, slots=True)
class TestSpec:
    """A validated test spec. `cases` holds `StdinCase` or `FunctionalCase` items."""

    __test__ = False

    kind: Literal["stdin", "functional", "assert"]
    cases: tuple[Any, ...] = ()
    fn_name: str = ""
    code: str = ""
    entry_point: str | None = None
    float_tolerance: float = DEFAULT_TOLERANCE
    case_sensitive: bool = True


def _fail(msg: str) -> TestSpecError:
    return TestSpecError(f"invalid tests spec: {msg}")


def _cases(tests: dict[str, Any]) -> list[dict[str, Any]]:
    cases = tests.get("cases")
    if not isinstance(cases, list) or not cases:
        raise _fail("'cases' must be a non-empty list")
    if len(cases) > MAX_CASES:
        raise _fail(f"at most {MAX_CASES} cases are allowed")
    for i, case in enumerate(cases):
        if not isinstance(case, dict):
            raise _fail(f"case {i} must be an object")
        for key in ("input", "output"):
            if key not in case:
                raise _fail(f"case {i} has no {key!r}")
    return cases


def _identifier(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.isidentifier():
        raise _fail(f"{what} must be a Python identifier, got {value!r}")
    return value


def parse_tests(tests: Any) -> TestSpec:
    """Check `tests` and return it as a `TestSpec`; raise `TestSpecError` if malformed.

    Formats: ``{"kind": "stdin", "cases": [{"input": str, "output": str}],
    "float_tolerance"?: float, "case_sensitive"?: bool}``, ``{"kind":
    "functional", "fn_name": str, "cases": [{"input": [args], "output":
    value}]}`` and ``{"kind": "assert", "code": str, "entry_point"?: str}``.
    """
    if not isinstance(tests, dict):
        raise _fail("must be an object")
    kind = tests.get("kind")
    tol = tests.get("float_tolerance", DEFAULT_TOLERANCE)
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not math.isfinite(tol):
        raise _fail("'float_tolerance' must be a finite number")
    if tol < 0:
        raise _fail("'float_tolerance' must not be negative")
    case_sensitive = tests.get("case_sensitive", True)
    if not isinstance(case_sensitive, bool):
        raise _fail("'case_sensitive' must be a boolean")
    if kind == "stdin":
        parsed: list[Any] = []
        for i, case in enumerate(_cases(tests)):
            if not isinstance(case["input"], str) or not isinstance(case["output"], str):
                raise _fail(f"case {i}: 'input' and 'output' must be strings")
            parsed.append(StdinCase(case["input"], case["output"]))
        return TestSpec(
            "stdin", tuple(parsed), float_tolerance=float(tol), case_sensitive=case_sensitive
        )
    if kind == "functional":
        fn_name = _identifier(tests.get("fn_name"), "'fn_name'")
        parsed = []
        for i, case in enumerate(_cases(tests)):
            if not isinstance(case["input"], (list, tuple)):
                raise _fail(f"case {i}: 'input' must be a list of positional arguments")
            parsed.append(FunctionalCase(list(case["input"]), case["output"]))
        return TestSpec("functional", tuple(parsed), fn_name=fn_name, float_tolerance=float(tol))
    if kind == "assert":
        code = tests.get("code")
        if not isinstance(code, str) or not code.strip():
            raise _fail("'code' must be a non-empty string")
        entry = tests.get("entry_point")
        if entry is not None:
            entry = _identifier(entry, "'entry_point'")
        elif "def check(" in code:
            raise _fail("'entry_point' is required when 'code' defines check(candidate)")
        return TestSpec("assert", code=code, entry_point=entry, float_tolerance=float(tol))
    raise _fail(f"'kind' must be 'stdin', 'functional' or 'assert', got {kind!r}")
