"""Validation of `tests` specs and planning of assert-style tests."""

from __future__ import annotations

from typing import Any

import pytest

from verifiers.code import TestSpecError
from verifiers.code.harness import plan_assert_tests
from verifiers.code.spec import parse_tests


@pytest.mark.parametrize(
    "tests",
    [
        None,
        [],
        {},
        {"kind": "unknown"},
        {"kind": "stdin"},
        {"kind": "stdin", "cases": []},
        {"kind": "stdin", "cases": [{"input": "1"}]},
        {"kind": "stdin", "cases": [{"input": 1, "output": "1"}]},
        {"kind": "stdin", "cases": [{"input": "", "output": ""}], "float_tolerance": "x"},
        {"kind": "stdin", "cases": [{"input": "", "output": ""}], "float_tolerance": -1},
        {"kind": "functional", "fn_name": "f", "cases": [{"input": 1, "output": 1}]},
        {"kind": "functional", "fn_name": "1f", "cases": [{"input": [], "output": 1}]},
        {"kind": "assert", "code": ""},
        {"kind": "assert", "code": "def check(candidate):\n    assert candidate()\n"},
        {"kind": "assert", "code": "assert f(", "entry_point": "f"},
        {"kind": "assert", "code": "x = 1\n"},
        {"kind": "assert", "code": "assert f() == 1", "entry_point": "not valid"},
    ],
)
def test_malformed_specs_raise(tests: Any) -> None:
    with pytest.raises(TestSpecError) as info:
        spec = parse_tests(tests)
        if spec.kind == "assert":
            plan_assert_tests(spec.code, spec.entry_point)
    assert isinstance(info.value, ValueError)
    assert str(info.value)


def test_valid_specs() -> None:
    spec = parse_tests({"kind": "stdin", "cases": [{"input": "1", "output": "2"}]})
    assert spec.kind == "stdin" and spec.cases[0].output == "2"
    spec = parse_tests(
        {"kind": "functional", "fn_name": "f", "cases": [{"input": [1, 2], "output": 3}]}
    )
    assert spec.fn_name == "f" and spec.cases[0].args == [1, 2]


def test_humaneval_plan_calls_check_with_entry_point() -> None:
    code = (
        "METADATA = {}\n\n"
        "def check(candidate):\n"
        "    assert candidate([1.0, 2.0], 0.5) == False\n"
        "    assert poly([1], 2) == 1\n"
    )
    plan = plan_assert_tests(code, "has_close_elements")
    assert [k for k, _ in plan.statements] == ["setup", "setup", "case"]
    assert plan.statements[-1][1] == "check(has_close_elements)"
    assert plan.total == 1
    assert set(plan.names) == {"has_close_elements", "poly"}


def test_mbpp_plan_one_case_per_assert() -> None:
    code = "import math\nassert f(1) == 2; assert f(2) == 3\n@dec\ndef g():\n    pass\n"
    code += "for i in range(2):\n    assert f(i) >= 0\n"
    plan = plan_assert_tests(code, None)
    assert [k for k, _ in plan.statements] == ["setup", "case", "case", "setup", "case"]
    assert plan.statements[3][1].startswith("@dec\ndef g")
    assert plan.names == ("dec", "f")  # builtins (range) never come from the solution
